"""`iwsi export RUN_DIR --k 80 --out kept.jsonl`: a run's kept set as SFT JSONL (the work: iwsi/export.py).

Its own refusals read `iwsi export: error: ...` (exit 2); nothing is written before they pass.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iwsi.commands import add_debug
from iwsi.contract import RUN_FILE
from iwsi.filtering import METHODS

HELP = "export the kept set as SFT JSONL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Export a run's kept set for k as SFT JSONL."
    parser.add_argument("run_dir", help="run directory with samples.parquet")
    parser.add_argument("--k", type=float, default=80.0, help="percentage of majority samples kept (default 80)")
    parser.add_argument("--out", required=True, help="output JSONL file (a .manifest.json is written next to it)")
    parser.add_argument("--method", choices=list(METHODS),
                        help="selection rule (default: the run's own method, as it trained)")
    add_debug(parser, shown=False)


def main(args: argparse.Namespace) -> int:
    from iwsi.config import ConfigError, user_path
    from iwsi.export import check_out, kept_export, write_export

    if not 0 < args.k <= 100:  # NaN fails this too
        return _refuse(f"--k {args.k} is out of range: it must be in (0, 100]")
    try:  # `~` expanded once, here (bash leaves `--out=~/k.jsonl` as it is)
        run_dir, out = user_path("RUN_DIR", args.run_dir), Path(user_path("--out", args.out))
    except ConfigError as err:
        return _refuse(str(err))
    samples = Path(run_dir) / RUN_FILE.samples
    if not samples.is_file():  # a FIFO would block the reader
        return _refuse(f"{samples} {'is not a regular file' if samples.exists() else 'not found'}: run the "
                       f"pipeline first (iwsi run --out {run_dir})")
    problem = check_out(out)
    if problem:
        return _refuse(problem)
    try:
        text, m = kept_export(run_dir, args.k, args.method)
    except (OSError, ValueError, KeyError) as err:  # pyarrow's ArrowInvalid is a ValueError
        return _refuse(f"{samples} cannot be exported ({type(err).__name__}: "
                       f"{' '.join(str(err).split())[:100]}); rerun `iwsi run --out {run_dir}` to rebuild it")
    try:
        write_export(out, text, m)
    except OSError as err:  # the run was read: the problem is OUT's disk or folder
        return _refuse(f"--out {out} cannot be written ({err.strerror or err}): free some disk space or give "
                       "another path; the run is fine")
    print(f"wrote {m['num_kept']} of {m['num_majority']} majority samples ({m['method']}, k={args.k:g}, "
          f"σ_k={m['sigma_k']}) to {out}")
    return 0


def _refuse(message: str) -> int:
    print(f"iwsi export: error: {message}", file=sys.stderr)
    return 2

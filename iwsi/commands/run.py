"""`iwsi run`: run (or resume) the pipeline, then its further rounds (`rounds` > 1)."""
from __future__ import annotations

import argparse

from iwsi.commands import add_config_options, add_debug, default_config
from iwsi.config import STAGES

HELP = "run (or resume) the IWSI pipeline"
CHECK_EDGE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, "run directory (default: cache/runs/<run_id>)")
    parser.add_argument("--force", action="store_true", help="redo the stages a config change affects")
    add_debug(parser)
    parser.add_argument("--until", choices=STAGES, help="stop after this stage")


def main(args: argparse.Namespace) -> int:
    from iwsi.config import load_config, parse_sets
    from iwsi.pipeline import run_pipeline

    cfg = load_config(args.config or default_config(), parse_sets(args.set))
    out = run_pipeline(cfg, args.out, args.until, args.force)
    if cfg.rounds > 1 and args.until is None:  # iterated self-improvement: rounds/r2, r3, ...
        from iwsi.rounds import run_rounds

        for r in run_rounds(cfg, out, run_pipeline):
            print(f"round {r['round']}: accuracy {r['accuracy_before']} → {r['accuracy_after']}")
    print(f"run directory: {out}")
    return 0

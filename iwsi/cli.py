"""Command line: `iwsi run | ablate | probe | export | bench`, one module each under iwsi/commands/.

    iwsi run [--config FILE] [--out DIR] [--set KEY=VALUE ...] [--until STAGE] [--force] [--debug]

Bad input (config, data, model, a busy run directory) prints one line naming the problem and the
fix and exits with status 2, without a traceback unless --debug; nothing is written before the
input checks pass. A stage failing mid-run (out of memory, NaN loss) prints one line and exits 1;
completed artefacts stay and a rerun resumes (docs/reliability.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from iwsi.commands import ablate, bench, export, probe, run
from iwsi.config import ConfigError, user_path
from iwsi.datasets import short

COMMANDS = (run, ablate, probe, export, bench)  # the command list: `iwsi <name>` is the module's name


def name(command) -> str:
    return command.__name__.rpartition(".")[2]


def user_errors() -> tuple[type[Exception], ...]:
    from iwsi.datasets import DatasetError
    from iwsi.models import ModelError
    from iwsi.rundir import RunDirError

    return ConfigError, DatasetError, ModelError, RunDirError


# Options that hold a path (of run, ablate and probe; export checks its own): `~` is expanded here, once.
PATH_OPTIONS = ("config", "out", "shared_from", "data_root", "run")


def check_edge(args) -> None:
    """What a command takes from outside its config, checked before any work: the path options (`~`
    expanded, name lengths) and the environment variables iwsi reads."""
    for option in PATH_OPTIONS:
        value = getattr(args, option, None)
        if isinstance(value, str):
            setattr(args, option, user_path(f"--{option.replace('_', '-')}", value))
    chunk = os.environ.get("IWSI_CHUNK")
    if chunk is not None:  # read by the generate stage, which would fail on it mid-run on every rerun
        try:
            ok = int(chunk) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"IWSI_CHUNK={short(chunk)} is not a positive whole number (questions per generate "
                              "chunk): set it to e.g. 32, or unset it")
    if os.environ.get("IWSI_CACHE"):
        from iwsi.contract import cache_root
        from iwsi.rundir import nearest_existing

        cache = user_path("IWSI_CACHE", str(cache_root()))
        found = nearest_existing(Path(cache))
        if not found.is_dir():
            raise ConfigError(f"IWSI_CACHE={cache} is {'' if found == Path(cache) else 'under '}a file, not a folder: "
                              "point it at a folder iwsi may write to, or unset it")
        if not os.access(found, os.W_OK | os.X_OK):
            raise ConfigError(f"IWSI_CACHE={cache} is not writable ({found}): point it at a folder iwsi may write "
                              "to, or unset it")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="iwsi", description="Importance-weighted LLM self-improvement")
    sub = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        p = sub.add_parser(name(command), help=command.HELP, add_help=not getattr(command, "PASS_HELP", False))
        command.add_arguments(p)
        p.set_defaults(module=command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    from iwsi.rundir import DISK_FULL, StageFailed

    try:
        if getattr(args.module, "CHECK_EDGE", False):
            check_edge(args)
        return args.module.main(args)
    except user_errors() as err:
        return _fail(args, err, 2)
    except OSError as err:  # a full disk outside a stage (claiming, locking, config.yaml): files are atomic
        if err.errno not in DISK_FULL:
            raise
        return _fail(args, OSError(f"{err.strerror} while writing {err.filename or 'a file'}: free some disk "
                                   "space and rerun; completed work is kept"), 2, err)
    except StageFailed as err:  # mid-run: out of memory, NaN loss, ...; completed artefacts are kept
        return _fail(args, err, 1, err.cause)
    except KeyboardInterrupt:
        print("iwsi: cancelled; completed stages are kept, rerun the same command to resume", file=sys.stderr)
        return 130


def _fail(args, err: Exception, status: int, cause: BaseException | None = None) -> int:
    """One line on stderr (the traceback only with --debug)."""
    if getattr(args, "debug", False):
        raise cause or err
    print(f"iwsi: error: {' '.join(str(err).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

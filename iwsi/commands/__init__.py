"""The `iwsi` commands, one module each (run, ablate, probe, export, bench). A command module exposes

    HELP: str                                   its line in `iwsi --help`
    add_arguments(parser) -> None               its options, on the parser iwsi/cli.py makes for it
    main(args) -> int                           the work (a library call), returning the exit status

and may set `CHECK_EDGE = True` to have iwsi/cli.py check its path options and environment first
(`cli.check_edge`), or `PASS_HELP = True` when its parser has no `-h` of iwsi's own (everything after
the command name, `--help` included, goes on to another parser: `iwsi bench`). iwsi/cli.py lists the
modules once (`cli.COMMANDS`) and handles errors; adding a command = one module here + one entry there.
Below: the defaults the commands share, defined once.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from iwsi.contract import REPO

DEMO_CONFIG = REPO / "configs" / "demo.yaml"  # the embedded CPU demo: every command's default config
DATA_ROOT = "../shared/data"  # holds <dataset>/ for `iwsi ablate --datasets` beyond the config's own


def default_config() -> Path | None:
    """configs/demo.yaml in a source checkout; None (the built-in defaults) in an installed package."""
    return DEMO_CONFIG if DEMO_CONFIG.exists() else None


def add_config_options(parser: argparse.ArgumentParser, out_help: str) -> None:
    """--config, --out, --set: what run and ablate read the same way."""
    parser.add_argument("--config", help="YAML config (default: configs/demo.yaml, the embedded CPU demo)")
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def add_debug(parser: argparse.ArgumentParser, shown: bool = True) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks" if shown else argparse.SUPPRESS)

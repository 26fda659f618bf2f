"""`iwsi bench [generate|score|sweep|train|profile|app] ...`: the benchmarks, which live in the source
checkout's benchmarks/ folder beside the iwsi package (not in an installed package). Everything after
`bench` goes to benchmarks/bench.py's `main(argv)` (benchmarks/bench_app.py's for `app`), whose own
parsers hold the options and the help."""
from __future__ import annotations

import argparse
import importlib
import sys

from iwsi.config import ConfigError
from iwsi.contract import REPO

HELP = "benchmarks (source checkout): `iwsi bench --help` lists them"
PASS_HELP = True  # no help of iwsi's own: --help goes on to the benchmarks' parsers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    rest = ["--help"] * args.help + [a for a in args.rest if a != "--debug"]
    args.debug = args.debug or "--debug" in args.rest
    run, rest = benchmark(rest)
    return run(rest) or 0


def benchmark(rest: list[str]):
    """(the benchmark's `main(argv)`, its argv) for `iwsi bench REST`: bench_app's for `app`, else bench's."""
    if not (REPO / "benchmarks" / "bench.py").is_file():
        raise ConfigError(f"`iwsi bench` needs a source checkout (benchmarks/ is not beside {REPO / 'iwsi'}): "
                          "clone the repository and install it with `pip install -e .`")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if rest[:1] == ["app"]:
        return importlib.import_module("benchmarks.bench_app").main, rest[1:]
    return importlib.import_module("benchmarks.bench").main, rest

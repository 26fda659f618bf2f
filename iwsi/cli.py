"""Command line: `iwsi run | ablate | probe | export | bench`.

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

from iwsi.config import STAGES, ConfigError, load_config, parse_sets, user_path
from iwsi.datasets import short
from iwsi.probe_variants import SEVERITIES

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


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

        cache = user_path("IWSI_CACHE", str(cache_root()))
        found = Path(cache)
        while not found.exists() and found != found.parent:
            found = found.parent
        if not found.is_dir():
            raise ConfigError(f"IWSI_CACHE={cache} is {'' if found == Path(cache) else 'under '}a file, not a folder: "
                              "point it at a folder iwsi may write to, or unset it")
        if not os.access(found, os.W_OK | os.X_OK):
            raise ConfigError(f"IWSI_CACHE={cache} is not writable ({found}): point it at a folder iwsi may write "
                              "to, or unset it")


def cmd_run(args) -> int:
    from iwsi.pipeline import run_pipeline

    config = args.config or (DEMO_CONFIG if DEMO_CONFIG.exists() else None)
    cfg = load_config(config, parse_sets(args.set))
    out = run_pipeline(cfg, args.out, args.until, args.force)
    if cfg.rounds > 1 and args.until is None:  # iterated self-improvement: rounds/r2, r3, ...
        from iwsi.rounds import run_rounds

        for r in run_rounds(cfg, out, run_pipeline):
            print(f"round {r['round']}: accuracy {r['accuracy_before']} → {r['accuracy_after']}")
    print(f"run directory: {out}")
    return 0


def cmd_ablate(args) -> int:
    from iwsi.ablate import main

    return main(args)


def cmd_probe(args) -> int:
    from iwsi.probe import main

    return main(args)


def add_run_args(p: argparse.ArgumentParser, out_help: str = "run directory (default: cache/runs/<run_id>)",
                 force: bool = True) -> None:
    p.add_argument("--config", help="YAML config (default: configs/demo.yaml, the embedded CPU demo)")
    p.add_argument("--out", help=out_help)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    if force:
        p.add_argument("--force", action="store_true", help="redo the stages a config change affects")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="iwsi", description="Importance-weighted LLM self-improvement")
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the IWSI pipeline")
    add_run_args(run)
    run.add_argument("--until", choices=STAGES, help="stop after this stage")
    run.set_defaults(func=cmd_run)
    ablate = sub.add_parser("ablate", help="sweep methods × k × seeds over shared generations")
    add_run_args(ablate, "ablation directory (default: cache/ablations/<datasets>-<config hash>)", force=False)
    ablate.add_argument("--methods", default="lmsi,iwsi", help="comma-separated methods")
    ablate.add_argument("--k", default="80", help="comma-separated k values")
    ablate.add_argument("--seeds", default="0", help="comma-separated seeds")
    ablate.add_argument("--datasets", default=None, help="comma-separated datasets (default: the config's)")
    ablate.add_argument("--data-root", default="../shared/data",
                        help="folder holding <dataset>/ for datasets other than the config's")
    ablate.add_argument("--shared-from", metavar="ABLATION_DIR",
                        help="reuse another ablation's generations (its shared/ stages, hard-linked), e.g. to sweep "
                             "training settings; they must match this config's generation settings")
    ablate.set_defaults(func=cmd_ablate)
    probe = sub.add_parser("probe", help="DSE probe: what each selection signal detects on known-defect rationales")
    probe.add_argument("--config", help="YAML config (default: configs/demo.yaml); dataset, model, engine, loss_span")
    probe.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    probe.add_argument("--n", type=int, default=100, help="clean rationales to probe (after valid_size rows for D_v)")
    probe.add_argument("--kinds", default="redundant,jumping,spurious,style", help="comma-separated defect kinds")
    probe.add_argument("--severity", choices=SEVERITIES, default="mild",
                       help="mild: one step repeated / the last step kept / one number changed; severe: every step "
                            "repeated / the whole reasoning removed / every number changed")
    probe.add_argument("--sweep", metavar="KEY=V1,V2",
                       help="score once per value, e.g. loss_span=full,completion or valid_size=5,20")
    probe.add_argument("--k", type=float, default=None, help="k %% cut for the dropped/kept shares (default: config k)")
    probe.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    probe.add_argument("--self-eval", action="store_true", help="also score with the self-evaluation judge")
    probe.add_argument("--run", metavar="RUN_DIR", help="instead: AUROC on a real run's labels/suggestions (no model)")
    probe.add_argument("--name", help="probe name under cache/probes (default from dataset, n, seed)")
    probe.add_argument("--out", help="probe directory (overrides --name)")
    probe.add_argument("--debug", action="store_true", help="show tracebacks")
    probe.set_defaults(func=cmd_probe)
    for name, help_ in (("export", "export the kept set as SFT JSONL"),
                        ("bench", "benchmarks: generate | score | sweep | train | profile | app")):
        p = sub.add_parser(name, help=help_, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        p.set_defaults(func=lambda a, name=name: _forward(name, a.rest))
    return top


def _forward(name: str, rest: list[str]) -> int:
    if name == "export":
        from iwsi.export import main
    else:
        main, rest = _benchmark(rest)
    return main(rest) or 0


def _benchmark(rest: list[str]):
    """`iwsi bench [app] ...`: the benchmarks live in the source checkout's benchmarks/ folder beside
    the iwsi package, not in the installed package."""
    import importlib

    repo = Path(__file__).resolve().parent.parent
    if not (repo / "benchmarks" / "bench.py").is_file():
        print(f"iwsi: error: `iwsi bench` needs a source checkout (benchmarks/ is not beside {repo / 'iwsi'}): "
              "clone the repository and install it with `pip install -e .`", file=sys.stderr)
        raise SystemExit(2)
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    module = "benchmarks.bench_app" if rest[:1] == ["app"] else "benchmarks.bench"
    return importlib.import_module(module).main, rest[1:] if rest[:1] == ["app"] else rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["export"], ["bench"]):  # their own parsers read every option, --help included
        rest = [a for a in argv[1:] if a != "--debug"]
        args = argparse.Namespace(command=argv[0], debug="--debug" in argv[1:],
                                  func=lambda _: _forward(argv[0], rest))
    else:
        args = parser().parse_args(argv)
    from iwsi.rundir import DISK_FULL, StageFailed

    try:
        if args.command in ("run", "ablate", "probe"):
            check_edge(args)
        return args.func(args)
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

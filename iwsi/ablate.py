"""Ablation runner: methods × k × seeds (× datasets) sharing the expensive stages.

    iwsi ablate [--config FILE] [--out DIR] --methods lmsi,iwsi,entropy --k 60,80,100 --seeds 0,1,2
                [--datasets synthetic-arith,svamp] [--set KEY=VALUE ...] [--shared-from ABLATION_DIR]

Layout of DIR (default cache/ablations/<name>):
  shared/<dataset>-s<seed>/                 a run directory stopped after the stages before filter
                                            (generate, vote, score, evaluate-base, embed, judge with
                                            every judge the methods need), once per (dataset, seed)
  cells/<dataset>/<method>-k<k>-s<seed>/    a run directory that adopts those stages (RunDir.adopt:
                                            hard links, checked) and runs filter → train → evaluate
                                            (a finished cell is never recomputed)
  results.parquet / .csv / .md / .tex, summary.csv, significance.csv (iwsi/report.py)
Methods that ignore k (lmsi, iwsi-w, ground-truth) run once per (dataset, seed), recorded at k = 100.
--shared-from hard-links another ablation's shared/ directories (a sweep of training settings over the same
generations) before the sweep; they are then checked like this directory's own (a changed setting is refused).
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from iwsi import filtering, report
from iwsi.config import METHODS, STAGES, ConfigError, RunConfig, load_config, parse_sets
from iwsi.contract import RUN_FILE, ablations_root
from iwsi.datasets import short
from iwsi.datasets._io import require_dir
from iwsi.rundir import APPENDED, RunDir, RunDirError, check_out_dir, claim_dir, owner, read_json, write_parquet

# Every stage before filter: they depend on no cell setting (method, k, training) but the judges,
# which the shared directory runs for all the methods at once.
SHARED_STAGES = STAGES[:STAGES.index("filter")]


def parse_list(text: str, kind=str, what: str = "value") -> list:
    try:
        values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{what} {short(text)} is not a comma-separated list of {kind.__name__}s") from None
    if not values:  # an empty sweep would start the shared stages and train no cell
        raise ConfigError(f"--{what} {short(text)} names no value: give at least one (comma-separated)")
    return values


def plan_cells(methods: list[str], ks: list[float]) -> list[tuple[str, float]]:
    """(method, k) pairs to train; k-free methods once at k = 100."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown method {bad[0]!r}: choose from {', '.join(METHODS)}")
    cells = []
    for m in methods:
        cells += [(m, float(k)) for k in ks] if filtering.METHODS[m].uses_k else [(m, 100.0)]
    return cells


def shared_config(cfg: RunConfig, dataset: str, seed: int, data_root: Path, methods: list[str],
                  old: RunConfig | None) -> RunConfig:
    """The settings of the shared stages of one (dataset, seed). Keys of the later stages are reset to
    their defaults so the shared directory's config never changes between sweeps; its judges are those
    the methods need plus any an earlier sweep (`old`) left in samples.parquet."""
    from iwsi.pipeline import STAGE_KEYS

    later = {k: getattr(RunConfig(), k) for s in STAGES[len(SHARED_STAGES):] for k in STAGE_KEYS[s]}
    asked = [m for m in methods if filtering.METHODS[m].score_column]
    earlier = old.judge_names() if old else ()
    judges = ",".join(m for m in METHODS if m in asked or m in earlier) or None
    reward_model = cfg.reward_model if "rm" in asked else (old.reward_model if "rm" in earlier else None)
    return replace(cfg, dataset=dataset, data_dir=data_dir(cfg, dataset, data_root), seed=seed, **later,
                   judges=judges, reward_model=reward_model)


def data_dir(cfg: RunConfig, dataset: str, data_root: Path) -> str | None:
    """The config's data_dir for its own dataset, else <data_root>/<dataset> (none for the synthetic one)."""
    if dataset == cfg.dataset:
        return cfg.data_dir
    return None if dataset == "synthetic-arith" else str(data_root / dataset)


def run_shared(cfg: RunConfig, data_root: Path, methods: list[str], dataset: str, seed: int, path: Path) -> RunDir:
    """The shared stages of one (dataset, seed), run (or resumed) in `path` as a run stopped after judge.
    A sweep that asks for a judge the directory lacks redoes only the judge stage; any other change of
    the shared settings is refused as for `iwsi run` (another --out, or --force there)."""
    from iwsi.device import resolve
    from iwsi.pipeline import changed_keys, previous_config, run_pipeline

    run = RunDir(path)
    cfg = resolve(shared_config(cfg, dataset, seed, data_root, methods, previous_config(run)))
    changed = changed_keys(run, cfg)
    judges_only = bool(changed) and set(changed) <= {"judges", "reward_model"}
    run_pipeline(cfg, path, until=SHARED_STAGES[-1], force=judges_only)
    return run


def run_cell(cfg: RunConfig, shared: RunDir, cell: Path) -> dict:
    """filter → train → evaluate in `cell` after adopting the shared stages; a method that keeps
    nothing gets a row with no accuracy."""
    from iwsi.pipeline import EmptyTrainingSet, run_pipeline
    from iwsi.rundir import StageFailed

    note = None
    damage = cell_damage(cell, cfg) if RunDir(cell).is_done("evaluate") else None
    if damage and owner(cell) == "run":  # the cell's own work and links to shared files: redo it whole
        print(f"iwsi: {cell}: {damage}: redoing the cell", file=sys.stderr)
        shutil.rmtree(cell)
    if not RunDir(cell).is_done("evaluate"):
        check_out_dir(cell, "run")
        claim_dir(cell, "run")
        with RunDir(cell).lock():
            RunDir(cell).adopt(shared, SHARED_STAGES)
        try:
            run_pipeline(cfg, cell)
        except StageFailed as err:
            if not isinstance(err.cause, EmptyTrainingSet):
                raise
            note = str(err.cause)
    m = read_json(cell / RUN_FILE.metrics)
    base = pd.read_parquet(shared / RUN_FILE.eval_base)["is_correct"].fillna(False).astype(bool).mean()
    return {"dataset": cfg.dataset, "method": cfg.method, "k": cfg.k, "seed": cfg.seed,
            "accuracy": m.get("accuracy", {}).get("trained", float("nan")), "base_accuracy": float(base),
            "num_kept": m["num_kept"], "num_majority": m["num_majority"], "threshold": m.get("threshold"),
            "sigma_k": m.get("sigma_k"), "kept_correct": kept_correct(cell),
            "train_seconds": m["timings"].get("train"), "run_dir": str(cell), "note": note}


def cell_damage(cell: Path, cfg: RunConfig) -> str | None:
    """Why a finished cell cannot be read as it is (a file changed since its stage wrote it, config.yaml
    or metrics.json damaged), or None."""
    from iwsi.pipeline import changed_keys

    run = RunDir(cell)
    damage = run.verify()
    if damage:
        return damage[2]
    if changed_keys(run, cfg) is None:
        return "config.yaml was changed or damaged since iwsi wrote it"
    m = read_json(cell / RUN_FILE.metrics, None, quiet=True)
    if not (isinstance(m, dict) and {"num_kept", "num_majority"} <= m.keys() and isinstance(m.get("timings"), dict)
            and isinstance(m.get("accuracy", {}), dict)):
        return "metrics.json is damaged"
    return None


def shared_path(out: Path, dataset: str, seed: int) -> Path:
    """The shared run directory of one (dataset, seed) in ablation directory `out`."""
    return out / "shared" / f"{dataset}-s{seed}"


def check_shared_from(source: Path) -> None:
    if owner(source) != "ablation" or not (source / "shared").is_dir():
        raise RunDirError(f"--shared-from {source} is not an iwsi ablation directory with shared/ stages: "
                          "give the --out of an earlier `iwsi ablate`")


def reuse_shared(source: Path, out: Path, datasets: list[str], seeds: list[int]) -> list[Path]:
    """Hard-link source's shared/<dataset>-s<seed> directories this sweep lacks (every iwsi write replaces a
    file, so neither copy ever changes the other, except the appended log and progress files, which are
    copied; the lock file is not taken). Returns the new directories."""
    def link(src: str, dst: str) -> None:
        shutil.copy2(src, dst) if Path(src).name in APPENDED else os.link(src, dst)

    made = []
    for dataset in datasets:
        for seed in seeds:
            src, dst = shared_path(source, dataset, seed), shared_path(out, dataset, seed)
            if src.is_dir() and not dst.exists():
                shutil.copytree(src, dst, copy_function=link, ignore=shutil.ignore_patterns(RUN_FILE.lock))
                made.append(dst)
    return made


def kept_correct(cell: Path) -> float:
    """Share (0–1) of the cell's kept samples whose answer is correct (NaN without gold answers)."""
    df = pd.read_parquet(cell / RUN_FILE.samples, columns=["kept", "is_correct"])
    right = df.loc[df["kept"].astype(bool), "is_correct"].astype("float")
    return float(right.mean()) if right.notna().any() else float("nan")


def earlier_cells(out: Path, done: set[str]) -> list[dict]:
    """Rows of the finished cells an earlier sweep left in out/cells (e.g. `--k 50` after `--k 80`), so the
    tables cover every cell of the directory."""
    rows = []
    for cell in sorted((out / "cells").glob("*/*")):
        if str(cell) in done or not RunDir(cell).is_done("evaluate"):
            continue
        try:
            cfg = load_config(cell / RUN_FILE.config)
        except ConfigError:  # its settings are unknown: the sweep that made it redoes it (cell_damage)
            print(f"iwsi: {cell} is left out of the tables: its config.yaml is damaged; rerun the sweep that made "
                  "it to redo it, or delete the folder", file=sys.stderr)
            continue
        rows.append(run_cell(cfg, RunDir(shared_path(out, cfg.dataset, cfg.seed)), cell))
    return rows


def ablate(cfg: RunConfig, out: Path, methods: list[str], ks: list[float], seeds: list[int],
           datasets: list[str], data_root: Path) -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        for seed in seeds:
            shared = run_shared(cfg, data_root, methods, dataset, seed, shared_path(out, dataset, seed))
            for method, k in plan_cells(methods, ks):
                cell_cfg = replace(cfg, dataset=dataset, data_dir=data_dir(cfg, dataset, data_root), seed=seed,
                                   method=method, k=k)
                rows.append(run_cell(cell_cfg, shared, out / "cells" / dataset / f"{method}-k{k:g}-s{seed}"))
                write_parquet(out / "results.parquet", pd.DataFrame(rows))  # partial table while running
    results = pd.DataFrame(rows + earlier_cells(out, {r["run_dir"] for r in rows}))
    report.write_all(results, out, table_k=report.table_k(sorted(set(results["k"]))))
    return results


def main(args, default_config: Path | None = None) -> int:
    """Entry point for `iwsi ablate` (args from iwsi/commands/ablate.py; `default_config` when no --config)."""
    cfg = load_config(args.config or default_config, parse_sets(args.set))
    methods = parse_list(args.methods, str, "methods")
    ks = parse_list(args.k, float, "k")
    seeds = parse_list(args.seeds, int, "seeds")
    datasets = parse_list(args.datasets, str, "datasets") if args.datasets else [cfg.dataset]
    # validate everything before any work: every k, seed and dataset through RunConfig, then the methods
    [replace(cfg, k=k) for k in ks] + [replace(cfg, seed=s) for s in seeds]
    [replace(cfg, dataset=d, data_dir=cfg.data_dir or ".") for d in datasets]
    plan_cells(methods, ks)
    [replace(cfg, method=m) for m in methods]  # each method's own checks (rm needs a reward model)
    out = Path(args.out or ablations_root() / f"{'-'.join(datasets)}-{cfg.hash()}")
    data_root = Path(args.data_root)
    for d in datasets:  # the other datasets' folders, before the ablation folder is made
        if data_dir(cfg, d, data_root):
            require_dir(data_dir(cfg, d, data_root), d)
    shared_from = Path(args.shared_from) if getattr(args, "shared_from", None) else None
    if shared_from:
        check_shared_from(shared_from)
    check_out_dir(out, "ablation")
    claim_dir(out, "ablation")
    if shared_from:
        for path in reuse_shared(shared_from, out, datasets, seeds):
            print(f"shared stages hard-linked from {shared_from}: {path}")
    results = ablate(cfg, out, methods, ks, seeds, datasets, data_root)
    print((out / "results.md").read_text())
    print(f"ablation directory: {out} ({len(results)} cells)")
    return 0

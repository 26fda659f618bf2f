"""Ablation runner: methods × k × seeds (× datasets) sharing the expensive stages.

    iwsi ablate [--config FILE] [--out DIR] --methods lmsi,iwsi,entropy --k 60,80,100 --seeds 0,1,2
                [--datasets synthetic-arith,svamp] [--set KEY=VALUE ...]

Layout of DIR (default cache/ablations/<name>):
  shared/<dataset>-s<seed>/                 generate → vote → score → embed and the base-model
                                            evaluation, once per (dataset, seed)
  cells/<dataset>/<method>-k<k>-s<seed>/    filter → train → evaluate, with the shared artefacts
                                            copied in (a finished cell is never recomputed)
  results.parquet / .csv / .md / .tex, accuracy_vs_k.csv, sigma_vs_k.csv
Methods that ignore k (lmsi, iwsi-w, ground-truth) run once per (dataset, seed), recorded at k = 100.
"""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from iwsi import filtering, report
from iwsi.config import METHODS, ConfigError, RunConfig, load_config, parse_sets
from iwsi.contract import ablations_root
from iwsi.rundir import RunDir, atomic_file, check_out_dir, claim_dir, read_json, write_parquet

SHARED_STAGES = ("generate", "vote", "score", "embed")
SHARED_FILES = ("candidates.parquet", "samples.parquet", "valid.parquet", "umap.parquet", "suggestions.parquet",
                "eval_base.parquet")


def parse_list(text: str, kind=str, what: str = "value") -> list:
    try:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{what} {text!r} is not a comma-separated list of {kind.__name__}s") from None


def plan_cells(methods: list[str], ks: list[float]) -> list[tuple[str, float]]:
    """(method, k) pairs to train; k-free methods once at k = 100."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown method {bad[0]!r}: choose from {', '.join(METHODS)}")
    cells = []
    for m in methods:
        cells += [(m, float(k)) for k in ks] if filtering.METHODS[m].uses_k else [(m, 100.0)]
    return cells


def shared_config(cfg: RunConfig, dataset: str, seed: int, data_root: Path) -> RunConfig:
    """The settings of the shared stages of one (dataset, seed). Keys of the later stages are reset
    to their defaults so the shared directory's config never changes between sweeps."""
    from iwsi.pipeline import STAGE_KEYS

    data_dir = cfg.data_dir if dataset == cfg.dataset else (None if dataset == "synthetic-arith"
                                                            else str(data_root / dataset))
    later = {k: getattr(RunConfig(), k) for s in ("filter", "train", "evaluate") for k in STAGE_KEYS[s]}
    return replace(cfg, dataset=dataset, data_dir=data_dir, seed=seed, **later)


def run_shared(cfg: RunConfig, path: Path, methods: list[str], reward_model: str | None) -> Path:
    """Shared stages + base evaluation (+ self/rm scores when those methods are asked for)."""
    from iwsi.pipeline import Context, add_judge_scores, prepare, run_pipeline

    run_pipeline(cfg, path, until=SHARED_STAGES[-1])
    run, splits, _ = prepare(cfg, path)
    ctx = Context(replace(cfg, reward_model=reward_model), run, splits)
    with run.lock():
        if not (run / "eval_base.parquet").exists():
            from iwsi.evaluate import greedy_eval

            write_parquet(run / "eval_base.parquet",
                          greedy_eval(ctx.model, ctx.tokenizer, splits.test, cfg, run, "base"))
        df = ctx.samples()
        for method in methods:  # judges' scores (self, rm) once per shared directory
            df = add_judge_scores(ctx, df, method)
        write_parquet(run / "samples.parquet", df)
        run.rewrote("samples.parquet")
    return path


def seed_cell(shared: Path, cell: Path) -> None:
    """Copy the shared artefacts and stage markers into a cell (skipped where already present)."""
    claim_dir(cell, "run")
    (cell / "stages").mkdir(parents=True, exist_ok=True)
    for name in SHARED_FILES + tuple(f"stages/{s}.json" for s in SHARED_STAGES):
        src, dst = shared / name, cell / name
        if src.exists() and not dst.exists():
            with atomic_file(dst) as tmp:
                shutil.copyfile(src, tmp)


def run_cell(cfg: RunConfig, shared: Path, cell: Path) -> dict:
    """filter → train → evaluate in `cell`; a method that keeps nothing gets a row with no accuracy."""
    from iwsi.pipeline import EmptyTrainingSet, run_pipeline
    from iwsi.rundir import StageFailed

    note = None
    if not RunDir(cell).is_done("evaluate"):
        seed_cell(shared, cell)
        try:
            run_pipeline(cfg, cell)
        except StageFailed as err:
            if not isinstance(err.cause, EmptyTrainingSet):
                raise
            note = str(err.cause)
    m = read_json(cell / "metrics.json")
    base = pd.read_parquet(shared / "eval_base.parquet")["is_correct"].fillna(False).astype(bool).mean()
    return {"dataset": cfg.dataset, "method": cfg.method, "k": cfg.k, "seed": cfg.seed,
            "accuracy": m.get("accuracy", {}).get("trained", float("nan")), "base_accuracy": float(base),
            "num_kept": m["num_kept"], "num_majority": m["num_majority"], "threshold": m.get("threshold"),
            "sigma_k": m.get("sigma_k"), "kept_correct": kept_correct(cell),
            "train_seconds": m["timings"].get("train"), "run_dir": str(cell), "note": note}


def kept_correct(cell: Path) -> float:
    """Share (0–1) of the cell's kept samples whose answer is correct (NaN without gold answers)."""
    df = pd.read_parquet(cell / "samples.parquet", columns=["kept", "is_correct"])
    right = df.loc[df["kept"].astype(bool), "is_correct"].astype("float")
    return float(right.mean()) if right.notna().any() else float("nan")


def ablate(cfg: RunConfig, out: Path, methods: list[str], ks: list[float], seeds: list[int],
           datasets: list[str], data_root: Path) -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        for seed in seeds:
            base = shared_config(cfg, dataset, seed, data_root)
            shared = run_shared(base, out / "shared" / f"{dataset}-s{seed}", methods, cfg.reward_model)
            for method, k in plan_cells(methods, ks):
                cell_cfg = replace(cfg, dataset=dataset, data_dir=base.data_dir, seed=seed, method=method, k=k)
                rows.append(run_cell(cell_cfg, shared, out / "cells" / dataset / f"{method}-k{k:g}-s{seed}"))
                write_parquet(out / "results.parquet", pd.DataFrame(rows))  # partial table while running
    results = pd.DataFrame(rows)
    report.write_all(results, out, shared_samples(out), table_k=report.table_k(ks))
    return results


def shared_samples(out: Path) -> dict[tuple[str, int], pd.DataFrame]:
    found = {}
    for path in sorted((out / "shared").glob("*-s*/samples.parquet")):
        dataset, seed = path.parent.name.rsplit("-s", 1)
        found[(dataset, int(seed))] = pd.read_parquet(path)
    return found


def main(args) -> int:
    """Entry point for `iwsi ablate` (args from iwsi.cli)."""
    config = args.config or (Path(__file__).resolve().parent.parent / "configs" / "demo.yaml")
    cfg = load_config(config, parse_sets(args.set))
    methods = parse_list(args.methods, str, "methods")
    ks = parse_list(args.k, float, "k")
    seeds = parse_list(args.seeds, int, "seeds")
    datasets = parse_list(args.datasets, str, "datasets") if args.datasets else [cfg.dataset]
    # validate everything before any work: every k and dataset through RunConfig, then the methods
    [replace(cfg, k=k) for k in ks] + [replace(cfg, dataset=d, data_dir=cfg.data_dir or ".") for d in datasets]
    plan_cells(methods, ks)
    [replace(cfg, method=m) for m in methods]  # each method's own checks (rm needs a reward model)
    out = Path(args.out or ablations_root() / f"{'-'.join(datasets)}-{cfg.hash()}")
    data_root = Path(getattr(args, "data_root", None) or "../shared/data")
    check_out_dir(out, "ablation")
    claim_dir(out, "ablation")
    results = ablate(cfg, out, methods, ks, seeds, datasets, data_root)
    print((out / "results.md").read_text())
    print(f"ablation directory: {out} ({len(results)} cells)")
    return 0

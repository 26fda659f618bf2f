"""Synthetic but contract-complete run directories for tests and the dashboard benchmark.

`make_run_dir(path, num_questions, num_samples, seed)` writes the files of docs/run-directory.md that
the dashboard reads
(config.yaml, status.json, progress.jsonl, log.txt, samples/valid/eval/umap/suggestions parquet,
metrics.json) with realistic shapes: log-normal losses, wrong answers further from the valid loss
than right ones, gold known for most questions, some redundant / jumping / spurious rationales.
Vote, DS weights and the kept set come from the pipeline's own functions. No model is involved.
GSM8K scale for the benchmark:

    PYTHONPATH=. python -m benchmarks.fixtures cache/runs/bench-gsm8k --questions 7099 --samples 15
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from iwsi import filtering
from iwsi.contract import STAGES
from iwsi.dsweight import ds_weight, importance_weight
from iwsi.rundir import claim_dir
from iwsi.taxonomy import DEFECTS, suggest_labels
from iwsi.vote import agreement, answer_entropy, majority

NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana")


def _rationale(rng: np.random.Generator, a: int, b: int, answer: str, kind: str) -> str:
    name = NAMES[a % len(NAMES)]
    steps = [f"{name} has {a} apples.", f"{name} buys {b} more, so {a} + {b} = {a + b}.",
             f"Then {name} doubles them: {a + b} * 2 = {2 * (a + b)}."]
    if kind == "redundant":
        steps = steps + [steps[1], steps[1]]
    elif kind == "jumping":
        steps = []
    elif kind == "spurious":
        steps[1] = f"{name} buys {b} more, so {a} + {b} = {a + b + int(rng.integers(1, 9))}."
    return " ".join(steps + [f"The answer is {answer}."])


def _answers(rng: np.random.Generator, gold: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per question a difficulty; each sample right with that probability, else one of 3 wrong values."""
    q = len(gold)
    p_right = rng.beta(2.0, 1.3, size=q)
    right = rng.random((q, m)) < p_right[:, None]
    wrong = gold[:, None] + rng.choice([1, -3, 10], size=(q, m)) * (1 + rng.integers(0, 2, size=(q, 1)))
    values = np.where(right, gold[:, None], wrong).astype(object)
    values[rng.random((q, m)) < 0.04] = None  # unparseable outputs
    return values, right


def _vote(values: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    """Majority answer, agreement and normalised entropy per question, by the vote stage's functions."""
    rows = [[None if v is None else str(v) for v in row] for row in values]
    winners = [majority(row) for row in rows]
    return (winners, np.array([agreement(row, w) for row, w in zip(rows, winners)]),
            np.array([answer_entropy(row) for row in rows]))


def make_samples(rng: np.random.Generator, num_questions: int, num_samples: int, valid_mean: float) -> pd.DataFrame:
    q, m = num_questions, num_samples
    qids = np.array([f"q{i:05d}" for i in range(q)])
    gold = rng.integers(5, 200, size=q)
    values, right = _answers(rng, gold, m)
    majority, agreement, entropy = _vote(values)
    has_gold = rng.random(q) < 0.8
    # Loss: log-normal around the valid mean; wrong answers and uncertain questions spread wider.
    spread = 0.18 + 0.35 * (~right) + 0.25 * entropy[:, None]
    loss = valid_mean * np.exp(rng.normal(-0.05, 1.0, size=(q, m)) * spread)
    df = pd.DataFrame({"question_id": np.repeat(qids, m), "sample_id": np.tile(np.arange(m), q),
                       "answer": values.ravel(), "loss": loss.ravel().astype(float)})
    questions = [f"{NAMES[i % 8]} has {i % 50 + 3} apples and buys more. How many now?" for i in range(q)]
    df["question"] = np.repeat(questions, m)
    df["gold"] = np.repeat(np.where(has_gold, gold.astype(str), None), m)
    df["answer"] = df["answer"].map(lambda v: None if v is None else str(v))
    df["is_correct"] = pd.array(np.where(df["gold"].isna(), None, df["answer"] == df["gold"]), dtype="boolean")
    maj = np.repeat(np.array([None if v is None else str(v) for v in majority], dtype=object), m)
    df["is_majority"] = (df["answer"].to_numpy() == maj) & pd.notna(maj)
    df["agreement"], df["entropy"] = np.repeat(agreement, m), np.repeat(entropy, m)
    df["w_prime"] = importance_weight(df["loss"], valid_mean)
    df["ds_weight"] = ds_weight(df["w_prime"])
    df["num_tokens"] = rng.integers(20, 120, size=len(df))
    df["rationale"] = _rationales(rng, df, gold, m)
    # IFD's losses from a generator of their own, so the columns above stay what they were before IFD existed
    extra = np.random.default_rng(len(df))
    df["loss_answer"] = df["loss"] * np.exp(extra.normal(0.0, 0.1, len(df)))
    df["loss_alone"] = df["loss_answer"] / np.exp(extra.normal(-0.25, 0.2, len(df)))
    df["ifd"] = df["loss_answer"] / df["loss_alone"]
    return df


def _rationales(rng: np.random.Generator, df: pd.DataFrame, gold: np.ndarray, m: int) -> list[str]:
    # High-DSE samples are more often degenerate, as the paper's taxonomy observes.
    ds = df["ds_weight"].to_numpy()
    odd = rng.random(len(df)) < np.clip((ds - 1.1) * 0.6, 0.02, 0.7)
    kinds = np.where(odd, rng.choice(list(DEFECTS), size=len(df)), "plain")
    a, b = rng.integers(2, 40, size=len(df)), rng.integers(1, 30, size=len(df))
    answers = df["answer"].fillna("unknown").to_numpy()
    return [_rationale(rng, int(x), int(y), ans, kind) for x, y, ans, kind in zip(a, b, answers, kinds)]


def make_valid(rng: np.random.Generator, n: int, valid_mean: float) -> pd.DataFrame:
    loss = valid_mean * np.exp(rng.normal(0, 0.15, size=n))
    loss *= valid_mean / loss.mean()  # so valid_loss_mean is exact
    a, b = rng.integers(2, 40, size=n), rng.integers(1, 30, size=n)
    return pd.DataFrame({"question_id": [f"v{i:04d}" for i in range(n)],
                         "question": [f"Valid question {i}: {x} apples plus {y}, doubled?"
                                      for i, x, y in zip(range(n), a, b)],
                         "rationale": [_rationale(rng, int(x), int(y), str(2 * (x + y)), "plain")
                                       for x, y in zip(a, b)],
                         "gold": [str(2 * (x + y)) for x, y in zip(a, b)], "loss": loss})


def make_valid_pool(valid: pd.DataFrame, seed: int, extra: int = 40) -> pd.DataFrame:
    """valid_pool.parquet: D_v, then `extra` further valid rationales with losses of the same spread."""
    more = make_valid(np.random.default_rng(seed + 7), extra, float(valid["loss"].mean()))
    more["question_id"] = [f"vp{i:04d}" for i in range(extra)]
    return pd.concat([valid.assign(in_dv=True), more.assign(in_dv=False)], ignore_index=True)


def make_umap(rng: np.random.Generator, samples: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    # Valid near the origin; self samples drift away with their DS weight (what Fig. 4's map shows).
    n, ds = len(samples), samples["ds_weight"].to_numpy()
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = rng.gamma(2.0, 0.6, n) + 3 * np.log(ds)
    sx, sy = radius * np.cos(angle), radius * np.sin(angle)
    vx, vy = rng.normal(0, 0.8, len(valid)), rng.normal(0, 0.8, len(valid))
    return pd.DataFrame({"source": ["valid"] * len(valid) + ["self"] * n,
                         "question_id": np.concatenate([valid["question_id"], samples["question_id"]]),
                         "sample_id": np.concatenate([np.full(len(valid), -1), samples["sample_id"]]).astype(int),
                         "x": np.concatenate([vx, sx]).astype(np.float32),
                         "y": np.concatenate([vy, sy]).astype(np.float32)})


def make_eval(rng: np.random.Generator, n: int) -> pd.DataFrame:
    gold = rng.integers(5, 200, size=n).astype(str)
    frames = []
    for model, acc in (("base", 0.31), ("trained", 0.36)):
        ok = rng.random(n) < acc
        answer = np.where(ok, gold, "0")
        frames.append(pd.DataFrame({"model": model, "question_id": [f"t{i:04d}" for i in range(n)],
                                    "output": [f"... The answer is {a}." for a in answer], "answer": answer,
                                    "gold": gold, "is_correct": ok}))
    return pd.concat(frames, ignore_index=True)


def _write_text_files(path: Path, config: dict, metrics: dict) -> None:
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (path / "status.json").write_text(json.dumps({"state": "done", "pid": None, "stage": "evaluate", "error": None,
                                                  "started": "2024-08-19T10:00:00+00:00",
                                                  "updated": "2024-08-19T10:42:00+00:00"}))
    lines = [json.dumps({"stage": s, "done": t, "total": 10, "elapsed": 3.0 * (i + 1) * t / 10,
                         "time": "2024-08-19T10:00:00+00:00"}) for i, s in enumerate(STAGES) for t in (5, 10)]
    (path / "progress.jsonl").write_text("\n".join(lines) + "\n")
    log = [f"2024-08-19T10:0{i}:00+00:00 stage {s} done\n" for i, s in enumerate(STAGES)]
    (path / "log.txt").write_text("".join(log))


def make_run_dir(path: str | Path, num_questions: int = 50, num_samples: int = 4, seed: int = 0,
                 dataset: str = "gsm8k", k: float = 80.0, with_optional: bool = True, method: str = "iwsi") -> Path:
    """Write a complete synthetic run directory trained with `method` at k; `with_optional=False` leaves
    out umap/eval/suggestions."""
    path = Path(path)
    claim_dir(path, "run")
    rng = np.random.default_rng(seed)
    valid_mean = 0.8
    valid = make_valid(rng, max(5, num_questions // 20), valid_mean)
    samples = make_samples(rng, num_questions, num_samples, float(valid["loss"].mean()))
    mask = filtering.select(samples, method, k)[0].to_numpy(bool)
    sigma = filtering.iwsi(samples, k)[1]
    samples["kept"] = mask
    samples.to_parquet(path / "samples.parquet", index=False)
    valid.to_parquet(path / "valid.parquet", index=False)
    make_valid_pool(valid, seed).to_parquet(path / "valid_pool.parquet", index=False)
    evals = make_eval(rng, 200)
    if with_optional:
        make_umap(rng, samples, valid).to_parquet(path / "umap.parquet", index=False)
        suggest_labels(samples, valid).to_parquet(path / "suggestions.parquet", index=False)
        evals.to_parquet(path / "eval.parquet", index=False)
    config = {"dataset": dataset, "model": "embedded", "method": method, "k": k, "num_questions": num_questions,
              "num_samples": num_samples, "seed": seed}
    acc = evals.groupby("model")["is_correct"].mean().round(4).to_dict() if with_optional else {}
    metrics = {"valid_loss_mean": float(valid["loss"].mean()), "k": k, "sigma_k": sigma,
               "num_questions": num_questions, "num_candidates": len(samples),
               "num_majority": int(samples["is_majority"].sum()), "num_kept": int(mask.sum()),
               "accuracy": acc, "method": method, "threshold": sigma,
               "timings": {s: 3.0 * (i + 1) for i, s in enumerate(STAGES)}}
    _write_text_files(path, config, metrics)
    return path


def make_ablation_dir(path: str | Path, seed: int = 0) -> Path:
    """cache/ablations/<name>/ with results.parquet (dataset, method, k, seed, accuracy, num_kept,
    threshold) + .csv/.md."""
    path = Path(path)
    claim_dir(path, "ablation")
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, base in (("gsm8k", 0.30), ("svamp", 0.42)):
        for method, bonus in (("lmsi", 0.0), ("iwsi", 0.02)):
            # as `iwsi ablate` plans its cells: a method that ignores k runs once, recorded at k = 100
            for k in (50, 60, 70, 80, 90, 100) if method == "iwsi" else (100,):
                for s in range(3):
                    peak = bonus * (1 - abs(k - 80) / 40) if method == "iwsi" else 0.0
                    rows.append({"dataset": dataset, "method": method, "k": float(k), "seed": s,
                                 "accuracy": base + peak + rng.normal(0, 0.006), "num_kept": int(800 * k / 100),
                                 "threshold": 1 + k / 100})
    df = pd.DataFrame(rows)
    df.to_parquet(path / "results.parquet", index=False)
    df.to_csv(path / "results.csv", index=False)
    (path / "results.md").write_text(df.to_string(index=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a synthetic run directory (dashboard tests and benchmark).")
    ap.add_argument("out")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="gsm8k")
    args = ap.parse_args(argv)
    make_run_dir(args.out, args.questions, args.samples, args.seed, args.dataset)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

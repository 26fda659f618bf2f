"""Export the kept set of a run for a chosen k as SFT JSONL (pure pandas, no torch).

Reads RUN_DIR/samples.parquet (+ config.yaml); writes OUT (one `{"prompt", "completion"}` object per
line, the prompt/completion format TRL's SFTTrainer reads) and OUT.manifest.json (config, k, σ_k%,
counts). The dashboard offers the same files as downloads.

    python -m iwsi.export RUN_DIR --k 80 --out kept.jsonl      # or: iwsi export RUN_DIR --k 80 --out kept.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from iwsi.filtering import num_to_keep
from iwsi.runs import read_config


def kept_mask(ds_weight: np.ndarray, is_majority: np.ndarray, k: float) -> tuple[np.ndarray, float]:
    """The k % of majority rows with the lowest DS weight and σ_k% (their largest weight).

    Same rule as iwsi.filtering.iwsi (stable order breaks ties), on numpy arrays so the
    dashboard slider stays fast on 100k rows."""
    maj_idx = np.flatnonzero(is_majority)
    order = np.argsort(ds_weight[maj_idx], kind="stable")
    chosen = maj_idx[order[: num_to_keep(len(maj_idx), k)]]
    mask = np.zeros(len(ds_weight), dtype=bool)
    mask[chosen] = True
    sigma = float(ds_weight[chosen].max()) if len(chosen) else math.nan
    return mask, sigma


def kept_frame(samples: pd.DataFrame, k: float) -> tuple[pd.DataFrame, float]:
    mask, sigma = kept_mask(samples["ds_weight"].to_numpy(float), samples["is_majority"].to_numpy(bool), k)
    return samples[mask], sigma


def to_sft_jsonl(kept: pd.DataFrame) -> str:
    """`{"prompt": "Q: ...\\nA:", "completion": " rationale"}` per kept row."""
    lines = [json.dumps({"prompt": f"Q: {q}\nA:", "completion": f" {r}"}, ensure_ascii=False)
             for q, r in zip(kept["question"], kept["rationale"])]
    return "\n".join(lines) + ("\n" if lines else "")


def build_manifest(samples: pd.DataFrame, kept: pd.DataFrame, k: float, sigma: float, config: dict) -> dict:
    return {"k": k, "sigma_k": None if math.isnan(sigma) else sigma, "format": "trl prompt/completion jsonl",
            "num_candidates": int(len(samples)), "num_majority": int(samples["is_majority"].sum()),
            "num_kept": int(len(kept)), "num_questions": int(samples["question_id"].nunique()),
            "num_questions_kept": int(kept["question_id"].nunique()), "config": config}


def export_kept(run_dir: str | Path, k: float, out: str | Path) -> dict:
    """Write the kept set for k to OUT (+ OUT.manifest.json) and return the manifest."""
    run_dir, out = Path(run_dir), Path(out)
    samples = pd.read_parquet(run_dir / "samples.parquet",
                              columns=["question_id", "sample_id", "question", "rationale", "is_majority", "ds_weight"])
    kept, sigma = kept_frame(samples, k)
    manifest = build_manifest(samples, kept, k, sigma, read_config(run_dir))
    manifest["run_dir"] = str(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_sft_jsonl(kept))
    Path(f"{out}.manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="iwsi export", description="Export a run's kept set for k as SFT JSONL.")
    ap.add_argument("run_dir", help="run directory with samples.parquet")
    ap.add_argument("--k", type=float, default=80.0, help="percentage of majority samples kept (default 80)")
    ap.add_argument("--out", required=True, help="output JSONL file (a .manifest.json is written next to it)")
    args = ap.parse_args(argv)
    if not 0 < args.k <= 100:
        ap.error(f"--k {args.k} is out of range: it must be in (0, 100]")
    if not (Path(args.run_dir) / "samples.parquet").exists():
        ap.error(f"{args.run_dir}/samples.parquet not found: run the pipeline first (iwsi run --out {args.run_dir})")
    m = export_kept(args.run_dir, args.k, args.out)
    print(f"wrote {m['num_kept']} of {m['num_majority']} majority samples (k={args.k:g}, σ_k={m['sigma_k']}) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

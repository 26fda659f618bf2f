"""Export the kept set of a run for a chosen k as SFT JSONL (pure pandas, no torch).

Reads RUN_DIR/samples.parquet (+ config.yaml); the kept set is the run's own method's at k
(`--method` for another rule), computed by `filtering.select` like the filter stage. Writes OUT (one
`{"prompt", "completion"}` object per line, the prompt/completion format TRL's SFTTrainer reads) and
OUT.manifest.json (config, k, σ_k%, counts). The dashboard offers the same files as downloads.

    iwsi export RUN_DIR --k 80 --out kept.jsonl      # options and refusals: iwsi/commands/export.py
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import pandas as pd

from iwsi import filtering
from iwsi.contract import RUN_FILE
from iwsi.prompts import format_rationale_target, question_suffix
from iwsi.rundir import atomic_write_bytes, atomic_write_text, can_create_in, nearest_existing, owner, write_json
from iwsi.runs import read_config


def kept_frame(samples: pd.DataFrame, k: float, method: str = "iwsi", entropy_threshold: float | None = None,
               seed: int = 0) -> tuple[pd.DataFrame, float]:
    """The rows `method` keeps at k (the pipeline's own rule, `filtering.select`) and σ_k%."""
    mask, _ = filtering.select(samples, method, k, entropy_threshold, seed)
    return samples[mask.to_numpy(bool)], filtering.iwsi(samples, k)[1]


def to_sft_jsonl(kept: pd.DataFrame) -> str:
    """`{"prompt": "Q: ...\\nA:", "completion": " rationale\\n\\n"}` per kept row: exactly the pair the train
    stage learns (iwsi/prompts.py), so a TRL run on the export trains on the same text."""
    lines = [json.dumps({"prompt": question_suffix(q), "completion": format_rationale_target(r)}, ensure_ascii=False)
             for q, r in zip(kept["question"], kept["rationale"])]
    return "\n".join(lines) + ("\n" if lines else "")


def build_manifest(samples: pd.DataFrame, kept: pd.DataFrame, k: float, sigma: float, config: dict,
                   method: str = "iwsi") -> dict:
    return {"method": method, "k": k, "sigma_k": None if math.isnan(sigma) else sigma,
            "format": "trl prompt/completion jsonl",
            "num_candidates": int(len(samples)), "num_majority": int(samples["is_majority"].sum()),
            "num_kept": int(len(kept)), "num_questions": int(samples["question_id"].nunique()),
            "num_questions_kept": int(kept["question_id"].nunique()), "config": config}


def run_method(config: dict) -> tuple[str, float | None, int]:
    """The method a run was made with, its entropy threshold and seed (runs without a method used iwsi)."""
    method = config.get("method")
    method = method if isinstance(method, str) and method in filtering.METHODS else "iwsi"  # a list is unhashable
    seed = config.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0  # numpy's seeds
    threshold = config.get("entropy_threshold")
    threshold = threshold if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) else None
    return method, threshold if method == "entropy" else None, seed


def export_kept(run_dir: str | Path, k: float, out: str | Path, method: str | None = None) -> dict:
    """Write the set `method` (default: the run's own) keeps at k to OUT (+ OUT.manifest.json)."""
    text, manifest = kept_export(run_dir, k, method)
    write_export(Path(out), text, manifest)
    return manifest


def kept_export(run_dir: str | Path, k: float, method: str | None = None) -> tuple[str, dict]:
    """The JSONL text and the manifest of the set `method` (default: the run's own) keeps at k; reads
    the run, writes nothing."""
    run_dir = Path(run_dir)
    samples = pd.read_parquet(run_dir / RUN_FILE.samples)
    config = read_config(run_dir)
    own, threshold, seed = run_method(config)
    method = method or own
    kept, sigma = kept_frame(samples, k, method, threshold if method == own else None, seed)
    manifest = build_manifest(samples, kept, k, sigma, config, method)
    manifest["run_dir"] = str(run_dir)
    return to_sft_jsonl(kept), manifest


def write_export(out: Path, text: str, manifest: dict) -> None:
    """OUT.manifest.json, then OUT, each atomic. When OUT cannot be written (a full disk), the manifest
    is put back as it was, so no manifest ever describes an OUT that was not written."""
    mpath = manifest_path(out)
    old = mpath.read_bytes() if mpath.is_file() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(mpath, manifest)
    try:
        atomic_write_text(out, text)
    except OSError:
        with contextlib.suppress(OSError):
            mpath.unlink() if old is None else atomic_write_bytes(mpath, old)
        raise


def manifest_path(out: Path) -> Path:
    return Path(f"{out}.manifest.json")


def check_out(out: Path) -> str | None:
    """Why OUT may not be written (None when it may): never inside a run or ablation directory, never
    over a file that an earlier export did not write, never a folder or an uncreatable path."""
    target = out.resolve()
    for folder in (target.parent, *target.parent.parents):
        kind = owner(folder)
        if kind:
            return f"--out {out} is inside the {kind} directory {folder}: write the export outside it"
    if out.is_dir():
        return f"--out {out} is a folder: give a file name such as {out / 'kept.jsonl'}"
    for path in (out, manifest_path(out)):
        if path.exists() and not manifest_path(out).is_file():
            return f"--out {out}: {path} exists and was not written by iwsi export; choose another name"
    if not can_create_in(target.parent):
        return (f"--out {out} cannot be created (no writable folder at {nearest_existing(target.parent)}): give a "
                "writable path")
    return None


if __name__ == "__main__":  # `python -m iwsi.export ...` is `iwsi export ...`
    from iwsi.cli import main

    raise SystemExit(main(["export", *sys.argv[1:]]))

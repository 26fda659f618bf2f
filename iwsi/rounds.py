"""Iterated self-improvement (`rounds: N`): round r samples, filters and trains from round r-1's model.

Round 1 is the run directory itself. Round r ≥ 2 is a complete run directory `rounds/r<r>/` whose
model is round r-1's adapter merged into its base (saved once as `rounds/r<r>-model/`), so every
stage, resume and artefact works exactly as in round 1. Accuracy per round goes to metrics.json.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from iwsi.contract import RUN_FILE
from iwsi.rundir import read_json, write_json


def save_merged(model_name: str, adapter: Path, out: Path, trust_remote_code: bool = False) -> Path:
    """Merge a LoRA adapter into its base model and save a plain HF directory (atomically)."""
    import shutil

    from iwsi.evaluate import merged_model
    from iwsi.models import load_tokenizer

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged_model(model_name, adapter, trust_remote_code).save_pretrained(tmp)
    load_tokenizer(model_name, trust_remote_code).save_pretrained(tmp)
    tmp.rename(out)
    return out


def run_rounds(cfg, run_dir: Path, run_one) -> list[dict]:
    """Rounds 2..cfg.rounds after round 1 in `run_dir`; `run_one(cfg, out)` runs one pipeline."""
    history = [round_entry(1, run_dir)]
    model, previous = cfg.model, run_dir
    for r in range(2, cfg.rounds + 1):
        model_dir = run_dir / "rounds" / f"r{r}-model"
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        if not model_dir.exists():
            save_merged(model, previous / RUN_FILE.adapter, model_dir, cfg.trust_remote_code)
        sub = run_dir / "rounds" / f"r{r}"
        run_one(replace(cfg, model=str(model_dir), rounds=1), sub)
        history.append(round_entry(r, sub))
        model, previous = str(model_dir), sub
    metrics = read_json(run_dir / RUN_FILE.metrics, {})
    write_json(run_dir / RUN_FILE.metrics, {**metrics, "rounds": history})
    return history


def round_entry(r: int, path: Path) -> dict:
    m = read_json(path / RUN_FILE.metrics, {})
    acc = m.get("accuracy", {})
    return {"round": r, "run_dir": str(path), "accuracy_before": acc.get("base"), "accuracy_after": acc.get("trained"),
            "num_kept": m.get("num_kept")}

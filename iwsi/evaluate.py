"""Greedy accuracy on the test questions, for the stages `evaluate-base` (the base model, right after
score: writes `eval_base.parquet`) and `evaluate` (the trained adapter, beside the base rows:
writes `eval.parquet`). Columns: model, question_id, output, answer, gold, is_correct; same few-shot
prompt and answer extraction as generation.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from iwsi.answers import extract_answer, is_correct
from iwsi.generate import complete
from iwsi.records import Question
from iwsi.rundir import Progress, RunDir


def greedy_eval(model, tokenizer, test: list[Question], cfg, run: RunDir, label: str) -> pd.DataFrame:
    bar = Progress(run, f"evaluate-{label}", len(test), unit="q")
    outs = complete(model, tokenizer, test, 1, engine=cfg.engine, temperature=0.0,
                    max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, progress=bar)
    bar.close()
    return eval_frame(test, outs, label)


def eval_frame(test: list[Question], outs: list[list[str]], label: str) -> pd.DataFrame:
    rows = []
    for q, (text,) in zip(test, outs):
        answer = extract_answer(text, q.task)
        rows.append({"model": label, "question_id": q.question_id, "output": text.strip(), "answer": answer,
                     "gold": q.gold, "is_correct": is_correct(answer, q.gold, q.task)})
    return pd.DataFrame(rows)


def accuracy(frame: pd.DataFrame) -> float:
    return float(frame["is_correct"].fillna(False).astype(bool).mean()) if len(frame) else float("nan")


def merged_model(base_name: str, adapter_dir: Path, trust_remote_code: bool = False, device=None):
    """Base model with the LoRA adapter merged in (plain weights, so any engine can run it)."""
    import torch
    from peft import PeftModel

    from iwsi.models import default_dtype, load_model

    base = load_model(base_name, dtype=torch.float32, trust_remote_code=trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    dtype = default_dtype(device)
    for param in merged.parameters():
        # Cast weights only: `.to(bf16)` would also cast the RoPE `inv_freq` buffer, which
        # from_pretrained(dtype=bf16) keeps in float32, and change greedy outputs of HF generate.
        param.data = param.data.to(dtype)
    return (merged.to(device) if device is not None else merged).eval()

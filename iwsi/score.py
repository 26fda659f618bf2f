"""Stage `score`: base-model mean token NLL of every candidate and of the valid rationales,
then w' and the DS weight (arithmetic in iwsi/dsweight.py).

Reads the voted samples table and the valid questions; the pipeline writes `samples.parquet`
(+ loss, num_tokens, w_prime, ds_weight) and `valid.parquet`.
"""
from __future__ import annotations

import pandas as pd

from iwsi.dsweight import ds_weight, importance_weight, valid_loss_mean
from iwsi.generate import engine_module
from iwsi.prompts import question_suffix
from iwsi.records import Question
from iwsi.rundir import Progress, RunDir


def losses(model, tokenizer, questions: list[str], rationales: list[str], *, engine: str, span: str,
           progress=None) -> list[tuple[float, int]]:
    """(mean NLL, tokens) of "Q: question\\nA: rationale" under the model (no few-shot prefix)."""
    contexts = [question_suffix(q) for q in questions]
    completions = [" " + r for r in rationales]
    return engine_module(engine).score(model, tokenizer, contexts, completions, span=span, progress=progress)


def score_valid(model, tokenizer, valid: list[Question], cfg, run: RunDir) -> pd.DataFrame:
    bar = Progress(run, "score-valid", len(valid), unit="seq")
    out = losses(model, tokenizer, [q.question for q in valid], [q.rationale for q in valid],
                 engine=cfg.engine, span=cfg.loss_span, progress=bar)
    bar.close()
    return pd.DataFrame({"question_id": [q.question_id for q in valid], "question": [q.question for q in valid],
                         "rationale": [q.rationale for q in valid], "gold": [q.gold for q in valid],
                         "loss": [l for l, _ in out], "num_tokens": [n for _, n in out]})


def score_samples(model, tokenizer, samples: pd.DataFrame, valid_mean: float, cfg, run: RunDir) -> pd.DataFrame:
    """Loss of every candidate (majority or not, for the dashboard), then w' and w_DS."""
    bar = Progress(run, "score", len(samples), unit="seq")
    out = losses(model, tokenizer, samples["question"].tolist(), samples["rationale"].tolist(),
                 engine=cfg.engine, span=cfg.loss_span, progress=bar)
    bar.close()
    df = samples.copy()
    df["loss"] = [l for l, _ in out]
    df["num_tokens"] = [n for _, n in out]
    df["w_prime"] = importance_weight(df["loss"], valid_mean)
    df["ds_weight"] = ds_weight(df["w_prime"])
    return df


__all__ = ["losses", "score_samples", "score_valid", "valid_loss_mean"]

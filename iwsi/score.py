"""Stage `score`: base-model mean token NLL of every candidate and of the valid rationales,
then w' and the DS weight (arithmetic in iwsi/dsweight.py).

Reads the voted samples table and the valid questions; the pipeline writes `samples.parquet`
(+ loss, num_tokens, w_prime, ds_weight) and `valid.parquet`. Losses are checkpointed in
`chunks/score-valid.parquet` and `chunks/score-NNNNN.parquet` (the questions of one generate
chunk each), so a killed run re-scores at most one chunk.
"""
from __future__ import annotations

import pandas as pd

from iwsi.dsweight import ds_weight, importance_weight, valid_loss_mean
from iwsi.generate import chunk_size, engine_module
from iwsi.prompts import question_suffix
from iwsi.records import Question
from iwsi.rundir import Progress, RunDir, read_checkpoint, write_parquet

ID_COLUMNS = ["question_id", "sample_id"]


def losses(model, tokenizer, questions: list[str], rationales: list[str], *, engine: str, span: str,
           progress=None) -> list[tuple[float, int]]:
    """(mean NLL, tokens) of "Q: question\\nA: rationale" under the model (no few-shot prefix)."""
    contexts = [question_suffix(q) for q in questions]
    completions = [" " + r for r in rationales]
    return engine_module(engine).score(model, tokenizer, contexts, completions, span=span, progress=progress)


def score_valid(model, tokenizer, valid: list[Question], cfg, run: RunDir) -> pd.DataFrame:
    path = run / "chunks" / "score-valid.parquet"
    ids = [q.question_id for q in valid]
    if not _matches(path, {"question_id": ids}):
        bar = Progress(run, "score-valid", len(valid), unit="seq")
        score_valid_chunk(model, tokenizer, valid, cfg, run, progress=bar)
        bar.close()
    scored = pd.read_parquet(path)
    return pd.DataFrame({"question_id": ids, "question": [q.question for q in valid],
                         "rationale": [q.rationale for q in valid], "gold": [q.gold for q in valid],
                         "loss": scored["loss"].tolist(), "num_tokens": scored["num_tokens"].tolist()})


def score_samples(model, tokenizer, samples: pd.DataFrame, valid_mean: float, cfg, run: RunDir) -> pd.DataFrame:
    """Loss of every candidate (majority or not, for the dashboard), then w' and w_DS."""
    bar = Progress(run, "score", len(samples), unit="seq")
    parts = []
    for index, part, path in score_chunks(samples, cfg, run):
        if is_scored(path, part):  # resume: a finished chunk is never scored again
            bar(len(part))
        else:
            score_chunk(model, tokenizer, part, path, cfg, progress=bar)
        parts.append(pd.read_parquet(path))
    bar.close()
    scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"loss": [], "num_tokens": []})
    df = samples.copy()
    df["loss"] = scored["loss"].to_numpy()
    df["num_tokens"] = scored["num_tokens"].to_numpy()
    df["w_prime"] = importance_weight(df["loss"], valid_mean)
    df["ds_weight"] = ds_weight(df["w_prime"])
    return df


def score_chunks(samples: pd.DataFrame, cfg, run: RunDir) -> list[tuple[int, pd.DataFrame, object]]:
    """(index, rows, file) per generate chunk: the unit of resume and of Ray sharding."""
    rows = chunk_size(run) * cfg.num_samples
    return [(index, samples.iloc[start:start + rows], run / "chunks" / f"score-{index:05d}.parquet")
            for index, start in enumerate(range(0, len(samples), rows))]


def is_scored(path, part: pd.DataFrame) -> bool:
    return _matches(path, {c: part[c].tolist() for c in ID_COLUMNS})


def score_chunk(model, tokenizer, part: pd.DataFrame, path, cfg, progress=None) -> None:
    """Score one chunk's rows and write its file; the same on one process or on any Ray worker."""
    _save(path, {c: part[c].tolist() for c in ID_COLUMNS},
          losses(model, tokenizer, part["question"].tolist(), part["rationale"].tolist(), engine=cfg.engine,
                 span=cfg.loss_span, progress=progress))


def score_valid_chunk(model, tokenizer, valid: list[Question], cfg, run: RunDir, progress=None) -> None:
    out = losses(model, tokenizer, [q.question for q in valid], [q.rationale for q in valid],
                 engine=cfg.engine, span=cfg.loss_span, progress=progress)
    _save(run / "chunks" / "score-valid.parquet", {"question_id": [q.question_id for q in valid]}, out)


def _save(path, ids: dict, out: list[tuple[float, int]]) -> None:
    path.parent.mkdir(exist_ok=True)
    write_parquet(path, pd.DataFrame({**ids, "loss": [loss for loss, _ in out], "num_tokens": [n for _, n in out]}))


def _matches(path, ids: dict) -> bool:
    """A chunk file exists and holds exactly these rows (guards against chunks of other samples)."""
    saved = read_checkpoint(path)
    if saved is None:
        return False
    return all(saved[c].tolist() == v for c, v in ids.items()) if set(ids) <= set(saved) else False


__all__ = ["losses", "score_samples", "score_valid", "valid_loss_mean"]

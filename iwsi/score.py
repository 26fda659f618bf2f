"""Stage `score`: base-model mean token NLL of every candidate and of the valid rationales,
then w', the DS weight and IFD (arithmetic in iwsi/dsweight.py).

Per text, three losses (LOSS_COLUMNS): `loss` over the config's `loss_span` (the paper's L), and for
IFD `loss_answer` = L(r | q), the rationale's tokens after the question, and `loss_alone` = L(r), the
same tokens after only a start token (`alone_context`). One forward gives both spans of "Q: q\nA: r";
L(r) is a second, shorter one.

Reads the voted samples table and the valid rationales (D_v, then up to `valid_pool` more); the
pipeline writes `samples.parquet` (+ LOSS_COLUMNS, num_tokens, w_prime, ds_weight, ifd), `valid.parquet`
(D_v) and `valid_pool.parquet` (every scored valid rationale, `in_dv` flags D_v). Losses are
checkpointed in `chunks/score-valid.parquet` and `chunks/score-NNNNN.parquet` (the questions of one
generate chunk each), so a killed run re-scores at most one chunk.
"""
from __future__ import annotations

import pandas as pd

from iwsi import engines
from iwsi.contract import RUN_FILE
from iwsi.dsweight import add_signals
from iwsi.engines.hf import EMBEDDING
from iwsi.generate import chunk_size
from iwsi.prompts import question_suffix
from iwsi.records import Question
from iwsi.rundir import Progress, RunDir, read_checkpoint, write_parquet

ID_COLUMNS = ["question_id", "sample_id"]


LOSS_COLUMNS = ["loss", "loss_answer", "loss_alone"]


def alone_context(tokenizer) -> str:
    """What L(r) conditions on instead of the question: one start-of-text token (the tokenizer's BOS, else
    its EOS), so that every token of the rationale is predicted, as in L(r | q)."""
    return tokenizer.bos_token or tokenizer.eos_token or ""


def loss_table(model, tokenizer, questions: list[str], rationales: list[str], *, engine: str, span: str,
               progress=None, pool: bool = False) -> pd.DataFrame:
    """LOSS_COLUMNS + num_tokens of each (question, rationale): the score stage's three losses; with `pool`,
    also EMBEDDING (the embed stage's sentence embedding of "Q: q\nA: r", from the same forward) where the
    engine can give it (vLLM cannot: the embed stage then runs its own pass)."""
    module = engines.get(engine)
    completions = [" " + r for r in rationales]
    both = module.score_spans(model, tokenizer, [question_suffix(q) for q in questions], completions,
                              progress=progress, **({"pool": True} if pool else {}))
    alone = module.score_spans(model, tokenizer, [alone_context(tokenizer)] * len(rationales), completions)
    table = pd.DataFrame({"loss": [s[span][0] for s in both], "num_tokens": [s[span][1] for s in both],
                          "loss_answer": [s["completion"][0] for s in both],
                          "loss_alone": [s["completion"][0] for s in alone]})
    if pool and both and all(EMBEDDING in s for s in both):
        table[EMBEDDING] = [s[EMBEDDING] for s in both]
    return table


def chunk_losses(model, tokenizer, questions: list[str], rationales: list[str], cfg, progress=None) -> pd.DataFrame:
    """One score chunk's table under the run's config, on one process or on a Ray worker."""
    return loss_table(model, tokenizer, questions, rationales, engine=cfg.engine, span=cfg.loss_span,
                      progress=progress, pool=cfg.embed)


def pooled_embeddings(run: RunDir, samples: pd.DataFrame, valid: pd.DataFrame, cfg):
    """(valid, samples) sentence embeddings saved by the score stage's pass, or None when any chunk lacks
    them (a vLLM run, a run scored with embed=false or before they were saved): the embed stage then
    embeds in a pass of its own."""
    import numpy as np

    tables = [read_checkpoint(path) for _, _, path in score_chunks(samples, cfg, run)]
    valid_table = read_checkpoint(run / RUN_FILE.chunks / "score-valid.parquet")
    if valid_table is None or any(t is None or EMBEDDING not in t for t in [valid_table, *tables]):
        return None
    scored = pd.concat(tables, ignore_index=True)
    if scored[ID_COLUMNS].values.tolist() != samples[ID_COLUMNS].values.tolist():
        return None
    by_id = dict(zip(valid_table["question_id"], valid_table[EMBEDDING]))
    if not set(valid["question_id"]) <= set(by_id):
        return None
    return np.stack([by_id[q] for q in valid["question_id"]]), np.stack(scored[EMBEDDING].to_list())


def score_valid(model, tokenizer, valid: list[Question], cfg, run: RunDir) -> pd.DataFrame:
    """Losses of the valid rationales (D_v, then the further pool rationales), scored once per run."""
    path = run / RUN_FILE.chunks / "score-valid.parquet"
    ids = [q.question_id for q in valid]
    if not chunk_matches(path, {"question_id": ids}):
        bar = Progress(run, "score-valid", len(valid), unit="seq")
        score_valid_chunk(model, tokenizer, valid, cfg, run, progress=bar)
        bar.close()
    scored = pd.read_parquet(path)
    texts = pd.DataFrame({"question_id": ids, "question": [q.question for q in valid],
                          "rationale": [q.rationale for q in valid], "gold": [q.gold for q in valid]})
    return pd.concat([texts, scored[["num_tokens", *LOSS_COLUMNS]]], axis=1)


def score_samples(model, tokenizer, samples: pd.DataFrame, valid_losses, cfg, run: RunDir) -> pd.DataFrame:
    """Losses of every candidate (majority or not, for the dashboard), then w', w_DS and IFD."""
    bar = Progress(run, "score", len(samples), unit="seq")
    parts = []
    for index, part, path in score_chunks(samples, cfg, run):
        if is_scored(path, part):  # resume: a finished chunk is never scored again
            bar(len(part))
        else:
            score_chunk(model, tokenizer, part, path, cfg, progress=bar)
        parts.append(pd.read_parquet(path))
    bar.close()
    columns = ["num_tokens", *LOSS_COLUMNS]
    scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in columns})
    df = samples.copy()
    for column in columns:
        df[column] = scored[column].to_numpy()
    return add_signals(df, valid_losses, cfg.valid_center)


def score_chunks(samples: pd.DataFrame, cfg, run: RunDir) -> list[tuple[int, pd.DataFrame, object]]:
    """(index, rows, file) per generate chunk: the unit of resume and of Ray sharding."""
    rows = chunk_size(run) * cfg.num_samples
    return [(index, samples.iloc[start:start + rows], run / RUN_FILE.chunks / f"score-{index:05d}.parquet")
            for index, start in enumerate(range(0, len(samples), rows))]


def is_scored(path, part: pd.DataFrame) -> bool:
    return chunk_matches(path, {c: part[c].tolist() for c in ID_COLUMNS})


def score_chunk(model, tokenizer, part: pd.DataFrame, path, cfg, progress=None) -> None:
    """Score one chunk's rows and write its file."""
    save_chunk(path, {c: part[c].tolist() for c in ID_COLUMNS},
               chunk_losses(model, tokenizer, part["question"].tolist(), part["rationale"].tolist(), cfg, progress))


def score_valid_chunk(model, tokenizer, valid: list[Question], cfg, run: RunDir, progress=None) -> None:
    out = chunk_losses(model, tokenizer, [q.question for q in valid], [q.rationale for q in valid], cfg, progress)
    save_chunk(run / RUN_FILE.chunks / "score-valid.parquet", {"question_id": [q.question_id for q in valid]}, out)


def save_chunk(path, ids: dict, out: pd.DataFrame) -> None:
    path.parent.mkdir(exist_ok=True)
    write_parquet(path, pd.concat([pd.DataFrame(ids), out.reset_index(drop=True)], axis=1))


def chunk_matches(path, ids: dict) -> bool:
    """A chunk file exists, holds exactly these rows (guards against chunks of other samples) and every
    loss column (a chunk scored before a column existed is scored again)."""
    saved = read_checkpoint(path)
    if saved is None or not set(ids) | set(LOSS_COLUMNS) <= set(saved):
        return False
    return all(saved[c].tolist() == v for c, v in ids.items())


__all__ = ["EMBEDDING", "LOSS_COLUMNS", "chunk_losses", "loss_table", "pooled_embeddings", "score_samples",
           "score_valid"]

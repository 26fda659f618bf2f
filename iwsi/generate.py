"""Stage `generate`: pool questions → `num_samples` few-shot CoT candidates each.

Writes `chunks/generate-NNNNN.parquet` as it goes (resume continues after the last complete chunk),
then `candidates.parquet`: question_id, sample_id, question, rationale, answer.
Also home of `complete()`, the one call every stage uses to run prompts through the chosen engine
(iwsi/engines/).
"""
from __future__ import annotations

import os

import pandas as pd

from iwsi import engines
from iwsi.answers import extract_answer
from iwsi.contract import RUN_FILE
from iwsi.prompts import STOP, few_shot_prefix, question_suffix
from iwsi.records import Question
from iwsi.rundir import Progress, RunDir, read_checkpoint, read_json, write_json, write_parquet

CHUNK = 32  # questions per checkpointed chunk: small enough to lose little on a crash


def chunk_size(run: RunDir) -> int:
    """Questions per chunk, fixed per run in `chunks/chunking.json`.

    The chunk index seeds generation, so a resumed run must keep the size it started with even if
    IWSI_CHUNK (an override for tests and tiny runs) changed in between."""
    path = run / RUN_FILE.chunks / "chunking.json"
    saved = read_json(path)
    if saved:
        return int(saved["questions_per_chunk"])
    size = max(1, int(os.environ.get("IWSI_CHUNK", CHUNK)))
    path.parent.mkdir(exist_ok=True)
    write_json(path, {"questions_per_chunk": size})
    return size


def complete(model, tokenizer, questions: list[Question], num_samples: int, *, engine: str, temperature: float,
             max_new_tokens: int, seed: int, top_p: float = 1.0, top_k: int = 0, progress=None) -> list[list[str]]:
    """Few-shot completions for questions that share one task (and so one prefix)."""
    tasks = {q.task for q in questions}
    if len(tasks) > 1:
        raise ValueError(f"questions mix task kinds {sorted(tasks)}; complete() needs one prefix")
    prefix = few_shot_prefix(questions[0].task) if questions else ""
    return engines.get(engine).sample(
        model, tokenizer, prefix, [question_suffix(q.question) for q in questions], num_samples,
        temperature=temperature, max_new_tokens=max_new_tokens, stop=list(STOP), seed=seed, top_p=top_p, top_k=top_k,
        progress=progress)


def candidates_frame(questions: list[Question], outputs: list[list[str]]) -> pd.DataFrame:
    rows = [{"question_id": q.question_id, "sample_id": j, "question": q.question, "rationale": text.strip(),
             "answer": extract_answer(text, q.task)}
            for q, texts in zip(questions, outputs) for j, text in enumerate(texts)]
    return pd.DataFrame(rows, columns=["question_id", "sample_id", "question", "rationale", "answer"])


def chunks(questions: list, size: int) -> list[tuple[int, list]]:
    """(index, questions) of each checkpointed chunk; the index seeds the chunk's sampling."""
    return [(index, questions[start:start + size]) for index, start in enumerate(range(0, len(questions), size))]


def chunk_path(run: RunDir, index: int):
    return run / RUN_FILE.chunks / f"generate-{index:05d}.parquet"


def sample_chunk(model, tokenizer, chunk: list[Question], index: int, cfg, progress=None) -> pd.DataFrame:
    """One chunk's candidates (seeded by the chunk index), nothing written: the same on one process or
    on any Ray worker, which returns it to the driver (iwsi/distributed.py)."""
    outs = complete(model, tokenizer, chunk, cfg.num_samples, engine=cfg.engine,
                    temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                    seed=cfg.seed * 100_003 + index, top_p=cfg.top_p, top_k=cfg.top_k, progress=progress)
    return candidates_frame(chunk, outs)


def generate_chunk(model, tokenizer, chunk: list[Question], index: int, cfg, run: RunDir, progress=None) -> None:
    """Sample one chunk and write its file."""
    write_parquet(chunk_path(run, index), sample_chunk(model, tokenizer, chunk, index, cfg, progress))


def generate(model, tokenizer, questions: list[Question], cfg, run: RunDir) -> pd.DataFrame:
    """Sample every pool question in checkpointed chunks; returns the candidates table.

    With workers > 1 the chunks were sampled by Ray workers and written by the driver
    (iwsi/distributed.py) and are only read here."""
    bar = Progress(run, "generate", len(questions), unit="q")
    parts = []
    for index, chunk in chunks(questions, chunk_size(run)):
        path = chunk_path(run, index)
        done = read_checkpoint(path)  # resume: a finished chunk is never sampled again (a damaged one is)
        if done is None:
            generate_chunk(model, tokenizer, chunk, index, cfg, run, progress=bar)
            done = pd.read_parquet(path)
        else:
            bar(len(chunk))
        parts.append(done)
    bar.close()
    return pd.concat(parts, ignore_index=True)

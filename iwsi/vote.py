"""Stage `vote` (pure): candidates → majority answer, agreement and answer entropy per question.

Reads `candidates.parquet` rows (question_id, sample_id, answer); the pipeline writes the result
into `samples.parquet`. The rule, in full:
- unparseable answers (None) never win: the vote runs over parseable answers;
- the winner is the most common answer (a plurality: with m = 4, "2 of 4" or even "1 of 4" wins);
- a tie for the top count goes to the answer sampled first (lowest sample_id), and the question is
  marked `tied`;
- with `min_agreement` > 0 (config key), a question whose winner has a smaller share of the parseable
  answers (`agreement`) gets no majority answer, so none of its samples enters D_c (0.5: at least half
  agree, 2 of 4; 0.51: more than half, 3 of 4). The default 0 is the paper's plain majority vote.
"""
from __future__ import annotations

import math
from collections import Counter

import pandas as pd


def majority(answers: list[str | None]) -> str | None:
    """Most common parseable answer; ties go to the answer seen first (deterministic).

    >>> majority(["3", None, "4", "4", "3"])
    '3'
    >>> majority([None, None]) is None
    True
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def agreement(answers: list[str | None], winner: str | None) -> float:
    """Share of parseable answers equal to the winner (0 when nothing parses)."""
    parsed = [a for a in answers if a is not None]
    return parsed.count(winner) / len(parsed) if parsed and winner is not None else 0.0


def answer_entropy(answers: list[str | None]) -> float:
    """Normalised answer entropy u = -Σ p log p / log m (paper Eq. 9).

    p is the share of each distinct answer among all m samples, an unparseable sample counting as
    its own outcome (a question whose samples do not even parse is uncertain, not certain).

    >>> answer_entropy(["1", "1", "1"])
    0.0
    >>> round(answer_entropy(["1", "2"]), 6)
    1.0
    >>> answer_entropy([None])  # one sample that does not parse: as uncertain as two that disagree
    1.0
    """
    m = len(answers)
    if m <= 1:  # log m = 0: certain when the one answer parsed, maximally uncertain when it did not
        return 1.0 if m == 1 and answers[0] is None else 0.0
    keys = [a if a is not None else f"\0none{i}" for i, a in enumerate(answers)]
    probs = [c / m for c in Counter(keys).values()]
    return abs(sum(p * math.log(p) for p in probs)) / math.log(m)  # abs: no "-0.0"


def tied(answers: list[str | None]) -> bool:
    """Two or more parseable answers share the top count (the winner was picked by sample order).

    >>> tied(["3", "4", "4", "3"]), tied(["3", "4", "4"]), tied([None])
    (True, False, False)
    """
    top = Counter(a for a in answers if a is not None).most_common(2)
    return len(top) == 2 and top[0][1] == top[1][1]


def vote_table(candidates: pd.DataFrame, min_agreement: float = 0.0) -> pd.DataFrame:
    """Add `majority_answer, is_majority, agreement, tied, entropy` to every candidate row (the rule: module
    docstring)."""
    df = candidates.sort_values(["question_id", "sample_id"], kind="stable").reset_index(drop=True)
    # pandas may hold missing answers as NaN: turn them back into None before voting
    answers = df["answer"].astype(object).where(df["answer"].notna(), None)
    per_q = answers.groupby(df["question_id"], sort=False).agg(list)
    stats = pd.DataFrame({"majority_answer": per_q.map(majority), "entropy": per_q.map(answer_entropy)})
    stats["agreement"] = [agreement(a, w) for a, w in zip(per_q, stats["majority_answer"])]
    stats["tied"] = per_q.map(tied).astype(bool)
    # below the minimum agreement the question has no majority answer; `agreement` still says how close it came
    stats["majority_answer"] = stats["majority_answer"].where(stats["agreement"] >= min_agreement, None)
    df = df.join(stats, on="question_id")
    df["is_majority"] = df["answer"].notna() & (df["answer"] == df["majority_answer"])
    return df

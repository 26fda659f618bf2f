"""Small typed records passed between pipeline stages (no torch, no pandas)."""
from __future__ import annotations

from dataclasses import dataclass, field

# Task kinds decide the few-shot prompt and how an answer is extracted and compared.
TASKS = ("number", "yesno", "choice", "nli")


@dataclass(frozen=True)
class Question:
    """One dataset item. `gold` is the normalised gold answer (None when unknown);
    `rationale` is a human rationale ending "The answer is X." (valid set only)."""

    question_id: str
    question: str
    task: str
    gold: str | None = None
    rationale: str | None = None


@dataclass(frozen=True)
class Splits:
    """What every dataset loader returns: unlabelled pool, valid set with human rationales, test."""

    pool: list[Question]
    valid: list[Question]
    test: list[Question]
    notes: list[str] = field(default_factory=list)  # e.g. "no train file: pool taken from dev"

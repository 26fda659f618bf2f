"""Transparent heuristics that suggest a label for high-DSE rationales (pure python + pandas).

The paper sorts high-DSE samples into three kinds; each rule below is one readable test:
- spurious  : some `a op b = c` in the rationale is arithmetically wrong (wrong intermediate step);
- redundant : a sentence is repeated, or the word-trigram repetition ratio is above a threshold;
- jumping   : far fewer reasoning steps than the valid set's median (steps = sentences or equations).
The first rule that fires wins (a wrong step is the most specific finding). The pipeline calls
`suggest_labels(samples, valid)` and writes suggestions.parquet; the dashboard shows the `reason`.
"""
from __future__ import annotations

import re

import pandas as pd

from iwsi.arith import evaluate

NUM = r"-?\d[\d,]*(?:\.\d+)?"
OP = r"[+\-*/×÷x]"
# A whole chain `a op b op c = d`, so `2 + 3 * 4 = 14` is checked with precedence, not as `3 * 4 = 14`.
EQUATION_RE = re.compile(rf"(?<![\w.)])((?:{NUM}\s*{OP}\s*)+{NUM})\s*=\s*({NUM})(?![\d(])")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
ANSWER_RE = re.compile(r"the answer is", re.IGNORECASE)
WORD_RE = re.compile(r"[a-z0-9]+")
DEFECTS = ("redundant", "jumping", "spurious")  # the paper's kinds of high-DSE rationale (§5)
REPETITION_THRESHOLD = 0.3  # share of repeated word trigrams that marks a rationale redundant
JUMP_RATIO = 0.5            # fewer than half the valid median steps marks a rationale jumping


def sentences(text: str) -> list[str]:
    """Reasoning sentences, without the final "The answer is X." statement."""
    parts = [p.strip() for p in SENTENCE_RE.split(text or "") if p.strip()]
    return [p for p in parts if not ANSWER_RE.search(p)]


def count_steps(text: str) -> int:
    """Steps = sentences or `=` equations, whichever is larger (one sentence can hold several)."""
    return max(len(sentences(text)), (text or "").count("="))


def _number(s: str) -> float:
    return float(s.replace(",", ""))


def wrong_equation(text: str) -> str | None:
    """First `a op b (op c ...) = d` whose value is off by more than rounding, e.g. '3 + 4 = 8'."""
    for expr, result in EQUATION_RE.findall(text or ""):
        source = expr.replace(",", "").replace("×", "*").replace("÷", "/").replace("x", "*")
        try:
            value = evaluate(source)
        except (ValueError, SyntaxError, ZeroDivisionError):
            continue
        if abs(value - _number(result)) > max(0.01, 0.005 * abs(value)):
            return f"{expr} = {result} (should be {value:g})"
    return None


def repetition_ratio(text: str) -> float:
    """1 - unique/total word trigrams: 0 for fresh text, near 1 for a loop."""
    words = WORD_RE.findall((text or "").lower())
    grams = list(zip(words, words[1:], words[2:]))
    return 1 - len(set(grams)) / len(grams) if len(grams) >= 4 else 0.0


def repeated_sentence(text: str) -> str | None:
    seen: set[str] = set()
    for s in sentences(text):
        key = " ".join(WORD_RE.findall(s.lower()))
        if len(key) > 8 and key in seen:
            return s
        seen.add(key)
    return None


def suggest(text: str, valid_median_steps: float) -> tuple[str | None, str]:
    """(label, reason) for one rationale; (None, "") when no rule fires."""
    if (bad := wrong_equation(text)) is not None:
        return "spurious", f"wrong arithmetic: {bad}"
    if (rep := repeated_sentence(text)) is not None:
        return "redundant", f"repeated sentence: {rep[:60]!r}"
    if (ratio := repetition_ratio(text)) > REPETITION_THRESHOLD:
        return "redundant", f"trigram repetition {ratio:.0%} > {REPETITION_THRESHOLD:.0%}"
    steps = count_steps(text)
    if valid_median_steps >= 2 and steps < JUMP_RATIO * valid_median_steps:
        return "jumping", f"{steps} steps vs valid median {valid_median_steps:g}"
    return None, ""


def suggest_labels(samples: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    """samples(question_id, sample_id, rationale) + valid(rationale) → question_id, sample_id,
    suggested_label, reason."""
    median = float(pd.Series([count_steps(t) for t in valid["rationale"]]).median()) if len(valid) else 0.0
    found = [suggest(t, median) for t in samples["rationale"]]
    return pd.DataFrame({"question_id": samples["question_id"].to_numpy(), "sample_id": samples["sample_id"].to_numpy(),
                         "suggested_label": pd.Series([f[0] for f in found], dtype="object"),
                         "reason": [f[1] for f in found]})

"""Two runs side by side (the dashboard's Compare page): config diff, kept-set overlap, paired accuracy.

Pure pandas on what run directories hold (no streamlit, no torch). Which samples a run keeps is
not decided here: callers pass each run's kept mask (the run's own `kept` column / method at its k).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from iwsi.report import correctness, paired_bootstrap

KEYS = ["question_id", "sample_id"]  # one candidate: a question and the index of its sample


def config_diff(a: dict, b: dict) -> pd.DataFrame:
    """Only the keys whose values differ (a key one run lacks shows as None) → key, a, b."""
    keys = sorted(set(a) | set(b), key=str)
    rows = [(key, a.get(key), b.get(key)) for key in keys if a.get(key) != b.get(key)]
    # values of mixed types (str / float / list) in one column: shown as text
    return pd.DataFrame([(k, _text(x), _text(y)) for k, x, y in rows], columns=["key", "a", "b"])


def _text(value) -> str | None:
    return None if value is None else str(value)


def shared_candidates(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Candidates both runs generated: same question_id and sample index and, where both tables have
    the rationale, the same text (two runs with another seed or model reuse the ids, not the samples).
    → question_id, sample_id, row_a, row_b (row numbers in a and b)."""
    cols = KEYS + (["rationale"] if "rationale" in a and "rationale" in b else [])
    left = a[cols].assign(row_a=np.arange(len(a)))
    right = b[cols].assign(row_b=np.arange(len(b)))
    return left.merge(right, on=cols, how="inner")[KEYS + ["row_a", "row_b"]]


def kept_overlap(a: pd.DataFrame, kept_a: np.ndarray, b: pd.DataFrame, kept_b: np.ndarray) -> dict:
    """Counts and Jaccard index of two kept sets over the candidates the runs share.

    a, b: samples tables (question_id, sample_id[, rationale]); kept_a, kept_b: boolean masks over their
    rows. `shared` is 0 when the runs do not share candidates: then no overlap is defined."""
    both = shared_candidates(a, b)
    ka = np.asarray(kept_a, bool)[both["row_a"].to_numpy()]
    kb = np.asarray(kept_b, bool)[both["row_b"].to_numpy()]
    union = int((ka | kb).sum())
    return {"candidates_a": len(a), "candidates_b": len(b), "shared": len(both),
            "kept_a": int(np.asarray(kept_a, bool).sum()), "kept_b": int(np.asarray(kept_b, bool).sum()),
            "kept_both": int((ka & kb).sum()), "only_a": int((ka & ~kb).sum()), "only_b": int((~ka & kb).sum()),
            "jaccard": (ka & kb).sum() / union if union else math.nan}


def paired_accuracy(ev_a: pd.DataFrame | None, ev_b: pd.DataFrame | None, model: str = "trained",
                    model_b: str | None = None) -> dict:
    """Accuracy of run a's `model` and run b's `model_b` (default: the same) on the test questions both
    evaluated, and the paired bootstrap of a − b (`report.paired_bootstrap`): n, acc_a, acc_b, delta, lo,
    hi, p. One run's trained against its base model: `paired_accuracy(ev, ev, "trained", "base")`."""
    all_a, all_b = correctness(ev_a, model), correctness(ev_b, model_b or model)
    a, b = all_a.align(all_b, join="inner")
    result = paired_bootstrap(a.to_numpy(), b.to_numpy())
    nan = math.nan
    return {**result, "acc_a": float(a.mean()) if len(a) else nan, "acc_b": float(b.mean()) if len(b) else nan,
            "only_a": len(all_a) - len(a), "only_b": len(all_b) - len(b)}

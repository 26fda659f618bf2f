"""DS weights (pure): losses → w' = L̄_v / L and w_DS = max(w', 1/w') (paper Eqs. 3–4).

The losses themselves come from the `score` stage (iwsi/score.py); this module is only the
arithmetic, so a newcomer finds each equation in one named function.
"""
from __future__ import annotations

import numpy as np


def valid_loss_mean(valid_losses) -> float:
    """L̄_v: mean loss of the human-written valid rationales."""
    losses = np.asarray(valid_losses, dtype=float)
    if losses.size == 0 or not np.isfinite(losses).all():
        raise ValueError("valid losses must be a non-empty list of finite numbers")
    return float(losses.mean())


def importance_weight(loss, valid_mean: float) -> np.ndarray:
    """w' = L̄_v / L: an estimate of p_valid / p_self for each sample (no clipping).

    >>> importance_weight([1.0, 2.0, 4.0], 2.0).tolist()
    [2.0, 1.0, 0.5]
    """
    return valid_mean / np.asarray(loss, dtype=float)


def ds_weight(w_prime) -> np.ndarray:
    """Distribution-shift weight max(w', 1/w') ≥ 1: how far a sample sits from the valid set.

    >>> ds_weight([2.0, 1.0, 0.5]).tolist()
    [2.0, 1.0, 2.0]
    """
    w = np.asarray(w_prime, dtype=float)
    return np.maximum(w, 1.0 / w)

"""DS weights and the other loss signals (pure): losses → w' = L̄_v / L and w_DS = max(w', 1/w')
(paper Eqs. 3–4), IFD = L(r | q) / L(r) (Li et al. 2023), and the stability of a cut under other
draws of the valid set D_v.

The losses themselves come from the `score` stage (iwsi/score.py); this module is only the
arithmetic, so a newcomer finds each equation in one named function.
"""
from __future__ import annotations

import numpy as np

# How the valid losses are summarised into L̄_v (config `valid_center`): the paper's mean, or a centre a
# single odd valid rationale moves less (paper §5 warns that the tiny D_v makes the weight unstable).
CENTERS = ("mean", "median", "geomean")


def valid_center(valid_losses, center: str = "mean") -> float:
    """L̄_v: the mean (paper), median or geometric mean of the human-written valid rationales' losses."""
    losses = np.asarray(valid_losses, dtype=float)
    if losses.size == 0 or not np.isfinite(losses).all():
        raise ValueError("valid losses must be a non-empty list of finite numbers")
    if center not in CENTERS:
        raise ValueError(f"valid_center {center!r} is not valid: choose one of {', '.join(CENTERS)}")
    if center == "median":
        return float(np.median(losses))
    if center == "geomean":
        return float(np.exp(np.log(losses).mean()))
    return float(losses.mean())


def valid_loss_mean(valid_losses) -> float:
    """L̄_v as the paper defines it: the mean loss of the valid rationales."""
    return valid_center(valid_losses, "mean")


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


def weights(loss, valid_losses, center: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """(w', w_DS) of each loss against the valid losses summarised by `center`."""
    w_prime = importance_weight(loss, valid_center(valid_losses, center))
    return w_prime, ds_weight(w_prime)


def ifd(loss_answer, loss_alone) -> np.ndarray:
    """Instruction-Following Difficulty L(r | q) / L(r): below 1 the question helps the model predict the
    rationale; at or above 1 it does not (Li et al. 2023 drop those as misaligned).

    >>> ifd([1.0, 3.0], [2.0, 2.0]).tolist()
    [0.5, 1.5]
    """
    return np.asarray(loss_answer, dtype=float) / np.asarray(loss_alone, dtype=float)


def add_signals(df, valid_losses, center: str):
    """w', w_DS (against the valid losses' `center`) and IFD from a table's losses; the score stage and
    the filter stage (which applies the run's own `valid_center`) both call it."""
    df["w_prime"], df["ds_weight"] = weights(df["loss"], valid_losses, center)
    if {"loss_answer", "loss_alone"} <= set(df.columns):  # runs scored before IFD existed have neither
        df["ifd"] = ifd(df["loss_answer"], df["loss_alone"])
    return df

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


def draw_centers(pool_losses, valid_size: int, center: str = "mean", draws: int = 50, seed: int = 0) -> np.ndarray:
    """L̄_v of `draws` seeded draws of a D_v of `valid_size` rationales (without replacement) from the scored
    valid pool: what the run's L̄_v could have been with other human rationales of the same split."""
    pool = np.asarray(pool_losses, dtype=float)
    if valid_size < 1 or pool.size < valid_size:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    return np.array([valid_center(pool[rng.choice(pool.size, valid_size, replace=False)], center)
                     for _ in range(draws)])


def cut_stability(majority_losses, own_center: float, centers, keep: int) -> dict[str, float]:
    """How much IWSI's kept set moves when L̄_v moves: keep the `keep` lowest-w_DS samples of D_c (their
    losses) under the run's own L̄_v and under each of `centers`, and report the Jaccard index of each
    draw's kept set with the run's (median, 5 % and 95 % quantiles) and the range of σ_k% over the draws.

    w_DS = max(w', 1/w') ranks a loss by |log L − log L̄_v|, so a kept set is the `keep` log-losses nearest
    log L̄_v: a window of the sorted losses, found by binary search (a k step of the dashboard on 40k D_c
    samples: ~1 ms instead of ~200 ms for 50 argsorts). Exact ties at a window's edge go to the lower loss."""
    x = np.sort(np.log(np.asarray(majority_losses, dtype=float)))
    centers = np.asarray(centers, dtype=float)
    keep = min(keep, x.size)
    if keep < 1 or centers.size == 0:
        return {"draws": int(centers.size), "jaccard_median": np.nan, "jaccard_p5": np.nan, "jaccard_p95": np.nan,
                "sigma_min": np.nan, "sigma_max": np.nan}

    def window(center: float) -> tuple[int, float]:
        """(first index of the nearest window, w_DS at its cut)."""
        c, lo, hi = np.log(center), 0, x.size - keep
        while lo < hi:
            mid = (lo + hi) // 2
            if c - x[mid] > x[mid + keep] - c:
                lo = mid + 1
            else:
                hi = mid
        return lo, float(np.exp(max(c - x[lo], x[lo + keep - 1] - c)))

    own, _ = window(own_center)
    starts, sigma = zip(*(window(c) for c in centers))
    overlap = np.maximum(0, keep - np.abs(np.array(starts) - own))
    jaccard = overlap / (2 * keep - overlap)
    p5, median, p95 = np.quantile(jaccard, [0.05, 0.5, 0.95])
    return {"draws": int(centers.size), "jaccard_median": float(median), "jaccard_p5": float(p5),
            "jaccard_p95": float(p95), "sigma_min": float(min(sigma)), "sigma_max": float(max(sigma))}


def dv_stability(samples, pool, k: float, center: str = "mean", draws: int = 50, seed: int = 0) -> dict | None:
    """The stability readout of a run (DS weights page, docs/results.md): IWSI's kept set at k against its
    kept set under `draws` seeded draws of a D_v of the run's size from its scored valid pool
    (valid_pool.parquet: `loss`, `in_dv`); None when the pool holds no rationale beyond D_v."""
    from iwsi.filtering import num_to_keep

    in_dv = pool["in_dv"].astype(bool).to_numpy()
    if len(pool) <= in_dv.sum() or not in_dv.any():
        return None
    losses = samples.loc[samples["is_majority"].astype(bool), "loss"].to_numpy(float)
    centers = draw_centers(pool["loss"], int(in_dv.sum()), center, draws, seed)
    own = valid_center(pool.loc[in_dv, "loss"], center)
    return {**cut_stability(losses, own, centers, num_to_keep(len(losses), k)), "pool": len(pool),
            "valid_size": int(in_dv.sum())}

"""w' and DS weight arithmetic (paper Eqs. 3–4), hand-computed."""
import numpy as np
import pandas as pd
import pytest

from iwsi.dsweight import (
    CENTERS,
    add_signals,
    cut_stability,
    draw_centers,
    ds_weight,
    dv_stability,
    ifd,
    importance_weight,
    valid_center,
    valid_loss_mean,
)


def test_weights_hand_computed():
    valid = valid_loss_mean([1.0, 2.0, 3.0])
    assert valid == 2.0
    w = importance_weight([0.5, 2.0, 8.0], valid)
    assert w.tolist() == [4.0, 1.0, 0.25]
    assert ds_weight(w).tolist() == [4.0, 1.0, 4.0]


def test_ds_weight_is_symmetric_and_at_least_one():
    w = np.array([0.1, 0.9, 1.0, 1.1, 10.0])
    assert (ds_weight(w) >= 1).all()
    assert ds_weight(w) == pytest.approx(ds_weight(1 / w))


def test_valid_loss_mean_rejects_empty_and_nan():
    with pytest.raises(ValueError):
        valid_loss_mean([])
    with pytest.raises(ValueError):
        valid_loss_mean([1.0, float("nan")])


def test_valid_centers_hand_computed():
    losses = [1.0, 2.0, 4.0, 8.0]
    assert valid_center(losses, "mean") == 3.75
    assert valid_center(losses, "median") == 3.0
    assert valid_center(losses, "geomean") == pytest.approx(2 ** 1.5)  # (1 * 2 * 4 * 8) ** (1/4)
    assert set(CENTERS) == {"mean", "median", "geomean"}
    with pytest.raises(ValueError, match="choose one of mean, median, geomean"):
        valid_center(losses, "mode")


def test_one_odd_valid_loss_moves_the_median_less_than_the_mean():
    clean, odd = [2.0, 2.1, 1.9, 2.0], [2.0, 2.1, 1.9, 2.0, 9.0]
    assert abs(valid_center(odd, "median") - valid_center(clean, "median")) < 0.1
    assert valid_center(odd, "mean") - valid_center(clean, "mean") > 1.0


def test_add_signals_uses_the_centre_and_adds_ifd():
    df = pd.DataFrame({"loss": [1.0, 4.0], "loss_answer": [1.0, 3.0], "loss_alone": [2.0, 2.0]})
    out = add_signals(df.copy(), [1.0, 2.0, 6.0], "median")  # L̄_v = 2
    assert out["w_prime"].tolist() == [2.0, 0.5] and out["ds_weight"].tolist() == [2.0, 2.0]
    assert out["ifd"].tolist() == ifd([1.0, 3.0], [2.0, 2.0]).tolist() == [0.5, 1.5]
    assert "ifd" not in add_signals(df[["loss"]].copy(), [1.0], "mean")  # a run scored before IFD


def test_draw_centers_are_seeded_draws_of_the_pool():
    pool = [1.0, 2.0, 3.0, 4.0, 10.0]
    a, b = draw_centers(pool, 2, "mean", draws=20, seed=3), draw_centers(pool, 2, "mean", draws=20, seed=3)
    assert a.tolist() == b.tolist() and len(a) == 20
    pairs = {(x + y) / 2 for i, x in enumerate(pool) for y in pool[i + 1:]}  # every mean of two distinct rows
    assert set(a.tolist()) <= pairs and len(set(a.tolist())) > 1
    assert draw_centers(pool, 6).size == 0  # a pool smaller than D_v: no draw


def test_cut_stability_on_a_hand_made_case():
    losses = [1.0, 2.0, 4.0, 8.0]  # log2: 0, 1, 2, 3 (centres chosen off the ties)
    # own L̄_v = 1.4 (log2 ≈ 0.49): keep 2 → rows 0 and 1; the cut's w_DS = 2 / 1.4 (row 1's w' = 1.4 / 2)
    same = cut_stability(losses, 1.4, [1.4, 1.4], keep=2)
    assert same["jaccard_median"] == 1.0 and same["sigma_min"] == same["sigma_max"] == pytest.approx(2 / 1.4)
    # centred on 2.5 a draw keeps rows 1, 2 (Jaccard 1/3); centred on 6 rows 3, 2 (Jaccard 0)
    moved = cut_stability(losses, 1.4, [1.4, 2.5, 6.0], keep=2)
    assert moved["jaccard_median"] == pytest.approx(1 / 3) and moved["draws"] == 3
    assert moved["jaccard_p5"] == pytest.approx(1 / 30) and moved["jaccard_p95"] == pytest.approx(0.9333333)
    # σ at the cut: 2 / 1.4 (own), 4 / 2.5 = 1.6 (centre 2.5), 6 / 4 = 1.5 (centre 6)
    assert moved["sigma_min"] == pytest.approx(2 / 1.4) and moved["sigma_max"] == pytest.approx(1.6)
    empty = cut_stability([], 2.0, [2.0], keep=2)
    assert np.isnan(empty["jaccard_median"])


def test_cut_stability_equals_the_argsort_definition_on_random_losses():
    """The binary-searched window is the set filtering.keep_lowest keeps by w_DS (no ties in random data)."""
    from iwsi.filtering import keep_lowest

    rng = np.random.default_rng(4)
    losses = np.exp(rng.normal(0, 1, 500))
    own, centers, keep = 1.1, np.exp(rng.normal(0, 0.3, 20)), 400

    def kept(center):
        w_ds = ds_weight(importance_weight(losses, center))
        mask = keep_lowest(pd.Series(w_ds), 100 * keep / len(losses)).to_numpy()
        return mask, w_ds[mask].max()

    mine, sigmas = kept(own)[0], [kept(c)[1] for c in centers]
    jaccard = [(mine & kept(c)[0]).sum() / (mine | kept(c)[0]).sum() for c in centers]
    out = cut_stability(losses, own, centers, keep)
    assert out["jaccard_median"] == pytest.approx(np.median(jaccard))
    assert out["sigma_min"] == pytest.approx(min(sigmas)) and out["sigma_max"] == pytest.approx(max(sigmas))


def test_dv_stability_reads_a_run_and_needs_a_pool_beyond_d_v():
    samples = pd.DataFrame({"loss": [1.0, 2.0, 4.0, 8.0, 0.1], "is_majority": [True] * 4 + [False]})
    pool = pd.DataFrame({"loss": [1.4, 1.4, 1.4], "in_dv": [True, False, False]})
    out = dv_stability(samples, pool, 50, "mean", draws=5)  # every draw of one rationale gives L̄_v = 1.4
    assert out["jaccard_median"] == 1.0 and out["valid_size"] == 1 and out["pool"] == 3 and out["draws"] == 5
    assert out == {**cut_stability([1.0, 2.0, 4.0, 8.0], 1.4, [1.4] * 5, 2), "pool": 3, "valid_size": 1}
    assert dv_stability(samples, pool.head(1), 50) is None  # D_v alone: nothing to draw from

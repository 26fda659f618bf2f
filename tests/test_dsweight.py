"""w' and DS weight arithmetic (paper Eqs. 3–4), hand-computed."""
import numpy as np
import pandas as pd
import pytest

from iwsi.dsweight import CENTERS, add_signals, ds_weight, ifd, importance_weight, valid_center, valid_loss_mean


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

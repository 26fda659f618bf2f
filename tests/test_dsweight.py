"""w' and DS weight arithmetic (paper Eqs. 3–4), hand-computed."""
import numpy as np
import pytest

from iwsi.dsweight import ds_weight, importance_weight, valid_loss_mean


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

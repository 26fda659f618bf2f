"""Each method's selection rule on hand-made tables."""
import math

import pandas as pd
import pytest

from iwsi import filtering


def table():
    # 3 questions; q3 has one non-majority sample. ds weights chosen by hand.
    return pd.DataFrame({
        "question_id": ["q1"] * 4 + ["q2"] * 3 + ["q3"] * 3,
        "sample_id": [0, 1, 2, 3, 0, 1, 2, 0, 1, 2],
        "is_majority": [True, True, True, True, True, True, True, True, True, False],
        "ds_weight": [1.0, 1.5, 3.0, 1.2, 1.1, 2.0, 1.05, 1.3, 1.01, 1.0],
        "w_prime": [1.0, 1.5, 1 / 3, 1.2, 1.1, 0.5, 1.05, 1.3, 1.01, 1.0],
        "entropy": [0.0] * 4 + [0.5] * 3 + [0.9] * 3,
        "is_correct": [True, True, False, True, False, False, False, True, True, None],
        "self_score": [9, 1, 5, 7, 3, 8, 2, 6, 4, 10],
        "loss": [2.0, 1.5, 3.0, 1.2, 1.1, 2.5, 1.05, 1.3, 1.01, 0.5],
        "ifd": [0.9, 0.5, 1.0, 0.7, 0.95, 1.4, 0.6, 0.8, float("nan"), 0.99],
    })


def test_num_to_keep_rounds_half_up_and_keeps_one():
    assert filtering.num_to_keep(9, 80) == 7  # 7.2
    assert filtering.num_to_keep(10, 85) == 9  # 8.5 → 9
    assert filtering.num_to_keep(3, 1) == 1
    assert filtering.num_to_keep(0, 50) == 0


def test_iwsi_keeps_lowest_ds_weight_of_majority_only():
    df = table()
    kept, sigma = filtering.iwsi(df, 80)  # 9 majority rows → keep 7
    assert kept.sum() == 7
    assert not kept.iloc[9]  # non-majority never kept even with the lowest ds weight
    # dropped: the two highest ds weights among majority rows (3.0 and 2.0)
    assert sorted(df.loc[~kept & df.is_majority, "ds_weight"]) == [2.0, 3.0]
    assert sigma == 1.5


def test_lmsi_and_k100_keep_all_majority():
    df = table()
    assert filtering.lmsi(df, 50)[0].tolist() == df.is_majority.tolist()
    assert filtering.iwsi(df, 100)[0].tolist() == df.is_majority.tolist()


def test_entropy_drops_whole_questions():
    df = table()
    kept, u = filtering.entropy(df, 80)  # need ≥ 7 of 9: q1 (4) + q2 (3) → u* = 0.5
    assert u == 0.5
    assert kept.tolist() == [True] * 7 + [False] * 3
    kept, u = filtering.entropy(df, 50, threshold=0.0)
    assert kept.sum() == 4 and u == 0.0


def test_entropy_cuts_inside_a_tied_level_in_table_order():
    # three questions of 3 majority samples, all u = 0.5: k = 60 needs ≥ 5 of 9 → q1 and q2, not all 9
    df = pd.DataFrame({"question_id": ["q1"] * 3 + ["q2"] * 3 + ["q3"] * 3, "is_majority": True,
                       "entropy": 0.5})
    kept, u = filtering.entropy(df, 60)
    assert u == 0.5 and kept.tolist() == [True] * 6 + [False] * 3
    assert filtering.entropy(df, 60)[0].tolist() == kept.tolist()  # deterministic
    assert filtering.entropy(df, 60, threshold=0.5)[0].all()        # an explicit u* keeps the whole level


def test_self_keeps_highest_scores():
    df = table()
    kept, threshold = filtering.keep_highest_score(df, 100 * 3 / 9, "self_score")
    assert sorted(df.loc[kept, "self_score"]) == [7, 8, 9]
    assert threshold == 7


def test_ground_truth_and_dispatch():
    df = table()
    kept, _ = filtering.select(df, "ground-truth", 80)
    assert kept.tolist() == [True, True, False, True, False, False, False, True, True, False]
    kept, t = filtering.select(df, "iwsi-w", 80)
    assert kept.tolist() == df.is_majority.tolist() and math.isnan(t)


def test_training_weights_clip():
    assert filtering.training_weights(pd.Series([0.5, 1.5, 3.0]), 2.0).tolist() == [0.5, 1.5, 2.0]


def test_ground_truth_needs_gold():
    df = table().assign(is_correct=None)
    with pytest.raises(ValueError, match="gold"):
        filtering.ground_truth(df, 80)


def test_random_control_is_seeded_exact_and_inside_the_majority():
    """The random control keeps exactly num_to_keep of D_c, reproducibly per seed."""
    df = table()
    n_maj = int(df["is_majority"].sum())
    for k in (10, 50, 80, 100):
        kept, threshold = filtering.select(df, "random", k, seed=3)
        assert kept.sum() == filtering.num_to_keep(n_maj, k) and not (kept & ~df["is_majority"]).any()
        assert kept.equals(filtering.select(df.copy(), "random", k, seed=3)[0]) and math.isnan(threshold)
    picks = {tuple(filtering.select(df, "random", 50, seed=s)[0]) for s in range(10)}
    assert len(picks) > 1  # the seed matters


def test_every_method_in_the_table_selects_within_the_majority():
    df = table().assign(rm_score=lambda d: d["self_score"])
    for name, method in filtering.METHODS.items():
        kept, _ = filtering.select(df, name, 60, seed=1)
        assert kept.dtype == bool and not (kept & ~df["is_majority"]).any(), name
        assert method.label and method.help


def test_loss_keeps_the_lowest_base_model_loss_of_the_majority():
    df = table()
    kept, threshold = filtering.select(df, "loss", 80)  # 9 majority rows → keep 7; q3's 0.5 is not majority
    assert kept.sum() == 7 and not kept.iloc[9]
    assert sorted(df.loc[~kept & df.is_majority, "loss"]) == [2.5, 3.0]
    assert threshold == 2.0


def test_loss_breaks_ties_by_table_order_and_handles_an_empty_majority():
    df = table().assign(loss=1.0)
    kept, _ = filtering.select(df, "loss", 50)  # 9 → round(4.5) = 5: the first five majority rows
    assert kept.tolist() == [True] * 5 + [False] * 5
    none = table().assign(is_majority=False)
    kept, threshold = filtering.select(none, "loss", 80)
    assert not kept.any() and math.isnan(threshold)


def test_ifd_drops_ifd_at_or_above_one_then_keeps_the_highest():
    df = table()
    # majority IFDs: .9 .5 1.0 .7 .95 1.4 .6 .8 nan → usable (< 1, finite): .9 .5 .7 .95 .6 .8
    kept, threshold = filtering.select(df, "ifd", 30)  # round(9 * .3) = 3 → .95 .9 .8
    assert sorted(df.loc[kept, "ifd"]) == [0.8, 0.9, 0.95] and threshold == 0.8
    kept, threshold = filtering.select(df, "ifd", 80)  # 7 asked, only 6 usable: fewer remain
    assert kept.sum() == 6 and threshold == 0.5
    assert not (kept & ~df.is_majority).any() and not kept.iloc[2] and not kept.iloc[5]  # 1.0 and 1.4 dropped


def test_ifd_ties_by_table_order_and_empty_majority():
    df = table().assign(ifd=0.5)
    kept, _ = filtering.select(df, "ifd", 20)  # 9 → 2: the first two majority rows
    assert kept.tolist() == [True, True] + [False] * 8
    kept, threshold = filtering.select(table().assign(is_majority=False), "ifd", 80)
    assert not kept.any() and math.isnan(threshold)


def test_ifd_on_a_run_scored_before_ifd_names_the_fix():
    with pytest.raises(ValueError, match="method=ifd --force"):
        filtering.select(table().drop(columns="ifd"), "ifd", 80)

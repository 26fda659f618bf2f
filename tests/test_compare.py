"""iwsi.compare (the Compare page's numbers) without Streamlit."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from iwsi import charts, compare


def samples(n_q: int, m: int, text: str = "r") -> pd.DataFrame:
    q = np.repeat([f"q{i}" for i in range(n_q)], m)
    s = np.tile(np.arange(m), n_q)
    return pd.DataFrame({"question_id": q, "sample_id": s, "rationale": [f"{text}{a}-{b}" for a, b in zip(q, s)]})


def test_config_diff_lists_only_differing_keys():
    diff = compare.config_diff({"k": 80, "method": "iwsi", "seed": 0}, {"k": 80, "method": "lmsi", "lr": 1e-4})
    assert diff["key"].tolist() == ["lr", "method", "seed"]
    row = diff.set_index("key").loc["lr"]
    assert pd.isna(row["a"]) and row["b"] == "0.0001"


def test_overlap_counts_and_jaccard_over_shared_candidates():
    a, b = samples(3, 2), samples(3, 2).iloc[::-1].reset_index(drop=True)  # same candidates, other row order
    kept_a = np.array([1, 1, 1, 0, 0, 0], bool)  # q0/0 q0/1 q1/0
    kept_b = np.zeros(6, bool)
    kept_b[[5, 4, 1]] = True  # rows reversed: q0/0 q0/1 q2/0
    o = compare.kept_overlap(a, kept_a, b, kept_b)
    assert (o["shared"], o["kept_both"], o["only_a"], o["only_b"]) == (6, 2, 1, 1)
    assert o["jaccard"] == pytest.approx(2 / 4)


def test_other_rationales_are_not_shared_candidates():
    o = compare.kept_overlap(samples(3, 2, "x"), np.ones(6, bool), samples(3, 2, "y"), np.ones(6, bool))
    assert o["shared"] == 0 and o["kept_both"] == 0 and math.isnan(o["jaccard"])


def test_paired_accuracy_uses_only_shared_test_questions():
    ev_a = pd.DataFrame({"model": "trained", "question_id": ["t0", "t1", "t2", "t3"], "is_correct": [1, 1, 1, 0]})
    ev_b = pd.DataFrame({"model": ["trained"] * 3 + ["base"], "question_id": ["t1", "t2", "t3", "t0"],
                         "is_correct": [0, 1, 0, 1]})
    r = compare.paired_accuracy(ev_a, ev_b)
    assert r["n"] == 3 and r["only_a"] == 1 and r["only_b"] == 0
    assert r["acc_a"] == pytest.approx(2 / 3) and r["acc_b"] == pytest.approx(1 / 3)
    assert r["delta"] == pytest.approx(1 / 3) and r["lo"] <= r["delta"] <= r["hi"]
    assert compare.paired_accuracy(None, ev_b)["n"] == 0
    own = compare.paired_accuracy(ev_b, ev_b, "trained", "base")  # one run's trained model against its base
    assert own["n"] == 0 and own["only_a"] == 3 and own["only_b"] == 1  # no question evaluated by both


def test_overlay_shares_bins_and_normalises_each_run():
    rng = np.random.default_rng(0)
    df = pd.concat([pd.DataFrame({"run": "a", "ds_weight": 1 + rng.exponential(0.2, 400)}),
                    pd.DataFrame({"run": "b", "ds_weight": 1 + rng.exponential(0.5, 100)})])
    fig = charts.ds_weight_overlay(df)
    assert [t.name for t in fig.data] == ["a (n=400)", "b (n=100)"]
    assert list(fig.data[0].x) == list(fig.data[1].x)
    assert all(sum(t.y) == pytest.approx(100) for t in fig.data)
    assert charts.ds_weight_overlay(df.iloc[:0]).layout.annotations[0].text == "no samples"


def test_bar_index_matches_numpy_histogram():
    values = np.random.default_rng(1).lognormal(0, 0.5, 500)
    edges = charts.histogram_edges(values)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    assert np.bincount(charts.bar_index(values, edges), minlength=len(edges) - 1).tolist() == counts.tolist()

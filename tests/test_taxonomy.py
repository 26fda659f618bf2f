"""Label-suggestion heuristics and the UMAP/PCA fit (no torch)."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from iwsi import taxonomy
from iwsi.embed import fit_umap


def test_wrong_arithmetic_is_spurious():
    assert taxonomy.wrong_equation("So 12 - 5 = 8. The answer is 8.") == "12 - 5 = 8 (should be 7)"
    assert taxonomy.wrong_equation("2 + 3 * 4 = 14 and 1,000 + 200 = 1,200 and 10 / 4 = 2.5") is None
    label, reason = taxonomy.suggest("She has 3 x 4 = 13 eggs. The answer is 13.", 3)
    assert label == "spurious" and "should be 12" in reason


def test_repetition_is_redundant():
    text = "Tom has 3 apples. He buys 2 more. Tom has 3 apples. The answer is 5."
    assert taxonomy.suggest(text, 3)[0] == "redundant"
    loop = "add two and add two and add two and add two and add two and add two"
    assert taxonomy.repetition_ratio(loop) > taxonomy.REPETITION_THRESHOLD
    assert taxonomy.repetition_ratio("one two three four five six seven") == 0


def test_few_steps_is_jumping():
    assert taxonomy.count_steps("a = 1. b = 2, c = 3. The answer is 3.") == 3
    assert taxonomy.suggest("The answer is 7.", valid_median_steps=4)[0] == "jumping"
    assert taxonomy.suggest("A has 3. B has 4. So 3 + 4 = 7. The answer is 7.", 4) == (None, "")


def test_suggest_labels_frame():
    valid = pd.DataFrame({"rationale": ["A has 3. B has 4. So 3 + 4 = 7. The answer is 7."] * 3})
    samples = pd.DataFrame({"question_id": ["q1", "q1", "q2"], "sample_id": [0, 1, 0],
                            "rationale": ["The answer is 7.", "A has 3. B has 4. So 3 + 4 = 8. The answer is 8.",
                                          "A has 3. B has 4. So 3 + 4 = 7. The answer is 7."]})
    out = taxonomy.suggest_labels(samples, valid)
    assert list(out.columns) == ["question_id", "sample_id", "suggested_label", "reason"]
    assert out["suggested_label"].tolist()[:2] == ["jumping", "spurious"] and pd.isna(out["suggested_label"].iloc[2])
    assert "torch" not in sys.modules or True  # taxonomy imports no torch (checked by reading the source)
    assert "import torch" not in open(taxonomy.__file__).read()


def test_fit_umap_small_falls_back_to_pca():
    rng = np.random.default_rng(0)
    ids = pd.DataFrame({"question_id": ["a", "b", "c"], "sample_id": [0, 1, 2]})
    out = fit_umap(rng.normal(size=(2, 8)), rng.normal(size=(3, 8)), seed=0,
                   valid_ids=pd.DataFrame({"question_id": ["v1", "v2"]}), self_ids=ids)
    assert out["source"].tolist() == ["valid", "valid", "self", "self", "self"]
    assert out["sample_id"].tolist() == [-1, -1, 0, 1, 2]
    assert np.isfinite(out[["x", "y"]].to_numpy()).all()


def test_fit_umap_one_map_over_both():
    rng = np.random.default_rng(0)
    out = fit_umap(rng.normal(size=(8, 16)), rng.normal(3, 1, size=(30, 16)), seed=0)
    assert len(out) == 38 and (out["source"] == "valid").sum() == 8
    v, s = out[out["source"] == "valid"], out[out["source"] == "self"]
    # separated clusters stay separated on the shared map
    assert np.linalg.norm(v[["x", "y"]].mean() - s[["x", "y"]].mean()) > 1

"""rounds: 2 — round 2 samples from round 1's merged model in its own run directory."""
import json

import pytest

from iwsi.cli import main

pytestmark = pytest.mark.slow


def test_two_rounds(tmp_path):
    sets = ["num_questions=4", "valid_size=1", "test_size=3", "num_samples=2", "max_new_tokens=24", "epochs=1",
            "batch_size=4", "embed=false", "rounds=2", "k=100"]
    assert main(["run", "--out", str(tmp_path / "run"), *[a for kv in sets for a in ("--set", kv)]]) == 0
    run = tmp_path / "run"
    r2 = run / "rounds" / "r2"
    assert (run / "rounds" / "r2-model" / "config.json").exists()
    assert (r2 / "adapter").exists() and (r2 / "eval.parquet").exists()
    rounds = json.loads((run / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    m1 = json.loads((run / "metrics.json").read_text())
    m2 = json.loads((r2 / "metrics.json").read_text())
    # round 2 starts from round 1's trained model: its "base" accuracy is round 1's trained accuracy
    assert m2["accuracy"]["base"] == pytest.approx(m1["accuracy"]["trained"])
    assert rounds[1]["accuracy_after"] == m2["accuracy"]["trained"]

"""Real end-to-end run on the embedded model at tiny sizes; reads the run-directory contract back."""
import json

import numpy as np
import pandas as pd
import pytest

from iwsi.config import load_config
from iwsi.filtering import num_to_keep
from iwsi.pipeline import run_pipeline

pytestmark = pytest.mark.slow

SAMPLE_COLS = ("question_id sample_id question rationale answer gold is_correct is_majority agreement entropy loss "
               "w_prime ds_weight kept").split()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = load_config(overrides=dict(num_questions=6, valid_size=2, test_size=4, num_samples=3, max_new_tokens=32,
                                     epochs=1, batch_size=4, k=70, engine="hf", seed=1))
    return run_pipeline(cfg, tmp_path_factory.mktemp("run"))


def test_contract_files_and_columns(run_dir):
    for name in ("config.yaml", "samples.parquet", "valid.parquet", "eval.parquet", "metrics.json",
                 "umap.parquet", "suggestions.parquet", "adapter/adapter_config.json"):
        assert (run_dir / name).exists(), name
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert set(SAMPLE_COLS) <= set(df.columns)
    assert len(df) == 6 * 3 and df["question_id"].nunique() == 6
    assert set(pd.read_parquet(run_dir / "valid.parquet").columns) >= {"question_id", "question", "rationale",
                                                                        "gold", "loss"}
    ev = pd.read_parquet(run_dir / "eval.parquet")
    assert sorted(ev["model"].unique()) == ["base", "trained"] and len(ev) == 8


def test_weights_and_kept_recomputed_from_losses(run_dir):
    df = pd.read_parquet(run_dir / "samples.parquet")
    m = json.loads((run_dir / "metrics.json").read_text())
    valid = pd.read_parquet(run_dir / "valid.parquet")
    assert m["valid_loss_mean"] == pytest.approx(valid["loss"].mean())
    w = m["valid_loss_mean"] / df["loss"]
    np.testing.assert_allclose(df["w_prime"], w)
    np.testing.assert_allclose(df["ds_weight"], np.maximum(w, 1 / w))
    maj = df[df["is_majority"]]
    expected = maj.sort_values("ds_weight", kind="stable").index[: num_to_keep(len(maj), 70)]
    assert sorted(df.index[df["kept"]]) == sorted(expected)
    assert m["num_kept"] == len(expected) and m["num_majority"] == len(maj)
    assert m["sigma_k"] == pytest.approx(maj.loc[expected, "ds_weight"].max())


def test_metrics_accuracy_matches_eval_and_timings(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    ev = pd.read_parquet(run_dir / "eval.parquet")
    for label in ("base", "trained"):
        assert m["accuracy"][label] == pytest.approx(ev.loc[ev.model == label, "is_correct"].fillna(False).mean())
    assert set(m["timings"]) == {"generate", "evaluate-base", "vote", "score", "embed", "judge", "filter", "train",
                                 "evaluate"}
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"


def test_rerun_skips_finished_stages(run_dir):
    before = (run_dir / "samples.parquet").stat().st_mtime_ns
    cfg = load_config(overrides=dict(num_questions=6, valid_size=2, test_size=4, num_samples=3, max_new_tokens=32,
                                     epochs=1, batch_size=4, k=70, engine="hf", seed=1))
    run_pipeline(cfg, run_dir)
    assert (run_dir / "samples.parquet").stat().st_mtime_ns == before


def test_every_long_stage_reports_progress(run_dir):
    """The stages that take time feed the progress file; embed takes none (no forward pass of its own)."""
    from iwsi.runs import read_progress

    progress = read_progress(run_dir)
    assert {"generate", "score", "evaluate-base", "train", "evaluate-trained"} <= set(progress)
    assert progress["train"]["done"] == progress["train"]["total"] > 0
    assert "embed" not in progress


def test_ds_weights_come_first_and_embed_reuses_the_score_pass(run_dir):
    log = (run_dir / "log.txt").read_text()
    started = [line.split()[2] for line in log.splitlines() if line.split()[1:2] == ["stage"] and "started" in line]
    assert started[:4] == ["generate", "vote", "score", "evaluate-base"]
    assert "embed: 20 sentence embeddings pooled by the score pass" in log
    umap = pd.read_parquet(run_dir / "umap.parquet")
    assert len(umap) == 6 * 3 + 2 and umap[["x", "y"]].notna().all().all()

"""The DSE probe without a model: AUROC helper, k % cut, run labels, bad input; and (slow) a real
probe on the embedded model read back from its directory."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks.fixtures import make_run_dir
from iwsi import cli, probe_stats
from iwsi.probe import make_probe_dir, run_scores


def test_auroc_hand_computed_and_sklearn():
    # pairs (defective > clean): 0.9 beats both, 0.6 beats both, 0.4 beats 0.2 only → 5 of 6
    assert probe_stats.auroc([0.9, 0.6, 0.4], [0.5, 0.2]) == pytest.approx(5 / 6)
    assert probe_stats.auroc([0.5], [0.5, 0.1]) == pytest.approx(0.75)  # a tie counts one half
    rng = np.random.default_rng(0)
    d, c = rng.normal(0.5, 1, 40).round(1), rng.normal(0, 1, 30).round(1)  # rounded: many ties
    y = np.r_[np.ones(40), np.zeros(30)]
    assert probe_stats.auroc(d, c) == pytest.approx(roc_auc_score(y, np.r_[d, c]))
    assert probe_stats._auroc_batch(d[None, :], c[None, :])[0] == pytest.approx(roc_auc_score(y, np.r_[d, c]))


def test_auroc_ci_brackets_the_estimate():
    rng = np.random.default_rng(1)
    d, c = rng.normal(1, 1, 60), rng.normal(0, 1, 60)
    for paired in (True, False):
        a, lo, hi = probe_stats.auroc_ci(d, c, paired, n_boot=500)
        assert lo < a < hi and 0.6 < a < 0.9
    assert probe_stats.auroc_ci([2.0, 3.0], [0.0, 1.0], True, n_boot=200)[0] == 1.0


def scores_table() -> pd.DataFrame:
    # 4 questions: jumping always has a higher loss than its clean original; w_DS = max(w', 1/w') with L̄_v = 1
    loss = {"clean": [1.0, 1.1, 0.9, 1.05], "jumping": [1.5, 1.6, 1.4, 0.95]}
    rows = [{"pair": f"q{i}", "kind": kind, "loss": x} for kind, xs in loss.items() for i, x in enumerate(xs)]
    df = pd.DataFrame(rows)
    df["w_prime"] = 1.0 / df["loss"]
    df["ds_weight"] = np.maximum(df["w_prime"], 1 / df["w_prime"])
    return df


def test_auroc_table_directions():
    table = probe_stats.auroc_table(scores_table(), n_boot=200).set_index("signal")
    # 1.5, 1.6, 1.4 beat all 4 clean losses; 0.95 beats only 0.9 → 13 of 16 pairs
    assert table.loc["loss", "auroc"] == pytest.approx(13 / 16)
    assert table.loc["w′ low", "auroc"] == table.loc["loss", "auroc"]
    assert table.loc["w′ high", "auroc"] == pytest.approx(3 / 16)
    assert set(table.index) == {"w_DS", "loss", "w′ high", "w′ low"} and (table["n_defective"] == 4).all()


def test_cut_share_of_defective_in_dropped_and_kept():
    cut = probe_stats.cut_table(scores_table(), 75).set_index("signal")
    # keep 6 of 8 by lowest loss: drops 1.6 and 1.5, both jumping
    assert cut.loc["loss", "dropped"] == 2 and cut.loc["loss", "defective_in_dropped"] == 1.0
    assert cut.loc["loss", "defective_in_kept"] == pytest.approx(2 / 6) and cut.loc["loss", "base_rate"] == 0.5


def test_run_labels_against_unlabelled_majority(tmp_path):
    run = make_run_dir(tmp_path / "run", num_questions=30, num_samples=4)
    samples = pd.read_parquet(run / "samples.parquet")
    maj = samples[samples["is_majority"]]
    labels = pd.DataFrame({"question_id": maj["question_id"].iloc[:3], "sample_id": maj["sample_id"].iloc[:3],
                           "label": ["spurious", "spurious", "none"]})
    scores = run_scores(samples, labels, pd.read_parquet(run / "suggestions.parquet"))
    assert (scores["kind"] == "spurious (manual)").sum() == 2
    assert len(scores[scores["kind"] == "clean"]) + scores.loc[scores["kind"] != "clean", "pair"].nunique() == len(maj)
    labels.to_parquet(run / "labels.parquet", index=False)
    assert cli.main(["probe", "--run", str(run), "--out", str(tmp_path / "p"), "--boot", "200"]) == 0
    auroc = pd.read_parquet(tmp_path / "p" / "auroc.parquet")
    assert "spurious (manual)" in set(auroc["kind"]) and auroc["setting"].eq("run labels").all()


@pytest.mark.parametrize("argv,message", [
    (["--kinds", "sloppy"], "--kinds"), (["--sweep", "k=1,2"], "--sweep"), (["--sweep", "loss_span=half"], "loss_span"),
    (["--n", "0"], "--n"), (["--boot", "5"], "--boot"), (["--k", "0"], "--k"), (["--name", "../x"], "--name"),
    (["--set", "dataset=gsm8k", "--set", "data_dir=/nonexistent"], "gsm8k"), (["--run", "/nonexistent"], "--run"),
    (["--run", "/nonexistent", "--sweep", "loss_span=full,completion"], "do not apply")])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setattr("iwsi.probe.probes_root", lambda: tmp_path / "probes")
    assert cli.main(["probe", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("iwsi: error:") and "\n" not in err and message in err
    assert not (tmp_path / "probes").exists()


@pytest.mark.parametrize("out", ["mine", "mine/notes.txt", "mine/notes.txt/probe", "theirs"])
def test_refuses_a_folder_it_did_not_write(tmp_path, capsys, out):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "probe.json").write_text('{"kind": "something else"}')
    assert cli.main(["probe", "--n", "1", "--out", str(tmp_path / out)]) == 2
    assert capsys.readouterr().err.startswith("iwsi: error: --out")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["probe.json"]


def test_fixture_probe_dir_is_complete(tmp_path):
    out = make_probe_dir(tmp_path / "fixture-probe", n=12)
    info = json.loads((out / "probe.json").read_text())
    assert info["finished"] and {p.name for p in out.iterdir()} >= {"scores.parquet", "auroc.parquet", "cut.parquet",
                                                                    "variants.parquet", "skipped.parquet", "auroc.md"}
    assert set(pd.read_parquet(out / "auroc.parquet")["setting"]) == {"loss_span=full", "loss_span=completion"}


@pytest.mark.slow
def test_real_probe_on_embedded_model(tmp_path):
    out = tmp_path / "probe"
    argv = ["probe", "--n", "4", "--boot", "100", "--sweep", "loss_span=full,completion", "--kinds", "jumping,spurious",
            "--out", str(out), "--set", "valid_size=2"]
    assert cli.main(argv) == 0
    info = json.loads((out / "probe.json").read_text())
    scores, variants = pd.read_parquet(out / "scores.parquet"), pd.read_parquet(out / "variants.parquet")
    assert info["finished"] and info["n"] == 4 and info["valid_size"] == 2
    assert len(variants) == 4 * 3 - len(pd.read_parquet(out / "skipped.parquet"))
    assert len(scores) == 2 * len(variants) and np.isfinite(scores[["loss", "w_prime", "ds_weight"]]).all().all()
    assert (scores["ds_weight"] >= 1).all() and scores.groupby("setting")["valid_mean"].nunique().eq(1).all()
    # scored exactly as the score stage: the same loss_table() call on the same texts gives the same numbers.
    # The same batch, not a subset: the engine groups texts by length and pads, and in bf16 (CPUs with
    # AVX-512 bf16 / AMX) a loss moves by ~1 % with the batch it is scored in (CI, 2026-12-02).
    from iwsi.models import load_model, load_tokenizer
    from iwsi.score import loss_table

    again = loss_table(load_model("embedded"), load_tokenizer("embedded"), variants["question"].tolist(),
                       variants["rationale"].tolist(), engine="iwsi", span="completion")
    got = scores[scores["setting"] == "loss_span=completion"]
    assert got["loss"].to_numpy() == pytest.approx(again["loss"].to_numpy(), rel=1e-5)
    auroc = pd.read_parquet(out / "auroc.parquet")
    assert set(auroc["kind"]) == {"jumping", "spurious"} and auroc["auroc"].between(0, 1).all()


@pytest.mark.slow
def test_probe_sweeps_valid_size_on_the_same_texts_with_severe_defects(tmp_path):
    """--sweep valid_size scores the texts once and centres each setting on the first valid_size D_v rows;
    every signal (w_DS per centre, IFD both ways) gets an AUROC; severe jumping is the bare answer."""
    out = tmp_path / "probe"
    argv = ["probe", "--n", "3", "--boot", "100", "--sweep", "valid_size=2,4", "--kinds", "jumping",
            "--severity", "severe", "--out", str(out)]
    assert cli.main(argv) == 0
    scores, variants = pd.read_parquet(out / "scores.parquet"), pd.read_parquet(out / "variants.parquet")
    assert (variants.loc[variants["kind"] == "jumping", "rationale"].str.match(r"^The answer is [^.]+\.$")).all()
    small, large = (scores[scores["setting"] == f"valid_size={n}"].reset_index(drop=True) for n in (2, 4))
    assert small["loss"].tolist() == large["loss"].tolist() and small["ifd"].tolist() == large["ifd"].tolist()
    np.testing.assert_allclose(small["ifd"], small["loss_answer"] / small["loss_alone"])
    valid = pd.read_parquet(out / "valid.parquet")
    assert len(valid) == 4 and small["valid_mean"].iloc[0] != large["valid_mean"].iloc[0]
    assert np.isfinite(small[["ds_weight_median", "ds_weight_geomean"]]).all().all()
    signals = set(pd.read_parquet(out / "auroc.parquet")["signal"])
    assert {"w_DS", "w_DS median", "w_DS geomean", "loss", "IFD low", "IFD high"} <= signals
    info = json.loads((out / "probe.json").read_text())
    assert info["severity"] == "severe" and [s["valid_size"] for s in info["settings"]] == [2, 4]


def test_build_variants_reports_too_short_rationales():
    from iwsi.probe import build_variants
    from iwsi.records import Question

    qs = [Question("q1", "Tom has 3 apples and buys 4. How many?", "number", "7", "3 + 4 = 7. The answer is 7."),
          Question("q2", "How many legs has a cat?", "number", "4", "The answer is 4.")]
    variants, skipped = build_variants(qs, ["jumping", "spurious"], seed=0)
    assert list(zip(variants["pair"], variants["kind"])) == [("q1", "clean"), ("q1", "jumping"), ("q1", "spurious"),
                                                             ("q2", "clean")]
    assert list(zip(skipped["pair"], skipped["kind"])) == [("q2", "jumping"), ("q2", "spurious")]
    assert skipped["reason"].str.len().gt(0).all()

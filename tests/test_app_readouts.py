"""Dashboard readouts a researcher relies on (rankings, legends, captions, k-free methods, wording), each through
streamlit's AppTest on fixture run directories."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from iwsi import charts
from tests.pages import open_page

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture()
def run(cache):
    return make_run_dir(cache / "runs" / "r", num_questions=60, num_samples=5, seed=0)


def spec(at: AppTest, key_index: int) -> dict:
    return json.loads(at.get("plotly_chart")[key_index].proto.spec)


def edit_samples(run: Path, change) -> pd.DataFrame:
    df = pd.read_parquet(run / "samples.parquet")
    df = change(df)
    df.to_parquet(run / "samples.parquet", index=False)
    return df


# -- Rationales: ranked by D_c, a single D_c sample shown once ---------------------------------------
def test_rationales_rank_by_dc_and_show_a_single_dc_sample_once(run):
    def change(df):
        outside = df.index[~df["is_majority"]][0]  # a sample that lost the vote gets the run's largest weight
        df.loc[outside, "ds_weight"] = 99.0
        lone = df["question_id"] == df.loc[df["question_id"] != df.loc[outside, "question_id"], "question_id"].iloc[0]
        df.loc[lone, "is_majority"] = False
        df.loc[df.index[lone][0], "is_majority"] = True  # one D_c sample left in that question
        return df

    df = edit_samples(run, change)
    at = open_page("views/rationales.py")
    listed = at.dataframe[0].value
    dc_max = df[df["is_majority"]].groupby("question_id")["ds_weight"].max()
    assert listed["max_ds"].iloc[0] < 99  # ranked by D_c: the outside sample's weight is not the question's
    assert listed.set_index("question_id")["max_ds"].dropna().to_dict() == pytest.approx(dc_max.to_dict())
    lone = df.groupby("question_id")["is_majority"].sum().eq(1).idxmax()
    at.text_input[0].set_value(lone).run()
    cards = [m.value for m in at.markdown if "· sample " in m.value and "w_DS **" in m.value
             and not m.value.startswith("Sample **")]
    assert len(cards) == 1 and cards[0].startswith("**Only sample in D_c**"), cards
    assert any("single sample in D_c" in i.value and "shown once" in i.value for i in at.info)


# -- Distributions: vote vs cut in the UMAP legend, few losses drawn one by one ---------------------------
def test_umap_splits_vote_and_cut_and_few_valid_losses_are_ticks(run):
    at = open_page("views/distributions.py")
    loss = spec(at, 0)["data"]
    valid = next(t for t in loss if t["name"].startswith("valid"))
    assert valid["mode"] == "markers" and "n=5 (each loss)" in valid["name"]
    assert any("Fewer than 20 losses in valid (n = 5)" in c.value for c in at.caption)
    samples = pd.read_parquet(run / "samples.parquet")  # the run's own k: its kept column
    names = {t["name"].split(" (")[0]: t["name"] for t in spec(at, 1)["data"]}
    assert "dropped" not in names
    vote = int((~samples["is_majority"] & ~samples["kept"]).sum())
    cut = int((samples["is_majority"] & ~samples["kept"]).sum())
    assert names["removed by the vote"].startswith(f"removed by the vote ({vote:,}")
    assert names["removed by the cut"].startswith(f"removed by the cut ({cut:,}")


# -- Correctness vs DSE: majority by default, the run's own trend, level bar labels -------------------------
def test_correctness_page_defaults_to_majority_states_the_runs_trend_and_levels_labels(run):
    at = open_page("views/correctness.py")
    assert at.toggle[0].value is True
    assert "claim to check" in at.caption[0].value
    trend = charts.correctness_trend(pd.read_parquet(run / "samples.parquet").query("is_majority"))
    said = next(m.value for m in at.markdown if m.value.startswith("**This run:**"))
    assert f"n = {trend['n_low']:,}" in said and f"{100 * trend['diff']:+.1f} points" in said
    bars = spec(at, 0)["data"]
    assert bars and all(t.get("textangle") == 0 for t in bars)


# -- Figures zip: one k for figures and tables, named in the files -------------------------------------------
def test_figures_zip_uses_one_k_named_in_files_and_caption(run, monkeypatch):
    from iwsi import filtering, present

    at = open_page("views/runs.py")
    at.sidebar.slider[0].set_value(50).run()
    button = next(d.proto for d in at.get("download_button") if d.proto.label.startswith("Figures & tables"))
    assert "k = 50" in button.label and "iwsi-r-k50-ds_weights.pdf" in button.help
    table = present.run_table(run, 50).set_index("quantity")["value"]
    kept = int(filtering.select(pd.read_parquet(run / "samples.parquet"), "iwsi", 50)[0].sum())
    assert table["kept at k = 50"] == str(kept) and "kept (run's k)" not in table
    monkeypatch.setattr(present, "run_figures", lambda *a: {})  # names and captions only: no kaleido
    names = zipfile.ZipFile(io.BytesIO(present.run_bundle(run, 50))).namelist()
    assert sorted(names) == ["iwsi-r-k50-summary.md", "iwsi-r-k50-summary.tex"]
    md = zipfile.ZipFile(io.BytesIO(present.run_bundle(run, 50))).read("iwsi-r-k50-summary.md").decode()
    assert "at k = 50" in md


# -- Probe: the loss's ROC curve is not hidden under w′ low's ------------------------------------------------
def test_probe_roc_draws_the_loss_once_as_w_prime_low(cache):
    from iwsi.probe import make_probe_dir

    make_probe_dir(cache / "probes" / "p", n=12)
    at = open_page("views/probe.py")
    for chart in at.get("plotly_chart")[1:5]:  # the four ROC figures
        names = [t["name"] for t in json.loads(chart.proto.spec)["data"]]
        assert not any(n.startswith("w′ low") for n in names), names
        assert any(n.startswith("loss = w′ low (") for n in names), names


# -- Wording ------------------------------------------------------------------------------------------------
def test_no_demo_hint_while_runs_exist_and_a_running_run_is_not_stopped(cache):
    from iwsi.rundir import RunDir

    run = make_run_dir(cache / "runs" / "live", num_questions=10, num_samples=2)
    df = pd.read_parquet(run / "samples.parquet")
    df.drop(columns=["loss", "w_prime", "ds_weight", "kept"]).to_parquet(run / "samples.parquet", index=False)
    (run / "status.json").write_text(f'{{"state": "running", "pid": {os.getpid()}, "stage": "score"}}')
    with RunDir(run).lock():  # a running run's process holds its lock
        at = open_page("views/percentiles.py")
        shown = " ".join(i.value for i in at.info)
        assert "Run embedded demo" not in shown and "score" in shown, shown
        at = open_page("views/ds_weights.py")
    shown = " ".join(i.value for i in at.info)
    assert "stopped" not in shown and "at the **score** stage now" in shown, shown


def test_k_free_run_shows_no_k_and_probe_ablations_have_no_run_banner(cache):
    make_run_dir(cache / "runs" / "lmsi-run", num_questions=20, num_samples=4, method="lmsi", k=80)
    make_ablation_dir(cache / "ablations" / "a")
    at = open_page("views/runs.py")
    assert at.dataframe[0].value["k"].tolist() == ["–"]
    at.switch_page("views/explorer.py").run()
    assert any(s.label == "Kept (LMSI: no k)" for s in at.selectbox)
    assert any("the same at every k" in m.value for m in at.markdown)
    for page in ("views/ablations.py", "views/probe.py"):
        at.switch_page(page).run()
        assert not at.exception and not any("trained with" in m.value for m in at.markdown), page


# -- Ablations: k-free methods as level lines, bars marked ---------------------------------------------------
def test_ablations_draw_k_free_methods_as_level_lines(cache):
    make_ablation_dir(cache / "ablations" / "a")
    at = open_page("views/ablations.py")
    bars, lines = spec(at, 0), spec(at, 1)
    assert "k-free" in bars["layout"]["title"]["text"]
    assert {t["name"] for t in bars["data"]} == {"iwsi", "lmsi (k-free, control)"}
    lmsi = [t for t in lines["data"] if "lmsi" in t["name"]]
    assert [t["name"] for t in lmsi] == ["gsm8k · lmsi (k-free)", "svamp · lmsi (k-free)"]
    for t in lmsi:
        assert t["x"] == [50.0, 100.0] and t["y"][0] == t["y"][1] and t["line"]["dash"] == "dash"
    assert any("k-free methods (lmsi)" in c.value for c in at.caption)


# -- small readouts: chips on both themes, every bad key of a config, a plurality ------------------------------
def _contrast(a: str, b: str) -> float:
    def luminance(hex_: str) -> float:
        c = [int(hex_[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


BACKGROUNDS = {"light": "#ffffff", "dark": "#0e1117"}  # Streamlit's own backgrounds


def test_chips_and_u_star_curves_read_on_both_themes():
    """Multiselect chips (the u* thresholds) are white text on primaryColor; the u* density curves are drawn on the
    theme's background."""
    import tomllib

    theme = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())["theme"]
    for name, background in BACKGROUNDS.items():
        primary = theme[name]["primaryColor"]
        assert _contrast(primary, "#ffffff") >= 4.5 and _contrast(primary, background) >= 3, (name, primary)
        assert all(_contrast(c, background) >= 3 for c in charts.U_PALETTE), name


def test_resume_reports_every_bad_key_of_the_config_file(cache, monkeypatch):
    from iwsi import runs

    started = []
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: started.append(c) or ["sleep", "3"])
    run = make_run_dir(cache / "runs" / "broken", num_questions=10, num_samples=2)
    (run / "status.json").write_text('{"state": "failed", "pid": null, "stage": "train", "error": "boom"}')
    (run / "config.yaml").write_text("k: 0\nnum_samples: two\nbogus: 1\n")  # a hand-edited config
    at = open_page("views/runs.py")
    [b for b in at.button if b.label == "Resume"][0].click().run()
    shown = " ".join(e.value for e in at.error).replace("\\", "")
    assert "k=0.0 is out of range" in shown and "num_samples='two'" in shown and "bogus" in shown, shown
    assert not started


def test_explorer_shows_a_plurality_of_one(run):
    def change(df):
        one = df["question_id"] == "q00003"
        df.loc[one, "answer"] = [str(100 + i) for i in range(one.sum())]  # every sample a different answer
        df.loc[one, "is_majority"] = [True] + [False] * (one.sum() - 1)
        df.loc[one, "majority_answer"] = "100"
        df.loc[one, "agreement"] = 1 / one.sum()  # as the vote writes it: 1 of the parseable answers
        return df

    edit_samples(run, change)
    at = open_page("views/explorer.py")
    at.text_input[0].set_value("q00003").run()
    shown = at.dataframe[0].value
    assert set(shown["agreement"]) == {"1 of 5"}
    at.session_state["explorer"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert any("agreement **1 of 5** samples — a plurality, not a majority" in m.value for m in at.markdown)

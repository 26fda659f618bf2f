"""The Probe page through streamlit's AppTest (fixture probe directories), and its chart builders."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from iwsi import probe_charts
from iwsi.contract import PROBE_MANIFEST
from iwsi.probe import make_probe_dir

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_probe() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_empty_cache_says_what_to_run(cache):
    at = open_probe()
    assert "iwsi probe" in " ".join(i.value for i in at.info)


def test_probe_page_renders_tables_charts_and_examples(cache):
    make_probe_dir(cache / "probes" / "fixture-probe", n=16)
    at = open_probe()
    assert at.title[0].value == "Probe" and not at.error
    # AUROC bars + 4 ROC curves + DS-weight histograms
    assert len(at.get("plotly_chart")) == 6
    table = at.dataframe[0].value
    assert list(table["kind"]) == ["redundant", "jumping", "spurious", "style"] and "w_DS" in table
    assert any("clean original" in m.value for m in at.markdown)
    sigma = lambda: next(m for m in at.metric if m.label.startswith("σ_k%")).value  # noqa: E731
    before = sigma()
    at.slider(key="k").set_value(40).run()
    assert not at.exception and sigma() != before
    at.radio[0].set_value("loss_span=completion").run()
    assert not at.exception and at.dataframe[0].value["jumping" == at.dataframe[0].value["kind"]].shape[0] == 1


def test_unreadable_table_is_named_not_a_traceback(cache):
    out = make_probe_dir(cache / "probes" / "fixture-probe", n=8)
    (out / "auroc.parquet").write_bytes(b"not parquet")
    at = open_probe()
    assert at.error and "auroc.parquet" in at.error[0].value


def test_run_label_probe_renders(cache, tmp_path):
    from benchmarks.fixtures import make_run_dir
    from iwsi import cli

    run = make_run_dir(tmp_path / "run", num_questions=30)
    assert cli.main(["probe", "--run", str(run), "--boot", "200", "--out", str(cache / "probes" / "run-labels")]) == 0
    at = open_probe()
    assert not at.error and any("from a run's labels" in i.value for i in at.info)


def test_chart_builders(tmp_path):
    out = make_probe_dir(tmp_path / "p", n=12)
    scores = pd.read_parquet(out / "scores.parquet").query("setting == 'loss_span=full'")
    auroc = pd.read_parquet(out / "auroc.parquet").query("setting == 'loss_span=full'")
    roc = probe_charts.roc_figure(scores, "jumping", auroc)
    # chance + w_DS, loss (= w′ low, drawn once), w′ high
    assert len(roc.data) == 1 + 3 and roc.data[1].x[0] == 0 and roc.data[1].y[-1] == 1
    assert len(probe_charts.auroc_bars(auroc).data) == 4
    hist = probe_charts.ds_histograms(scores, 1.2)
    assert len(hist.data) == 8 and all(abs(sum(t.y) - 1) < 1e-9 for t in hist.data)
    pairs = probe_charts.example_pairs(scores, pd.read_parquet(out / "variants.parquet"), "spurious")
    assert len(pairs) == 12 and {"rationale_clean", "rationale_variant", "ds_weight_variant"} <= set(pairs.columns)
    assert probe_charts.roc_figure(scores, "absent").layout.annotations


def test_dv_metric_follows_the_selected_setting_of_a_valid_size_sweep(cache):
    """A valid_size sweep centres each setting on its own D_v: the metric shows the selected setting's size,
    not probe.json's top-level (largest) one."""
    import json

    out = make_probe_dir(cache / "probes" / "fixture-probe", n=8)
    info = json.loads((out / PROBE_MANIFEST).read_text())
    info["settings"][1]["valid_size"] = info["valid_size"] = 20
    (out / PROBE_MANIFEST).write_text(json.dumps(info))
    at = open_probe()
    dv = lambda: next(m for m in at.metric if m.label == "D_v (valid set)").value  # noqa: E731
    assert dv() == "5"
    at.radio[0].set_value("loss_span=completion").run()
    assert not at.exception and dv() == "20"


def test_dv_metric_survives_a_damaged_settings_list(cache):
    """probe.json's settings not a list, or holding odd entries: the page renders, D_v from the top level."""
    import json

    out = make_probe_dir(cache / "probes" / "fixture-probe", n=8)
    info = json.loads((out / PROBE_MANIFEST).read_text())
    for settings in (5, "x", [["a"], {"setting": ["unhashable"], "valid_size": 9}]):
        (out / PROBE_MANIFEST).write_text(json.dumps({**info, "settings": settings}))
        at = open_probe()
        assert next(m for m in at.metric if m.label == "D_v (valid set)").value == "5"

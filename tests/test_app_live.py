"""A run followed live: the k a chart click hands to the explorer, the Runs page while a run
starts, runs and is cancelled, the base accuracy before the run ends, and the time estimates (pure functions of
iwsi/runs.py), through streamlit's AppTest on fixture run directories."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import make_eval, make_run_dir
from iwsi import charts, runs
from iwsi.contract import STAGES
from iwsi.rundir import RunDir
from tests.pages import open_page


def iso(seconds_ago: float = 0.0) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


# -- #1: a histogram bar opens the explorer at the page's own k and run -----------------------------------
def test_a_bar_click_keeps_the_sidebar_k_and_run(cache):
    make_run_dir(cache / "runs" / "first", num_questions=60, num_samples=5, seed=0)
    make_run_dir(cache / "runs" / "second", num_questions=40, num_samples=4, seed=1)
    at = open_page("views/ds_weights.py")
    other = [o for o in at.sidebar.selectbox[0].options if o != at.sidebar.selectbox[0].value][0]
    at.sidebar.selectbox[0].set_value(other).run()  # not the default (newest) run
    at.slider(key="k").set_value(50).run()
    df = pd.read_parquet(cache / "runs" / other / "samples.parquet")
    maj = df[df["is_majority"]]
    edges = charts.histogram_edges(maj["ds_weight"].to_numpy(float))
    right = maj["is_correct"].eq(True).fillna(False).to_numpy(bool)
    first = int(charts.bar_index(maj["ds_weight"].to_numpy(float), edges)[right].min())  # a bar of the "correct" trace
    at.session_state["histograms"] = {"selection": {"points": [{"curve_number": 0, "customdata": first}],
                                                    "point_indices": [first], "box": [], "lasso": []}}
    at.run()
    assert not at.exception and at.title[0].value == "Samples explorer"
    assert at.slider(key="k").value == 50 and at.session_state["k"] == 50
    assert at.sidebar.selectbox[0].value == other
    assert any("picked on 1 bar(s) of the w_DS histogram" in i.value for i in at.info)  # the handoff applied
    assert any(s.label == "Kept at k=50" for s in at.selectbox)
    assert at.query_params["k"] in ("50", ["50"])


# -- #3: base accuracy as soon as evaluate-base has written eval_base.parquet ------------------------------
def _mid_run(run: Path) -> float:
    """As a run between evaluate-base and evaluate leaves it: eval_base.parquet, no eval.parquet, and a
    metrics.json without accuracies (pipeline.build_metrics). Returns the base accuracy."""
    base = make_eval(np.random.default_rng(3), 120).query("model == 'base'")
    base.to_parquet(run / "eval_base.parquet", index=False)
    (run / "eval.parquet").unlink()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("accuracy")
    (run / "metrics.json").write_text(json.dumps(metrics))
    return float(base["is_correct"].mean())


def test_base_accuracy_is_shown_once_evaluate_base_has_run(cache):
    from iwsi import present

    run = make_run_dir(cache / "runs" / "r", num_questions=30, num_samples=4)
    expected = _mid_run(run)
    assert runs.base_accuracy(run) == pytest.approx(expected)
    at = open_page("views/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert row["accuracy base"] == pytest.approx(expected) and pd.isna(row["accuracy trained"])
    shown = {m.label: m.value for m in at.metric}
    assert shown["accuracy base"] == f"{expected:.3f}" and shown["accuracy trained"] == "—"
    summary = present.run_table(run, 80).set_index("quantity")["value"]
    assert summary["accuracy base"] == f"{expected:.4g}" and summary["accuracy trained (at the run's own k)"] == "–"
    (run / "eval_base.parquet").unlink()  # before evaluate-base: nothing to show
    assert runs.base_accuracy(run) is None


# -- #2/#4: a live run's page: the whole run's stages, estimates, what happens before the first item -------
@pytest.fixture()
def bench(tmp_path, monkeypatch):
    """A measured demo (the shape of `iwsi bench run --json`) in place of docs/results/bench-run.json."""
    path = tmp_path / "bench-run.json"
    stages = {s: {"seconds": 10.0 * (i + 1), "cpu_seconds": 1.0, "peak_rss_mb": 500.0, "tokens": 1000}
              for i, s in enumerate(STAGES)}
    path.write_text(json.dumps({"total_s": 432.0, "first_insight_s": 60.0, "started_utc": "2026-12-06T16:00:00Z",
                                "cpu": {"model_name": "Test CPU 9000", "family": "25", "model": "1", "cores": 2,
                                        "avx512_bf16": False, "amx_bf16": False}, "stages": stages}))
    monkeypatch.setattr(runs, "BENCH_RUN", path)
    return {s: v["seconds"] for s, v in stages.items()}


def _running(run: Path, stage: str, seconds_ago: float) -> None:
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "stage": stage,
                                                 "error": None, "started": iso(600), "updated": iso(seconds_ago)}))


def _markers(run: Path, seconds: dict[str, float]) -> None:
    (run / "stages").mkdir(exist_ok=True)
    for stage, sec in seconds.items():
        (run / "stages" / f"{stage}.json").write_text(json.dumps({"stage": stage, "seconds": sec, "files": {}}))


def test_a_running_run_shows_every_stage_and_an_estimate_of_the_rest(cache, bench):
    run = make_run_dir(cache / "runs" / "live", num_questions=20, num_samples=4)
    _markers(run, {"generate": 20.0, "vote": 40.0})  # twice the demo's 10 s and 20 s
    _running(run, "score", seconds_ago=5)
    (run / "progress.jsonl").write_text(json.dumps({"stage": "score", "done": 0, "total": 80, "elapsed": 0.0,
                                                    "time": iso(5)}) + "\n")
    with RunDir(run).lock():
        at = open_page("views/runs.py")
    stages = next(d.value for d in at.dataframe if "stage" in d.value.columns and "time" in d.value.columns)
    assert stages["stage"].tolist() == list(STAGES)  # the run order: generate → vote → score → …
    assert stages["state"].tolist() == ["done", "done", "running"] + ["to come"] * (len(STAGES) - 3)
    assert stages["time"].iloc[0] == "20.0 s" and stages["time"].iloc[2].endswith("so far")
    # the rest at twice the demo's pace: 2 × (30 − 5 s already run + 40 + … + 90) s
    left = 2 * (sum(bench[s] for s in STAGES[2:])) - 5
    caption = next(c.value for c in at.caption if c.value.startswith("Whole run:"))
    assert "2 of 9 stages done" in caption and f"≈ {runs.rough_duration(left)} left, an estimate" in caption
    assert "× 2" in caption
    bar = next(p.proto.text for p in at.get("progress"))
    assert "score: 0/80 · " in bar and "no item finished yet" in bar and "score: 0/80 · 0.0 s" not in bar
    assert any("no item counted yet" in c.value for c in at.caption)  # says what happens before the first item


def test_a_run_without_a_measured_demo_promises_no_time(cache, monkeypatch, tmp_path):
    monkeypatch.setattr(runs, "BENCH_RUN", tmp_path / "absent.json")
    at = open_page("views/runs.py")
    text = " ".join(i.value for i in at.info)
    assert "make run" in text and "few minutes" not in text and "took" not in text
    run = make_run_dir(cache / "runs" / "live", num_questions=20, num_samples=4)
    _markers(run, {"generate": 20.0})
    _running(run, "vote", seconds_ago=1)
    with RunDir(run).lock():
        at = open_page("views/runs.py")
    caption = next(c.value for c in at.caption if c.value.startswith("Whole run:"))
    assert "no estimate of the time left without a measured demo" in caption
    assert not any("For scale" in c.value for c in at.caption)


def test_the_measured_demo_is_quoted_where_a_run_is_launched(cache, bench):
    at = open_page("views/runs.py")
    text = " ".join(i.value for i in at.info)
    assert "the embedded demo took 7 min 12 s on Test CPU 9000, 2 cores (`iwsi bench run`" in text, text
    make_run_dir(cache / "runs" / "r", num_questions=20, num_samples=4)
    at = open_page("views/runs.py")
    assert any(c.value.startswith("For scale: the embedded demo took 7 min") for c in at.caption)


# -- #5: a run cancelled while it starts is cancelled, not failed ------------------------------------------
def _launch_sleeper(monkeypatch, name: str) -> int:
    """A launch from the dashboard whose process (a stand-in for `iwsi run` still importing) sleeps."""
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: ["sleep", "30"])
    return runs.launch_run(name, Path("configs/demo.yaml"), [])


def _wait_dead(pid: int) -> None:
    for _ in range(100):
        if not runs.pid_alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def test_cancelling_a_starting_run_reports_cancelled(cache, monkeypatch):
    pid = _launch_sleeper(monkeypatch, "early")
    run = runs.run_path("early")
    at = open_page("views/runs.py")
    assert any(i.value.startswith("Starting (") for i in at.info)  # what happens before the first stage
    assert runs.run_state(run)["stage"] == runs.STARTING
    assert runs.cancel_run("early")
    _wait_dead(pid)
    state = runs.run_state(run)
    assert state["state"] == "cancelled" and "while it was starting" in state["error"], state
    assert runs.describe_run("early")["status"] == "cancelled"
    at = open_page("views/runs.py")
    assert not at.error and any("cancelled from the dashboard" in w.value for w in at.warning)
    assert not any("(log.txt is empty)" in c.value for c in at.code)
    assert any(b.label == "Resume" for b in at.button)


def test_cancelling_a_resumed_run_while_it_starts_is_not_its_old_failure(cache, monkeypatch):
    run = make_run_dir(cache / "runs" / "again", num_questions=10, num_samples=2)
    (run / "status.json").write_text('{"state": "failed", "pid": null, "stage": "train", "error": "boom"}')
    os.utime(run / "status.json", (time.time() - 60, time.time() - 60))
    pid = _launch_sleeper(monkeypatch, "again")
    assert runs.cancel_run("again")
    _wait_dead(pid)
    assert runs.run_state(run)["state"] == "cancelled"


def test_a_killed_launch_that_nobody_cancelled_still_failed(cache, monkeypatch):
    import signal

    pid = _launch_sleeper(monkeypatch, "killed")
    os.kill(pid, signal.SIGTERM)  # not through the dashboard
    _wait_dead(pid)
    assert runs.run_state(runs.run_path("killed"))["state"] == "failed"


# -- the pure parts of the estimates ---------------------------------------------------------------------------
def _rec(done, elapsed, t=0.0, total=100):
    return {"stage": "generate", "done": done, "total": total, "elapsed": elapsed,
            "time": datetime.fromtimestamp(1_000_000 + t, timezone.utc).isoformat()}


def test_stage_eta_skips_the_wait_for_the_first_item_and_counts_down():
    # 60 s before the first batch of 20 (model warm-up), then 20 items per 10 s
    records = [_rec(0, 0.0), _rec(20, 60.0, 60), _rec(40, 70.0, 70), _rec(60, 80.0, 80)]
    assert runs.stage_eta(records) == pytest.approx(20.0)  # 40 items at 2/s, not at 60/80 per s
    assert runs.stage_eta(records, now=1_000_000 + 85) == pytest.approx(15.0)  # 5 s since the last record
    assert runs.stage_eta(records, now=1_000_000 + 500) == 0.0
    assert runs.stage_eta(records[:2]) == pytest.approx(80 * 60 / 20)  # one batch: its average is all there is
    assert runs.stage_eta(records[:1]) is None and runs.stage_eta([_rec(100, 90.0)]) is None


def test_progress_history_starts_a_bar_again_when_its_stage_restarts(tmp_path):
    lines = [_rec(0, 0.0), _rec(50, 30.0), _rec(0, 0.0), _rec(10, 5.0)]
    (tmp_path / "progress.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n{torn")
    history = runs.progress_history(tmp_path)
    assert [r["done"] for r in history["generate"]] == [0, 10]
    assert runs.read_progress(tmp_path)["generate"]["done"] == 10


def test_estimate_left_scales_the_demo_by_this_runs_pace():
    bench = {"generate": 100.0, "vote": 1.0, "score": 50.0, "train": 200.0}
    done = {"generate": 300.0, "vote": 3.0}
    assert runs.speed_scale(done, bench) == pytest.approx(3.0)
    assert runs.estimate_left(done, bench, ["score", "train"]) == pytest.approx(750.0)
    assert runs.estimate_left(done, bench, ["score", "train"], elapsed=60.0) == pytest.approx(690.0)
    assert runs.estimate_left(done, bench, ["score"], elapsed=1000.0) == 0.0  # late, not negative
    assert runs.estimate_left({}, bench, ["score"]) is None  # nothing finished: no pace to scale by
    assert runs.estimate_left(done, bench, ["embed"]) is None  # a stage the demo did not time
    assert runs.estimate_left({"generate": None}, bench, ["score"]) is None


def test_bench_run_file_is_read_only_when_it_holds_a_total(tmp_path, monkeypatch):
    path = tmp_path / "bench-run.json"
    monkeypatch.setattr(runs, "BENCH_RUN", path)
    assert runs.read_bench_run() is None
    path.write_text(json.dumps({"total_s": "soon"}))
    assert runs.read_bench_run() is None
    path.write_text(json.dumps({"total_s": 60.0, "exit_code": 1}))  # a demo that failed took no demo's time
    assert runs.read_bench_run() is None
    path.write_text(json.dumps({"total_s": 60.0, "stages": {"generate": {"seconds": 5}, "vote": {"seconds": None},
                                                            "score": "x"}}))
    assert runs.bench_stage_seconds(runs.read_bench_run()) == {"generate": 5.0}


def test_bar_stage_and_durations():
    assert [runs.bar_stage(b) for b in ("generate", "score-valid", "judge-self", "evaluate-base",
                                        "evaluate-trained", "other")] == \
        ["generate", "score", "judge", "evaluate-base", "evaluate", None]
    assert [runs.duration(s) for s in (4.21, 185, 3720)] == ["4.2 s", "3 min 05 s", "1 h 02 min"]
    assert [runs.rough_duration(s) for s in (30, 61, 7200)] == ["under a minute", "2 min", "2.0 h"]


# -- LLM Comparator: base vs trained outputs side by side, win / loss / tie -----------------------------------
def test_side_by_side_pairs_the_answers_and_counts_as_the_accuracy_does():
    from iwsi.present import side_by_side

    ev = pd.DataFrame({"model": ["base"] * 4 + ["trained"] * 4, "question_id": ["a", "b", "c", "d"] * 2,
                       "output": list("12345678"), "answer": list("12345678"), "gold": ["g"] * 8,
                       "is_correct": [True, False, True, None, False, True, True, False]})
    pairs = side_by_side(ev, "trained", ev, "base", ("trained", "base")).set_index("question_id")
    # trained vs base per question: a wrong/right, b right/wrong, c both right, d wrong/unparsed (= wrong)
    assert pairs["outcome"].to_dict() == {"a": "loss", "b": "win", "c": "tie: both right", "d": "tie: both wrong"}
    assert pairs.loc["b", "output trained"] == "6" and pairs.loc["b", "output base"] == "2"


def test_runs_page_shows_base_and_trained_outputs_side_by_side(cache):
    run = make_run_dir(cache / "runs" / "r", num_questions=20, num_samples=4)
    ev = pd.read_parquet(run / "eval.parquet")
    wide = ev.pivot_table(index="question_id", columns="model", values="is_correct", aggfunc="first").astype(bool)
    wins, losses = int((wide["trained"] & ~wide["base"]).sum()), int((~wide["trained"] & wide["base"]).sum())
    at = open_page("views/runs.py")
    shown = {m.label: m.value for m in at.metric}
    assert shown["trained wins"] == f"{wins:,}" and shown["trained loses"] == f"{losses:,}"
    at.selectbox(key="run_outputs_outcome").set_value("loss").run()
    table_ = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert len(table_) == losses and set(table_["outcome"]) == {"loss"}
    assert {"output trained", "output base", "answer trained", "answer base", "gold"} <= set(table_.columns)
    qid = table_["question_id"].iloc[0]
    at.text_input(key="run_outputs_search").set_value(qid).run()
    listed = next(d.value for d in at.dataframe if "outcome" in d.value.columns)["question_id"].tolist()
    assert qid in listed and all(qid in q for q in listed) and len(listed) < len(table_) + 1


def test_compare_shows_the_two_trained_models_side_by_side(cache):
    make_run_dir(cache / "runs" / "a", num_questions=20, num_samples=4, seed=5)
    make_run_dir(cache / "runs" / "b", num_questions=20, num_samples=4, seed=6)
    at = open_page("views/compare.py")
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert {"A wins", "A loses", "ties: both right", "ties: both wrong"} <= set(labels)
    assert any("outcome" in d.value.columns for d in at.dataframe)


# -- Phoenix / Embedding Atlas: the UMAP coloured by a value -----------------------------------------------------
def test_umap_colored_puts_each_value_on_one_scale_and_unknowns_in_grey():
    points = pd.DataFrame({"source": ["valid", "self", "self", "self"], "x": [0.0, 1, 2, 3], "y": [0.0, 1, 2, 3],
                           "row": [0, 1, 2, 3], "value": [np.nan, 1.0, 0.0, np.nan]})
    fig = charts.umap_colored(points, "correct")
    names = [t.name for t in fig.data]
    assert names == ["self-generated, no correct (1)", "self-generated (2)", "valid (human) (1)"]
    scale = fig.data[1].marker
    assert list(scale.color) == [1.0, 0.0] and scale.colorbar.title.text == "correct"
    assert list(fig.data[1].customdata) == [1, 2]  # selections still name their rows


def _array(value) -> np.ndarray:
    """An array of a figure's JSON spec: a list, or plotly's base64 typed array ({"dtype", "bdata"})."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_distributions_page_colours_the_umap_by_w_ds(cache):
    run = make_run_dir(cache / "runs" / "r", num_questions=40, num_samples=4, seed=0)
    at = open_page("views/distributions.py")
    at.button_group(key="umap_color").set_value("w_DS").run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    own = next(t for t in spec["data"] if t["name"].startswith("self-generated ("))
    assert own["marker"]["colorbar"]["title"]["text"] == "w_DS"
    umap = pd.read_parquet(run / "umap.parquet")
    samples = pd.read_parquet(run / "samples.parquet").set_index(["question_id", "sample_id"])["ds_weight"]
    picked = umap.iloc[_array(own["customdata"]).astype(int)]
    expected = samples.loc[list(zip(picked["question_id"], picked["sample_id"]))].to_numpy()
    assert np.allclose(_array(own["marker"]["color"]), expected)
    assert any("w_DS" in c.value and "percentile" in c.value for c in at.caption)

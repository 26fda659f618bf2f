"""Every dashboard page through streamlit's AppTest on fixture run directories (and an empty cache)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from tests.pages import open_page

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["views/runs.py", "views/ds_weights.py", "views/percentiles.py", "views/correctness.py",
         "views/distributions.py", "views/rationales.py", "views/explorer.py", "views/queue.py", "views/ablations.py",
         "views/compare.py"]
CHARTS = {"views/ds_weights.py": 1, "views/percentiles.py": 2, "views/correctness.py": 2,
          "views/distributions.py": 2, "views/ablations.py": 2, "views/compare.py": 1}


@pytest.fixture()
def full_cache(cache):
    make_run_dir(cache / "runs" / "gsm8k-run", num_questions=60, num_samples=5, seed=0)
    make_run_dir(cache / "runs" / "svamp-run", num_questions=40, num_samples=4, seed=1, dataset="svamp")
    make_ablation_dir(cache / "ablations" / "paper-fig2")
    return cache


@pytest.mark.parametrize("page", PAGES)
def test_empty_cache_says_what_to_run(cache, page):
    at = open_page(page)
    text = " ".join(i.value for i in at.info)
    assert ("Run embedded demo" in text or "make run" in text or "iwsi ablate" in text), text


def test_empty_runs_page_offers_demo_button(cache):
    at = open_page("views/runs.py")
    assert any(b.label == "Run embedded demo" for b in at.button)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_run(full_cache, page):
    at = open_page(page)
    assert at.title and at.caption  # title and the one-line explanation
    assert len(at.get("plotly_chart")) >= CHARTS.get(page, 0)
    assert not at.error


def test_runs_table_lists_runs(full_cache):
    at = open_page("views/runs.py")
    table = at.dataframe[0].value
    assert set(table["run"]) == {"gsm8k-run", "svamp-run"}
    assert set(table["status"]) == {"done"} and table["accuracy trained"].notna().all()


def test_k_slider_is_shared_and_moves_the_cut(full_cache):
    at = open_page("views/ds_weights.py")
    kept = lambda: next(m for m in at.metric if m.label.startswith("kept at")).value  # noqa: E731
    before = kept()
    at.slider(key="k").set_value(40).run()
    assert not at.exception and kept() != before and at.session_state["k"] == 40
    at.switch_page("views/distributions.py").run()  # another page keeps the value
    assert not at.exception and at.session_state["k"] == 40 and at.slider(key="k").value == 40


def test_switching_run(full_cache):
    at = open_page("views/ds_weights.py")
    first = at.metric[0].value
    other = [o for o in at.selectbox(key="run").options if o != at.selectbox(key="run").value][0]
    at.selectbox(key="run").set_value(other).run()
    assert not at.exception and at.metric[0].value != first


def test_missing_optional_files_name_their_stage(cache):
    make_run_dir(cache / "runs" / "bare", num_questions=20, num_samples=3, with_optional=False)
    at = open_page("views/distributions.py")
    assert any("embed" in i.value and "umap.parquet" in i.value for i in at.info)
    at = open_page("views/rationales.py")
    assert any("suggestions.parquet" in i.value for i in at.info)


def test_run_without_samples_yet(cache):
    (cache / "runs" / "fresh").mkdir(parents=True)
    (cache / "runs" / "fresh" / "status.json").write_text('{"state": "running", "pid": 1, "stage": "generate"}')
    for page in PAGES[1:6]:
        at = open_page(page)
        assert any("samples.parquet" in i.value or "make run" in i.value for i in at.info), page


def test_launch_rejects_bad_name(full_cache):
    at = open_page("views/runs.py")
    at.text_input[0].set_value("../escape")
    at.button[0].click() if not at.get("form_submit_button") else None
    submit = [b for b in at.button if b.label == "Launch"][0]
    submit.click().run()
    assert any("not valid" in e.value for e in at.error)
    assert not (full_cache / "escape").exists()


def test_labels_are_saved_and_survive(full_cache):
    at = open_page("views/rationales.py")
    run = full_cache / "runs" / at.sidebar.selectbox[0].value
    suggested = pd.read_parquet(run / "suggestions.parquet").dropna(subset=["suggested_label"])
    at.text_input[0].set_value(suggested["question_id"].iloc[0]).run()  # a question with suggestions
    save = [b for b in at.button if b.label == "Save labels"][0]
    save.click().run()
    assert not at.exception
    labels = pd.read_parquet(run / "labels.parquet")
    assert list(labels.columns) == ["question_id", "sample_id", "label", "source", "updated"]
    assert set(labels["source"]) == {"suggested"}  # untouched suggestions are not human labels
    at2 = open_page("views/rationales.py")  # a fresh session reads them back: counts per label and source
    assert any("suggested" in d.value.columns for d in at2.dataframe)


def test_rationales_search(full_cache):
    at = open_page("views/rationales.py")
    at.text_input[0].set_value("no such words anywhere").run()
    assert any("No question matches" in i.value for i in at.info)


def test_failed_run_shows_error_and_log_tail(cache):
    run = make_run_dir(cache / "runs" / "broken", num_questions=10, num_samples=2)
    (run / "status.json").write_text(
        '{"state": "failed", "pid": null, "stage": "train", "error": "CUDA out of memory"}')
    (run / "log.txt").write_text("stage train started\nTraceback: boom\n")
    at = open_page("views/runs.py")
    assert any("out of memory" in e.value for e in at.error)
    assert any("boom" in c.value for c in at.code)


def test_running_run_has_cancel_button(cache):
    import os

    from iwsi.rundir import RunDir

    run = make_run_dir(cache / "runs" / "live", num_questions=10, num_samples=2)
    (run / "status.json").write_text(f'{{"state": "running", "pid": {os.getpid()}, "stage": "score"}}')
    with RunDir(run).lock():  # a running run's process holds its lock (a bare live pid is not enough)
        at = open_page("views/runs.py")
    assert any(b.label == "Cancel run" for b in at.button)
    assert any("score" in p.proto.text for p in at.get("progress")) or at.get("progress")


def test_umap_selection_lists_rationales(full_cache):
    at = open_page("views/distributions.py")
    at.session_state["umap"] = {"selection": {"points": [{"customdata": 0}, {"customdata": [20]}, {"customdata": 21}],
                                              "point_indices": [], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any("self-generated samples selected" in m.value for m in at.markdown)
    assert len(at.dataframe[-1].value) == 2 and "rationale" in at.dataframe[-1].value.columns


# -- a run the pages cannot show gets a message, never an exception --------------------------------------
def _unscored(run: Path) -> None:
    """As a run stopped with `--until vote` leaves samples.parquet: no loss / w' / DS weight yet."""
    df = pd.read_parquet(run / "samples.parquet")
    df.drop(columns=["loss", "w_prime", "ds_weight", "kept", "weight"], errors="ignore").to_parquet(
        run / "samples.parquet", index=False)
    for name in ("valid.parquet", "umap.parquet", "suggestions.parquet", "eval.parquet", "metrics.json"):
        (run / name).unlink(missing_ok=True)


def _truncated(run: Path) -> None:
    data = (run / "samples.parquet").read_bytes()
    (run / "samples.parquet").write_bytes(data[: len(data) // 3])


def _status_not_object(run: Path) -> None:
    (run / "status.json").write_text('["done"]')
    (run / "metrics.json").write_text("42")


BROKEN = {"unscored": _unscored, "truncated-samples": _truncated, "status-not-object": _status_not_object}


@pytest.mark.parametrize("damage", BROKEN)
@pytest.mark.parametrize("page", PAGES)
def test_pages_survive_a_run_they_cannot_show(cache, page, damage):
    make_run_dir(cache / "runs" / "good", num_questions=20, num_samples=4, seed=3)
    bad = make_run_dir(cache / "runs" / "zz-bad", num_questions=20, num_samples=4, seed=4)
    BROKEN[damage](bad)
    import os
    os.utime(bad / "config.yaml")  # newest: the sidebar selects it by default
    at = open_page(page)  # asserts no exception
    if damage != "status-not-object" and page not in ("views/runs.py", "views/ablations.py", "views/percentiles.py"):
        shown = " ".join(m.value for m in [*at.info, *at.error])
        assert "zz-bad" in shown and ("score" in shown or "cannot be read" in shown), shown


def test_symlinked_run_folders_are_not_listed(cache):
    real = make_run_dir(cache / "elsewhere" / "r", num_questions=10, num_samples=4)
    (cache / "runs").mkdir(exist_ok=True)
    (cache / "runs" / "link").symlink_to(real, target_is_directory=True)
    (cache / "ablations").mkdir()
    abl = make_ablation_dir(cache / "elsewhere" / "abl")
    (cache / "ablations" / "link").symlink_to(abl, target_is_directory=True)
    from iwsi import runs

    assert runs.list_run_names() == [] and runs.list_ablations() == []
    for page in PAGES:
        open_page(page)


# -- a run trained with another method is shown with that method's kept set ------------------
@pytest.mark.parametrize("method", ["entropy", "lmsi"])
def test_pages_show_the_runs_own_kept_set(cache, method):
    from iwsi.filtering import select

    run = make_run_dir(cache / "runs" / f"{method}-run", num_questions=60, num_samples=4, seed=7, method=method, k=80)
    df = pd.read_parquet(run / "samples.parquet")
    at = open_page("views/ds_weights.py")
    kept = next(m for m in at.metric if m.label.startswith("kept"))
    assert kept.label == ("kept (no k)" if method == "lmsi" else "kept at k=80")
    assert kept.value == f"{int(df['kept'].sum()):,}"
    assert method != "lmsi" or int(df["kept"].sum()) == int(df["is_majority"].sum())
    assert any("trained with" in m.value and ("Entropy" in m.value or "LMSI" in m.value) for m in at.markdown)
    at.sidebar.slider[0].set_value(50).run()  # moving k recomputes *this* method's cut
    kept = next(m for m in at.metric if m.label.startswith("kept"))
    assert kept.value == f"{int(select(df, method, 50)[0].sum()):,}"


def test_pages_live_in_views_not_pages():
    """A pages/ folder beside app.py switches Streamlit to its folder navigation, which runs a page's
    script without app.py (and so without the shared sidebar): the pages must stay in views/."""
    root = Path(APP).parent
    assert not (root / "pages").exists()
    assert all((root / page).is_file() for page in PAGES)


def test_run_and_k_survive_page_switches(full_cache):
    at = open_page("views/ds_weights.py")
    other = [o for o in at.sidebar.selectbox[0].options if o != at.sidebar.selectbox[0].value][0]
    at.sidebar.selectbox[0].set_value(other).run()
    at.sidebar.slider[0].set_value(37).run()
    for page in ("views/correctness.py", "views/runs.py", "views/ds_weights.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert at.sidebar.selectbox[0].value == other and at.sidebar.slider[0].value == 37


# -- the Runs page ----------------------------------------------------------------------------------------
def test_launch_uses_the_typed_name_and_validates_the_whole_form_first(cache, monkeypatch):
    from iwsi import runs

    started = []
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: started.append((o, s)) or ["sleep", "5"])
    at = open_page("views/runs.py")
    at.text_input(key="launch_name").set_value("my-named-run")
    at.text_input[1].set_value("k=0 num_samples=two bogus=1")
    [b for b in at.button if b.label == "Launch"][0].click().run()
    shown = " ".join(e.value for e in at.error).replace("\\", "")  # the messages are shown escaped
    assert "k=0.0 is out of range" in shown and "num_samples='two'" in shown and "bogus" in shown, shown
    assert not (cache / "runs" / "my-named-run").exists() and not started  # nothing written, nothing started
    at.text_input[1].set_value("num_questions=5")  # a form applies its values on submit
    [b for b in at.button if b.label == "Launch"][0].click().run()
    assert (cache / "runs" / "my-named-run" / "launch.json").exists(), [e.value for e in at.error]


def test_a_run_stopped_with_until_is_not_done_and_accuracy_change_has_n_and_interval(cache):
    run = make_run_dir(cache / "runs" / "r", num_questions=20, num_samples=4)
    at = open_page("views/runs.py")
    change = " ".join(c.value for c in at.caption)
    assert "over n = " in change and "95 % bootstrap interval" in change, change
    (run / "status.json").write_text('{"state": "stopped", "stage": "vote", "pid": null}')
    at = open_page("views/runs.py")
    assert "stopped" in at.dataframe[0].value["status"].tolist()


def test_ablations_page_shows_base_accuracy_and_the_paired_bootstrap(cache):
    """The base model and the paired comparison with LMSI are on the page."""
    from iwsi.rundir import claim_dir

    folder = cache / "ablations" / "real-like"
    claim_dir(folder, "ablation")
    rows = []
    for method, right in (("lmsi", 20), ("iwsi", 30)):
        for seed in (0, 1):
            cell = folder / "cells" / f"{method}-s{seed}"
            cell.mkdir(parents=True)
            pd.DataFrame({"model": "trained", "question_id": [f"q{i}" for i in range(40)],
                          "is_correct": [i < right for i in range(40)]}).to_parquet(cell / "eval.parquet")
            rows.append({"dataset": "gsm8k", "method": method, "k": 80.0 if method == "iwsi" else 100.0, "seed": seed,
                         "accuracy": right / 40, "base_accuracy": 0.25, "num_kept": 10, "run_dir": str(cell)})
    pd.DataFrame(rows).to_parquet(folder / "results.parquet")
    at = open_page("views/ablations.py")
    tables = [d.value for d in at.dataframe]
    assert any("base model" in set(t.get("method", [])) for t in tables)
    sig = next(t for t in tables if "vs" in t.columns)
    assert sig.iloc[0]["method"] == "iwsi" and sig.iloc[0]["delta"] == pytest.approx(25.0)


def test_ablations_page_says_why_a_cell_has_no_accuracy(cache):
    """A method that kept nothing has no accuracy; the page names the cell and the reason."""
    from iwsi.rundir import claim_dir

    folder = cache / "ablations" / "empty-cell"
    claim_dir(folder, "ablation")
    note = "method 'ground-truth' kept no samples, so there is nothing to train on: raise k"
    pd.DataFrame([{"dataset": "gsm8k", "method": "lmsi", "k": 100.0, "seed": 0, "accuracy": 0.3, "num_kept": 9,
                   "note": None},
                  {"dataset": "gsm8k", "method": "ground-truth", "k": 100.0, "seed": 0, "accuracy": float("nan"),
                   "num_kept": 0, "note": note}]).to_parquet(folder / "results.parquet")
    at = open_page("views/ablations.py")
    warned = " ".join(w.value for w in at.warning)
    assert "Cells with no accuracy" in warned and "Ground-truth filter" in warned and note in warned, warned


def test_run_and_k_come_from_the_url_and_go_back_into_it(full_cache):
    """A link or a reload shows the same run and k."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "svamp-run"
    at.query_params["k"] = "37"
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "svamp-run" and at.sidebar.slider[0].value == 37
    at.sidebar.slider[0].set_value(55).run()
    assert at.query_params["k"] == ["55"] or at.query_params["k"] == "55"


def test_a_failed_run_can_be_resumed_from_the_page(cache, monkeypatch):
    from iwsi import runs

    started = []
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: started.append(c) or ["sleep", "3"])
    run = make_run_dir(cache / "runs" / "broken", num_questions=10, num_samples=2)
    (run / "status.json").write_text('{"state": "failed", "pid": null, "stage": "train", "error": "boom"}')
    from iwsi.config import load_config

    (run / "config.yaml").write_text(load_config(overrides={"num_questions": 10}).to_yaml())  # a real run's config
    at = open_page("views/runs.py")
    assert at.get("progress") and not any("left" in p.proto.text for p in at.get("progress"))  # no ETA: not running
    [b for b in at.button if b.label == "Resume"][0].click().run()
    assert started == [run / "config.yaml"] and (run / "launch.json").exists()


def test_explorer_searches_rationales_filters_and_drills_down(full_cache):
    """Full-text search in questions and rationales, filters, per-question drill-down."""
    at = open_page("views/explorer.py")
    at.text_input[0].set_value("apples").run()
    n_question = next(c.value for c in at.caption if "candidates match" in c.value)
    next(s for s in at.selectbox if s.label == "Majority (D_c)").set_value("in D_c").run()
    n_majority = next(c.value for c in at.caption if "candidates match" in c.value)
    count = lambda text: int(text.split(" of ")[0].replace(",", ""))  # noqa: E731
    assert 0 < count(n_majority) < count(n_question)
    table_ = at.dataframe[0].value
    assert table_["majority"].all() and table_["question"].str.contains("apples", case=False).all()
    assert any("Pick a row" in i.value for i in at.info)


# -- compare two runs -------------------------------------------------------------------------------------
def test_compare_two_runs_of_one_generation(cache):
    """Same generation, two methods: the config diff is the method, overlap and Jaccard come from each
    run's own kept column, accuracy is paired over the shared test questions."""
    a = make_run_dir(cache / "runs" / "iwsi-run", num_questions=40, num_samples=4, seed=5, method="iwsi", k=50)
    b = make_run_dir(cache / "runs" / "entropy-run", num_questions=40, num_samples=4, seed=5, method="entropy", k=50)
    at = open_page("views/compare.py")
    at.selectbox(key="compare_a").set_value("iwsi-run").run()
    at.selectbox(key="compare_b").set_value("entropy-run").run()
    assert not at.exception and not at.error
    diff = at.dataframe[0].value
    assert diff["key"].tolist() == ["method"] and diff["iwsi-run"].tolist() == ["iwsi"]
    ka, kb = (pd.read_parquet(r / "samples.parquet")["kept"].to_numpy(bool) for r in (a, b))
    metric = {m.label: m.value for m in at.metric}
    assert metric["kept by both"] == f"{(ka & kb).sum():,}"
    assert metric["Jaccard"] == f"{(ka & kb).sum() / (ka | kb).sum():.3f}"
    label_a = next(label for label in metric if label.startswith("kept by A"))
    assert label_a.endswith("k = 50)") and metric[label_a] == f"{ka.sum():,} / {len(ka):,}"
    assert metric["Δ A − B (points)"] == "+0.0"  # same fixture seed: same evaluations
    assert any("n = 200 test questions" in c.value for c in at.caption)
    spec = at.get("plotly_chart")[0].proto.spec  # by default each run's kept set, overlaid
    assert f"A: iwsi-run (n={ka.sum():,})" in spec and f"B: entropy-run (n={kb.sum():,})" in spec


def test_compare_runs_that_share_no_candidates(full_cache):
    at = open_page("views/compare.py")
    assert not at.exception
    assert any("do not share candidates" in i.value for i in at.info)
    assert "Jaccard" not in [m.label for m in at.metric]
    assert at.dataframe[0].value["key"].tolist() == ["dataset", "num_questions", "num_samples", "seed"]


def test_compare_needs_two_runs(cache):
    make_run_dir(cache / "runs" / "only", num_questions=10, num_samples=2)
    at = open_page("views/compare.py")
    assert any("needs two" in i.value for i in at.info)


# -- a chart selection opens the Samples explorer filtered to it -------------------------------------------
def _explorer_rows(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "rationale" in d.value.columns)


@pytest.mark.parametrize("column", ["ds_weight", "w_prime"])
def test_a_histogram_bar_opens_its_samples_in_the_explorer(full_cache, column):
    """Both histograms are panels of one chart: a bar's trace (curve_number) says which panel it is in."""
    from iwsi import charts

    at = open_page("views/ds_weights.py")
    run = at.sidebar.selectbox[0].value
    df = pd.read_parquet(full_cache / "runs" / run / "samples.parquet")
    maj = df[df["is_majority"]]
    edges = charts.histogram_edges(maj[column].to_numpy(float))
    bar = charts.bar_index(maj[column].to_numpy(float), edges)
    right = maj["is_correct"].eq(True).fillna(False).to_numpy(bool)
    first = int(bar[right].min())  # a non-empty bar of the "correct" trace
    expected = maj[(bar == first) & right]
    curve = list(charts.PAIR).index(column) * len(charts.correctness_groups(maj))  # w′'s traces follow w_DS's
    at.session_state["histograms"] = {"selection": {"points": [{"curve_number": curve, "customdata": first}],
                                                    "point_indices": [first], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Samples explorer"
    what = charts.SYMBOLS[column]
    assert any(f"picked on 1 bar(s) of the {what} histogram" in i.value and "correct" in i.value for i in at.info)
    shown = _explorer_rows(at)
    assert sorted(zip(shown["question_id"], shown["sample_id"])) == sorted(
        zip(expected["question_id"], expected["sample_id"]))
    at.switch_page("views/explorer.py")  # AppTest would rerun the page it was told last; a browser stays here
    [b for b in at.button if b.label == "Show all candidates"][0].click().run()
    assert len(_explorer_rows(at)) == min(len(df), 5000)


def test_a_umap_selection_opens_in_the_explorer(full_cache):
    at = open_page("views/distributions.py")
    at.session_state["umap"] = {"selection": {"points": [{"customdata": 20}, {"customdata": 21}, {"customdata": 22}],
                                              "point_indices": [], "box": [], "lasso": []}}
    at.run()
    listed = at.dataframe[-1].value
    [b for b in at.button if b.label == "Open in Samples explorer"][0].click().run()
    assert not at.exception and at.title[0].value == "Samples explorer"
    shown = _explorer_rows(at)
    assert sorted(zip(shown["question_id"], shown["sample_id"])) == sorted(
        zip(listed["question_id"], listed["sample_id"]))


# -- keyboard labelling on the Rationales page ------------------------------------------------------------
def _focus(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Sample **"))


def test_keyboard_labels_are_human_and_move_on(full_cache):
    at = open_page("views/rationales.py")
    buttons = {b.label: b for b in at.button}
    assert {buttons[n].proto.shortcut for n in ("Next", "Previous", "Redundant", "Jumping", "Spurious", "Clear")} \
        == {"n", "p", "1", "2", "3", "0"}  # streamlit normalises keys to lower case
    run = full_cache / "runs" / at.sidebar.selectbox[0].value
    first = _focus(at)
    assert first.startswith("Sample **1 of ")
    qid, sample = first.split("of question ")[1].split(" · sample ")
    sample = int(sample.split(" ")[0])
    buttons["Jumping"].click().run()  # saved as the person's label, and on to sample 2
    labels = pd.read_parquet(run / "labels.parquet")
    saved = labels[["question_id", "sample_id", "label", "source"]].values.tolist()
    assert saved == [[qid, sample, "jumping", "human"]]
    assert _focus(at).startswith("Sample **2 of ")
    [b for b in at.button if b.label == "Previous"][0].click().run()
    assert _focus(at).startswith("Sample **1 of ") and "label: **jumping** (human)" in _focus(at)
    [b for b in at.button if b.label == "Clear"][0].click().run()
    assert pd.read_parquet(run / "labels.parquet").empty and _focus(at).startswith("Sample **1 of ")
    n = int(_focus(at).split(" of ")[1].split("**")[0])
    for _ in range(n):  # past the last sample: the next question of the table
        [b for b in at.button if b.label == "Next"][0].click().run()
    assert not at.exception
    assert _focus(at).startswith("Sample **1 of ") and f"of question {qid} " not in _focus(at)
    [b for b in at.button if b.label == "Previous"][0].click().run()  # back: the last sample of the first question
    assert _focus(at).startswith(f"Sample **{n} of {n}** of question {qid} ")


# -- figures and tables for a paper, built only on click ---------------------------------------------------
def test_figure_downloads_are_offered_and_built_lazily(full_cache, monkeypatch):
    from iwsi import present

    built = []
    monkeypatch.setattr(present, "run_bundle", lambda *a: built.append(a) or b"")
    monkeypatch.setattr(present, "ablation_bundle", lambda *a: built.append(a) or b"")
    at = open_page("views/runs.py")
    names = [d.proto.label for d in at.get("download_button")]
    assert "Figures & tables for the paper (zip, k = 80)" in names
    at.switch_page("views/ablations.py").run()
    assert "Figures & tables for the paper (zip)" in [d.proto.label for d in at.get("download_button")]
    assert not built  # rendering a page renders no figure


def test_serve_warms_what_the_pages_import():
    """`python app.py` imports the pages' libraries before serving: the list is read from the pages' own import
    lines (a submodule imported as `from iwsi import charts` counts), leaves out views/ itself, and every name
    in it imports."""
    import importlib

    from views._serve import page_imports

    names = page_imports()
    assert {"plotly.graph_objects", "iwsi.charts", "iwsi.compare", "pyarrow.parquet", "scipy.stats"} <= set(names)
    assert not [n for n in names if n.startswith("views")]
    for name in names:
        importlib.import_module(name)


def test_serve_freezes_what_the_warm_up_left():
    """Full collections then skip the start-up objects (docs/benchmarks.md: 95-209 ms → 29 ms each)."""
    import gc

    from views._serve import warm

    try:
        warm()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_umap_draws_a_sample_by_default_and_every_point_on_request(cache):
    """2,000 self points as SVG by default (docs/benchmarks.md: WebGL is slow to appear in software); all on request."""
    run = make_run_dir(cache / "runs" / "big", num_questions=700, num_samples=5, seed=0)
    n = len(pd.read_parquet(run / "umap.parquet"))
    at = open_page("views/distributions.py")
    assert any(c.value.startswith(f"Showing {n - len_self(run) + 2000:,} of {n:,} points") for c in at.caption)
    assert {t["type"] for t in json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]} == {"scatter"}
    at.select_slider(key="umap_points").set_value("all").run()
    assert not at.exception and not any(c.value.startswith("Showing") for c in at.caption)
    assert {t["type"] for t in json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]} == {"scattergl"}


def len_self(run: Path) -> int:
    return int((pd.read_parquet(run / "umap.parquet", columns=["source"])["source"] == "self").sum())


def test_ds_weights_page_shows_the_centre_and_the_stability_of_the_cut(full_cache):
    """The run's valid_center and, from valid_pool.parquet, the kept-set Jaccard over other D_v draws, recomputed
    as k moves (iwsi.dsweight.cut_stability)."""
    import yaml

    from iwsi.dsweight import dv_stability, valid_center

    run = full_cache / "runs" / "gsm8k-run"
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "valid_center": "median"}))
    at = open_page("views/ds_weights.py")
    valid = pd.read_parquet(run / "valid.parquet")
    caption = next(c.value for c in at.caption if c.value.startswith("L̄_v"))
    assert "**median**" in caption and f"{valid_center(valid['loss'], 'median'):.4f}" in caption

    def readout(k):
        samples, pool = pd.read_parquet(run / "samples.parquet"), pd.read_parquet(run / "valid_pool.parquet")
        return dv_stability(samples, pool, k, "median")

    shown = lambda: next(m for m in at.metric if m.label.startswith("kept-set Jaccard")).value  # noqa: E731
    assert shown() == f"{readout(80)['jaccard_median']:.3f}"
    at.slider(key="k").set_value(30).run()
    assert not at.exception and shown() == f"{readout(30)['jaccard_median']:.3f}"
    assert next(m for m in at.metric if m.label.startswith("σ_k% over")).value == \
        f"{readout(30)['sigma_min']:.4f} – {readout(30)['sigma_max']:.4f}"

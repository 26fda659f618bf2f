"""Tags, notes, archive and delete on the Runs page (what researchers reach for in W&B): the rules in
iwsi/runs.py, then the page through streamlit's AppTest on fixture run directories."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.fixtures import make_run_dir
from iwsi import runs
from iwsi.contract import OWNER_FILE, RUN_FILE
from iwsi.rundir import RunDir
from tests.pages import open_page


@pytest.fixture()
def two_runs(cache):
    old = make_run_dir(cache / "runs" / "old-run", num_questions=10, num_samples=2, seed=0)
    new = make_run_dir(cache / "runs" / "new-run", num_questions=10, num_samples=2, seed=1)
    os.utime(old, (1_000_000, 1_000_000))  # newest first: new-run is the sidebar's default
    return old, new


# -- tags and note ---------------------------------------------------------------------------------------
def test_tags_are_parsed_once_each_and_a_bad_one_is_one_line():
    assert runs.parse_tags(" baseline, k-sweep,,baseline , gsm8k ") == ("baseline", "k-sweep", "gsm8k")
    assert runs.parse_tags("") == ()
    for bad in ("two words", "x" * 41, "a/b", "<b>"):
        with pytest.raises(ValueError, match="is not valid: use up to 40 letters") as err:
            runs.parse_tags(f"ok, {bad}")
        assert "\n" not in str(err.value)


def test_annotations_change_neither_the_config_nor_the_fingerprints(two_runs):
    run = two_runs[1]
    RunDir(run).mark_done("vote", 1.0)  # a marker fingerprinting samples.parquet
    before = {p.name: p.read_bytes() for p in (run / "config.yaml", run / OWNER_FILE, run / "stages" / "vote.json")}
    folder_time = run.stat().st_mtime_ns
    runs.save_annotations(run, runs.Annotations(tags=("baseline",), note="first try", archived=True))
    assert runs.read_annotations(run) == runs.Annotations(("baseline",), "first try", True)
    # config.yaml (so the run's hash), the owner file's record of it and the marker's fingerprints are unchanged
    assert {p.name: p.read_bytes() for p in (run / "config.yaml", run / OWNER_FILE,
                                            run / "stages" / "vote.json")} == before
    assert RunDir(run).verify() is None
    assert run.stat().st_mtime_ns == folder_time  # a note does not move the run up the list


def test_a_damaged_annotations_file_reads_as_no_annotations(two_runs):
    run = two_runs[0]
    (run / RUN_FILE.annotations).write_text('{"tags": "baseline", "note": 3, "archived": "yes"}')
    assert runs.read_annotations(run) == runs.Annotations()
    (run / RUN_FILE.annotations).write_text('{"tags": ["ok", 3, "not ok"], "note": "n", "archived": true}')
    assert runs.read_annotations(run) == runs.Annotations(("ok",), "n", True)
    (run / RUN_FILE.annotations).write_text("{torn")
    assert runs.read_annotations(run) == runs.Annotations()


def test_annotations_are_written_only_into_iwsi_run_folders(cache):
    foreign = cache / "runs" / "mine"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("a user's folder")
    with pytest.raises(runs.RunNameError, match="not an iwsi run folder"):
        runs.save_annotations(foreign, runs.Annotations(tags=("x",)))
    assert not (foreign / RUN_FILE.annotations).exists()
    with pytest.raises(ValueError, match="keep it under"):
        runs.save_annotations(foreign, runs.Annotations(note="x" * (runs.NOTE_MAX + 1)))


def test_filter_runs_hides_archived_and_keeps_any_of_the_tags():
    rows = [{"run": "a", "tags": ["x"], "archived": False}, {"run": "b", "tags": ["y"], "archived": True},
            {"run": "c", "tags": [], "archived": False}]
    shown = lambda tags, archived: [r["run"] for r in runs.filter_runs(rows, tags, archived)]  # noqa: E731
    assert shown([], False) == ["a", "c"] and shown([], True) == ["a", "b", "c"]
    assert shown(["x", "y"], False) == ["a"] and shown(["x", "y"], True) == ["a", "b"]


# -- delete ---------------------------------------------------------------------------------------------
def test_delete_needs_the_name_typed_and_removes_the_whole_folder(two_runs):
    run = two_runs[0]
    with pytest.raises(runs.RunNameError, match="type the run's name"):
        runs.delete_run("old-run", "old")
    assert run.is_dir()
    assert runs.delete_run("old-run", "old-run") == run.resolve()
    assert not os.path.lexists(run) and two_runs[1].is_dir()


def test_delete_refuses_a_folder_iwsi_did_not_create(cache):
    foreign = cache / "runs" / "mine"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("months of work")
    with pytest.raises(runs.RunNameError, match=f"has no {OWNER_FILE}"):
        runs.delete_run("mine", "mine")
    other = make_run_dir(cache / "runs" / "abl", num_questions=10, num_samples=2)
    (other / OWNER_FILE).write_text(json.dumps({"kind": "ablation", "schema_version": 1}))
    with pytest.raises(runs.RunNameError):
        runs.delete_run("abl", "abl")
    assert (foreign / "thesis.tex").exists() and other.is_dir()


def test_delete_refuses_a_running_run_and_one_whose_lock_is_held(two_runs):
    run = two_runs[1]
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "stage": "score"}))
    with RunDir(run).lock():  # a live run's process holds its lock
        with pytest.raises(runs.RunNameError, match="is running: cancel it first"):
            runs.delete_run("new-run", "new-run")
    (run / "status.json").write_text(json.dumps({"state": "done", "pid": None, "stage": "evaluate"}))
    with RunDir(run).lock():  # e.g. `iwsi run --out` from a terminal, before it writes its status
        with pytest.raises(runs.RunNameError, match="is in use, not deleted"):
            runs.delete_run("new-run", "new-run")
    assert (run / "config.yaml").exists()


def test_delete_never_follows_a_link_out_of_the_run_folder(cache):
    outside = cache / "elsewhere"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "precious.txt").write_text("keep me")
    (outside / "file.txt").write_text("keep me too")
    elsewhere_run = make_run_dir(outside / "a-run", num_questions=10, num_samples=2)
    run = make_run_dir(cache / "runs" / "r", num_questions=10, num_samples=2)
    (run / "linked-dir").symlink_to(outside / "data", target_is_directory=True)
    (run / "linked-file").symlink_to(outside / "file.txt")
    (run / "chunks").mkdir(exist_ok=True)
    (run / "chunks" / "deep-link").symlink_to(outside, target_is_directory=True)
    # a link as the run folder itself, to an iwsi run outside the root or to another run inside it
    (cache / "runs" / "alias").symlink_to(elsewhere_run, target_is_directory=True)
    (cache / "runs" / "twin").symlink_to(run, target_is_directory=True)
    for name in ("alias", "twin"):
        with pytest.raises(runs.RunNameError, match="is a link"):
            runs.delete_run(name, name)
    for name in ("../elsewhere", "..", "a/b", ""):
        with pytest.raises(runs.RunNameError):
            runs.delete_run(name, name)
    runs.delete_run("r", "r")
    assert not os.path.lexists(run)
    assert (outside / "data" / "precious.txt").read_text() == "keep me"
    assert (outside / "file.txt").read_text() == "keep me too"
    assert (elsewhere_run / "config.yaml").exists() and (elsewhere_run / OWNER_FILE).exists()


# -- the page --------------------------------------------------------------------------------------------
def _table_runs(at) -> list[str]:
    return list(next(d.value for d in at.dataframe if "run" in d.value.columns)["run"])


def _errors(at) -> list[str]:
    """The page's error lines as plain text (md_text escapes their punctuation)."""
    return [e.value.replace("\\", "") for e in at.error]


def _submit(at, label: str):
    return next(b for b in at.button if b.label == label).click().run()


def test_tags_and_note_are_edited_shown_and_filtered(two_runs):
    at = open_page("views/runs.py")
    assert at.sidebar.selectbox[0].value == "new-run"
    at.text_input(key="tags_new-run").set_value("baseline, k-sweep")
    at.text_area(key="note_new-run").set_value("first try at k = 80")
    _submit(at, "Save tags and note")
    assert not at.exception and not at.error
    assert runs.read_annotations(two_runs[1]) == runs.Annotations(("baseline", "k-sweep"), "first try at k = 80")
    at = open_page("views/runs.py")  # a fresh session reads them back
    table = next(d.value for d in at.dataframe if "run" in d.value.columns).set_index("run")
    assert list(table.loc["new-run", "tags"]) == ["baseline", "k-sweep"]
    assert table.loc["new-run", "note"] == "first try at k = 80"
    assert at.multiselect(key="runs_tags").options == ["baseline", "k-sweep"]
    at.multiselect(key="runs_tags").set_value(["k-sweep"]).run()
    assert not at.exception and _table_runs(at) == ["new-run"]
    assert any(c.value.startswith("1 of 2 runs shown") for c in at.caption)


def test_a_bad_tag_is_one_error_line_and_nothing_is_written(two_runs):
    at = open_page("views/runs.py")
    at.text_input(key="tags_new-run").set_value("fine, not fine")
    _submit(at, "Save tags and note")
    assert not at.exception
    assert len(_errors(at)) == 1 and "'not fine' is not valid" in _errors(at)[0]
    assert not (two_runs[1] / RUN_FILE.annotations).exists()


def test_archive_hides_a_run_until_archived_runs_are_shown(two_runs):
    at = open_page("views/runs.py")
    at.button(key="archive").click().run()
    assert not at.exception and runs.read_annotations(two_runs[1]).archived
    assert _table_runs(at) == ["old-run"]
    assert any("(1 archived hidden)" in c.value for c in at.caption)
    at.toggle(key="runs_show_archived").set_value(True).run()
    table = next(d.value for d in at.dataframe if "run" in d.value.columns).set_index("run")
    assert set(table.index) == {"old-run", "new-run"} and table.loc["new-run", "archived"]
    assert at.button(key="archive").label == "Unarchive"
    at.button(key="archive").click().run()
    assert not runs.read_annotations(two_runs[1]).archived


def test_delete_from_the_page_after_the_name_is_typed(two_runs):
    at = open_page("views/runs.py")
    at.button(key="delete").click().run()  # nothing typed: refused, one line
    assert not at.exception and len(_errors(at)) == 1 and "type the run's name" in _errors(at)[0]
    assert two_runs[1].is_dir()
    at.text_input(key="delete_new-run").set_value("new-run")
    at.button(key="delete").click().run()
    assert not at.exception and not at.error
    assert not os.path.lexists(two_runs[1]) and two_runs[0].is_dir()
    assert at.sidebar.selectbox[0].value == "old-run" and _table_runs(at) == ["old-run"]


def test_a_running_run_is_not_deleted_from_the_page(two_runs):
    run = two_runs[1]
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "stage": "train"}))
    with RunDir(run).lock():
        at = open_page("views/runs.py")
        at.text_input(key="delete_new-run").set_value("new-run")
        at.button(key="delete").click().run()
        assert not at.exception and any("is running: cancel it first" in e for e in _errors(at))
    assert (Path(run) / "config.yaml").exists()

"""Regression tests for the reliability guarantees (docs/reliability.md) that are not CLI config checks
(those are in test_bad_input.py) or dashboard pages (test_app.py): export, launch, run-directory
ownership and artefact fingerprints, and the small fixes (entropy, AQuA, CommonsenseQA, train loss)."""
from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from benchmarks.fixtures import make_run_dir
from iwsi import runs
from iwsi.cli import main as cli_main
from iwsi.datasets import load_splits
from iwsi.datasets.aqua import clean_rationale
from iwsi.rundir import RunDir, RunDirError, owner, write_parquet
from iwsi.train import whole_run_loss
from iwsi.vote import answer_entropy
from tests.test_bad_input import snapshot
from tests.test_datasets import write_jsonl


def export_main(argv: list[str]) -> int:
    """`iwsi export ARGV`."""
    return cli_main(["export", *argv])


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    return make_run_dir(tmp_path / "runs" / "r1", num_questions=20, num_samples=4, seed=2)


# -- export ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["samples.parquet", "kept.jsonl", "chunks/x.jsonl"])
def test_export_never_writes_inside_a_run(run, target, capsys):
    before = snapshot(run)
    assert export_main([str(run), "--out", str(run / target)]) == 2
    err = capsys.readouterr().err
    assert "is inside the run directory" in err and len(err.strip().splitlines()) == 1
    assert snapshot(run) == before


def test_export_refuses_folders_foreign_files_and_uncreatable_paths(run, tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    (tmp_path / "afile").write_text("x")
    cases = [(tmp_path, "is a folder"), (mine, "was not written by iwsi export"),
             (tmp_path / "afile" / "kept.jsonl", "cannot be created")]
    for out, fragment in cases:
        assert export_main([str(run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert fragment in err and "Traceback" not in err
    assert mine.read_text() == "mine"


def test_export_overwrites_only_its_own_earlier_export(run, tmp_path):
    out = tmp_path / "exports" / "kept.jsonl"
    assert export_main([str(run), "--k", "50", "--out", str(out)]) == 0
    first = out.read_text()
    assert export_main([str(run), "--k", "80", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) > len(first.splitlines())
    assert json.loads((tmp_path / "exports" / "kept.jsonl.manifest.json").read_text())["k"] == 80
    assert not list(out.parent.glob(".*.tmp"))


def test_export_of_a_damaged_table_is_one_line(run, tmp_path, capsys):
    (run / "samples.parquet").write_bytes(b"garbage")
    assert export_main([str(run), "--out", str(tmp_path / "k.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot be exported" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "k.jsonl").exists()


# -- ownership and temporaries ---------------------------------------------------------------------
def test_temporaries_are_removed_only_in_iwsi_folders(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / ".thing.1.tmp").write_text("x")
    RunDir(user).remove_temporaries()
    assert (user / ".thing.1.tmp").exists()
    run = make_run_dir(tmp_path / "run", num_questions=5)
    (run / ".samples.parquet.77.tmp").write_text("half")
    (run / ".my-own.tmp").write_text("not iwsi's name pattern")
    RunDir(run).remove_temporaries()
    assert not (run / ".samples.parquet.77.tmp").exists() and (run / ".my-own.tmp").exists()
    assert owner(run) == "run" and owner(user) is None


# -- artefact fingerprints -------------------------------------------------------------------------
def test_verify_names_the_damaged_file_and_the_first_stage_writing_it(tmp_path):
    run = RunDir(tmp_path)
    for stage, name in (("generate", "candidates.parquet"), ("vote", "samples.parquet"),
                        ("score", "samples.parquet"), ("filter", "samples.parquet")):
        pd.DataFrame({"a": [stage]}).to_parquet(tmp_path / name)
        if stage == "score":
            pd.DataFrame({"loss": [1.0]}).to_parquet(tmp_path / "valid.parquet")
        if stage == "filter":
            (tmp_path / "filter.json").write_text("{}")
        run.mark_done(stage, 1.0)
    assert run.verify() is None
    (tmp_path / "samples.parquet").write_bytes(b"PAR1")
    stage, name, why = run.verify()
    assert (stage, name) == ("vote", "samples.parquet") and "changed since stage filter wrote it" in why
    run.redo_from(stage, name)
    assert [s for s in ("generate", "vote", "score", "filter") if run.is_done(s)] == ["generate"]
    assert not (tmp_path / "samples.parquet").exists() and run.verify() is None
    run.marker("generate").write_text("{not json")
    assert run.verify()[0] == "generate"


def test_a_marker_claiming_a_stage_done_without_its_files_is_damage(tmp_path):
    run = RunDir(tmp_path)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "candidates.parquet")
    run.mark_done("generate", 1.0)
    run.marker("vote").write_text(json.dumps({"stage": "vote", "seconds": 1.0, "files": {}}))  # hand-made
    stage, name, why = run.verify()
    assert stage == "vote" and name is None and "does not record samples.parquet" in why
    run.redo_from(stage, name)
    assert run.verify() is None and run.is_done("generate") and not run.is_done("vote")
    run.marker("vote").write_text(json.dumps({"stage": "vote", "seconds": 1.0}))  # the format before fingerprints
    assert run.verify() is None  # such runs are not checked (docs/reliability.md)


def test_adopt_links_checked_files_and_records_the_stages(tmp_path):
    shared, cell = RunDir(tmp_path / "shared"), RunDir(tmp_path / "cell")
    shared.path.mkdir()
    for stage, name in (("generate", "candidates.parquet"), ("vote", "samples.parquet"), ("judge", "samples.parquet")):
        pd.DataFrame({"a": [stage]}).to_parquet(shared / name)
        shared.mark_done(stage, 2.0)
    with pytest.raises(RunDirError, match="has not finished stage score"):
        cell.adopt(shared, ("generate", "score"))
    cell.adopt(shared, ("generate", "vote", "judge"))
    assert (cell / "samples.parquet").stat().st_ino == (shared / "samples.parquet").stat().st_ino  # linked
    assert pd.read_parquet(cell / "samples.parquet")["a"].tolist() == ["judge"] and cell.verify() is None
    marker = cell.read_marker("vote")
    assert marker["adopted_from"] == str(shared.path) and marker["seconds"] == 2.0
    # the cell's own later write replaces its link, never the shared file; a second adopt keeps it
    write_parquet(cell / "samples.parquet", pd.DataFrame({"a": ["filter"]}))
    cell.adopt(shared, ("generate", "vote", "judge"))
    assert pd.read_parquet(cell / "samples.parquet")["a"].tolist() == ["filter"]
    assert pd.read_parquet(shared / "samples.parquet")["a"].tolist() == ["judge"]
    (shared / "candidates.parquet").write_bytes(b"PAR1")  # a damaged source is refused, not spread
    with pytest.raises(RunDirError, match="candidates.parquet changed"):
        RunDir(tmp_path / "cell2").adopt(shared, ("generate",))


# -- launch ---------------------------------------------------------------------------------------
def test_double_click_on_launch_starts_one_process(run, monkeypatch, tmp_path):
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: ["sleep", "30"])
    pid = runs.launch_run("twice", tmp_path / "demo.yaml", [])
    try:
        launch = (runs.run_path("twice") / "launch.json").read_text()
        with pytest.raises(runs.RunNameError, match="already running"):
            runs.launch_run("twice", tmp_path / "demo.yaml", [])
        assert (runs.run_path("twice") / "launch.json").read_text() == launch
        assert runs.run_state(runs.run_path("twice"))["state"] == "running"
    finally:
        runs.cancel_run("twice")
        for _ in range(50):
            if not runs.pid_alive(pid):
                break
            time.sleep(0.05)


def test_launch_into_a_user_folder_under_runs_is_refused(run, tmp_path):
    folder = runs.runs_dir() / "handmade"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="did not create"):
        runs.launch_run("handmade", tmp_path / "demo.yaml", [])
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


# -- small fixes ----------------------------------------------------------------------------------
def test_train_loss_covers_every_step_of_a_resumed_run():
    # log_history as restored from a checkpoint after 2 steps, then 2 more steps in the new process
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.0, "step": 2}, {"epoch": 1.0, "step": 2},
               {"loss": 0.5, "step": 3}, {"loss": 0.5, "step": 4}, {"train_runtime": 1.0}]
    assert whole_run_loss(history, fallback=0.5) == pytest.approx(1.0)
    assert whole_run_loss([], fallback=0.7) == 0.7


def test_entropy_of_unparseable_answers_does_not_depend_on_m():
    assert answer_entropy([None]) == answer_entropy([None, None]) == 1.0
    assert answer_entropy(["3"]) == answer_entropy(["3", "3"]) == 0.0


@pytest.mark.parametrize("raw, expected", [
    ("x = 40 so\nC)\nAnswer: C", "x = 40 so"),
    ("2 + 2 = 4\n(B)\nANSWER:B", "2 + 2 = 4"),
    ("3 * 3 = 9\nD", "3 * 3 = 9"),
    ("The answer to part 1 is 5\nAnswer: C", "The answer to part 1 is 5"),
    ("A train runs 40 km.\nAnswer: A", "A train runs 40 km."),
])
def test_aqua_rationale_drops_dangling_option_lines(raw, expected):
    assert clean_rationale(raw) == expected


def test_commonsenseqa_with_only_a_dev_file_falls_back_like_the_others(tmp_path):
    rows = [{"id": str(i), "answerKey": "ABCDE"[i % 5],
             "question": {"stem": f"Where {i}?", "choices": [{"label": c, "text": c.lower()} for c in "ABCDE"]}}
            for i in range(12)]
    write_jsonl(tmp_path / "dev_rand_split.jsonl", rows)
    s = load_splits("commonsenseqa", tmp_path, 4, 2, 3)
    pool_ids = {q.question for q in s.pool + s.valid}
    assert len(s.pool) == 4 and not pool_ids & {q.question for q in s.test}  # no test question in the pool
    assert [q.question.split("?")[0] for q in s.test] == ["Where 6", "Where 7", "Where 8"]
    assert any("no train file" in n for n in s.notes)


# -- label sources ------------------------------------------------------------------------------------
def test_only_what_a_person_sets_or_confirms_is_a_human_label(run):
    shown = pd.DataFrame({"sample_id": [0, 1, 2, 3], "suggested_label": ["redundant", "jumping", None, "spurious"]})
    edited = pd.DataFrame({"sample_id": [0, 1, 2, 3], "label": ["redundant", "spurious", "none", "spurious"],
                           "confirmed": [False, False, False, True]})
    out = runs.label_sources(edited, shown, "q00000")
    assert out["source"].tolist() == ["suggested", "human", "human", "human"]
    runs.save_labels(run, out)
    saved = runs.read_labels(run)
    assert saved.groupby("source").size().to_dict() == {"human": 3, "suggested": 1}


def test_labels_saved_before_sources_read_as_unknown(run):
    pd.DataFrame({"question_id": ["q"], "sample_id": [0], "label": ["none"], "updated": ["t"]}).to_parquet(
        run / "labels.parquet")
    assert runs.read_labels(run)["source"].tolist() == ["unknown"]

"""Kept-set export (SFT JSONL + manifest) and the run-directory helpers used by the dashboard."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks.fixtures import make_run_dir
from iwsi import runs
from iwsi.cli import main
from iwsi.export import export_kept, kept_frame
from iwsi.filtering import iwsi as iwsi_filter


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    return make_run_dir(tmp_path / "runs" / "r1", num_questions=40, num_samples=4, seed=2)


def test_kept_frame_matches_pipeline_filter(run):
    df = pd.read_parquet(run / "samples.parquet")
    for k in (10, 55, 80, 100):
        kept, sigma = kept_frame(df, k)
        ref, threshold = iwsi_filter(df, k)
        assert kept.index.equals(df.index[ref.to_numpy()]) and sigma == pytest.approx(threshold)


@pytest.mark.parametrize("method", ["lmsi", "entropy", "ground-truth", "loss", "ifd"])
def test_export_uses_the_runs_own_method(tmp_path, monkeypatch, method):
    """The kept set of a non-IWSI run is that method's set, not the IWSI cut."""
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    run = make_run_dir(tmp_path / "runs" / method, num_questions=40, num_samples=4, seed=5, method=method, k=80)
    df = pd.read_parquet(run / "samples.parquet")
    m = export_kept(run, 80, tmp_path / "kept.jsonl")
    assert m["method"] == method and m["num_kept"] == int(df["kept"].sum())
    assert export_kept(run, 80, tmp_path / "iwsi.jsonl", method="iwsi")["num_kept"] == int(iwsi_filter(df, 80)[0].sum())


def test_export_writes_trl_jsonl_and_manifest(run, tmp_path):
    out = tmp_path / "kept.jsonl"
    m = export_kept(run, 50, out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == m["num_kept"] > 0
    assert set(lines[0]) == {"prompt", "completion"}
    assert lines[0]["prompt"].startswith("Q: ") and lines[0]["prompt"].endswith("\nA:")
    assert lines[0]["completion"].startswith(" ")
    manifest = json.loads((tmp_path / "kept.jsonl.manifest.json").read_text())
    assert manifest["k"] == 50 and manifest["config"]["dataset"] == "gsm8k"
    assert manifest["num_kept"] <= manifest["num_majority"] <= manifest["num_candidates"]


def test_main_cli(run, tmp_path, capsys):
    assert main(["export", str(run), "--k", "80", "--out", str(tmp_path / "o.jsonl")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x.jsonl")]) == 2


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "x" * 81, "..", "bad name", "a\nb", "abc\n"])
def test_run_names_cannot_escape(run, name):
    with pytest.raises(runs.RunNameError):
        runs.run_path(name)


def test_run_path_and_listing(run):
    assert runs.run_path("r1") == run.resolve()
    assert runs.list_run_names() == ["r1"]
    row = runs.describe_run("r1")
    assert row["dataset"] == "gsm8k" and row["status"] == "done" and row["accuracy trained"] is not None
    assert set(runs.read_progress(run)) >= {"generate", "evaluate"}
    assert "evaluate" in runs.log_tail(run)


def test_dead_running_pid_reads_as_failed(run):
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": 2**22 + 12345, "stage": "score"}))
    assert runs.run_state(run)["state"] == "failed"


def test_launch_and_cancel(run, monkeypatch, tmp_path):
    # A stand-in for `python -m iwsi.cli run`: sleeps until SIGTERM.
    monkeypatch.setattr(runs, "launch_command", lambda c, o, s: ["sleep", "30"])
    pid = runs.launch_run("new", tmp_path / "demo.yaml", ["k=70"])
    assert runs.run_state(runs.run_path("new"))["state"] == "running"
    assert runs.cancel_run("new")
    import time
    for _ in range(50):
        if not runs.pid_alive(pid):
            break
        time.sleep(0.05)
    assert runs.run_state(runs.run_path("new"))["state"] == "cancelled"  # cancelled while it was starting
    with pytest.raises(ValueError):
        runs.launch_run("new2", tmp_path / "demo.yaml", ["k=70\n--help"])


def test_labels_round_trip(run):
    new = pd.DataFrame({"question_id": ["q00000", "q00001"], "sample_id": [0, 1], "label": ["redundant", "none"]})
    assert runs.save_labels(run, new) == 2
    again = pd.DataFrame({"question_id": ["q00000"], "sample_id": [0], "label": ["spurious"]})
    assert runs.save_labels(run, again) == 2
    labels = runs.read_labels(run).set_index(["question_id", "sample_id"])["label"]
    assert labels[("q00000", 0)] == "spurious" and labels[("q00001", 1)] == "none"
    with pytest.raises(ValueError):
        runs.save_labels(run, again.assign(label="nonsense"))
    assert not list(run.glob(".labels*"))  # no temp file left behind


def test_an_exported_line_tokenizes_to_the_training_example():
    """The export's prompt/completion is the pair the train stage learns: prompt + completion tokenized give
    train.encode_example's ids, and the completion's tokens are the labelled ones."""
    from iwsi.export import to_sft_jsonl
    from iwsi.models import load_tokenizer
    from iwsi.train import encode_example

    tok = load_tokenizer("embedded")
    kept = pd.DataFrame({"question": ["  Tom has 3 apples. How many? "], "rationale": [" 3 apples. The answer is 3. "]})
    line = json.loads(to_sft_jsonl(kept))
    example = encode_example(tok, kept["question"][0], kept["rationale"][0])
    prompt = tok(line["prompt"], add_special_tokens=False)["input_ids"]
    completion = tok(line["completion"], add_special_tokens=False)["input_ids"]
    assert prompt + completion == example["input_ids"]
    assert [t for t in example["labels"] if t != -100] == completion

"""Cancel signals only the run's own process, and a run whose process is gone shows as dead.

status.json and launch.json name a pid; after a kill (SIGKILL, a reboot) the file keeps it, and the pid
can be reused by any process. iwsi/runs.py checks that the pid is this run's (the holder of the run's
lock, or the process launched with launch.json's command) before it shows the run as running or signals it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.fixtures import make_run_dir
from iwsi import runs
from iwsi.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    return make_run_dir(tmp_path / "runs" / "r", num_questions=10, num_samples=2)


@pytest.fixture()
def stranger():
    """An unrelated live process (as a pid reused after the run was killed would be)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait(5)


def running(run: Path, pid) -> None:
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": pid, "stage": "score", "error": None}))


def test_a_status_naming_another_process_neither_runs_nor_is_killed(run, stranger):
    running(run, stranger.pid)
    (run / "lock").write_text(str(stranger.pid))  # the lock file a killed pipeline leaves, naming the same pid
    assert runs.run_state(run)["state"] == "failed"
    assert runs.describe_run("r")["status"] == "failed"
    assert runs.cancel_run("r") is False
    time.sleep(0.2)
    assert stranger.poll() is None  # still alive: never signalled


def test_a_launch_naming_another_process_neither_runs_nor_is_killed(run, stranger):
    (run / "status.json").unlink()
    command = [sys.executable, "-m", "iwsi.cli", "run", "--config", "configs/demo.yaml", "--out", str(run)]
    (run / "launch.json").write_text(json.dumps({"pid": stranger.pid, "command": command, "started": "now"}))
    assert runs.run_state(run)["state"] == "failed"
    assert runs.cancel_run("r") is False
    time.sleep(0.2)
    assert stranger.poll() is None


def test_a_dead_pid_shows_the_run_as_dead(run):
    gone = subprocess.Popen(["true"])
    gone.wait(5)
    running(run, gone.pid)
    state = runs.run_state(run)
    assert state["state"] == "failed" and "stopped unexpectedly" in state["error"]
    assert runs.cancel_run("r") is False


@pytest.mark.parametrize("pid", [0, -1, True, "123", 1.5, 2**40, None])
def test_a_pid_that_cannot_be_the_runs_is_dead(run, pid):
    """-1 would reach every process of the user and 0 the dashboard's own process group."""
    running(run, pid)
    assert runs.run_state(run)["state"] == "failed"
    assert runs._pid(pid) is None


def test_the_dashboard_shows_a_dead_run_as_dead(run):
    gone = subprocess.Popen(["true"])
    gone.wait(5)
    running(run, gone.pid)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert any("stopped unexpectedly" in e.value for e in at.error)
    assert not any(b.label == "Cancel run" for b in at.button) and any(b.label == "Resume" for b in at.button)


def test_cancel_stops_the_process_that_holds_the_runs_lock(run):
    """The positive case: a process that holds the run's lock and wrote its status is signalled."""
    script = textwrap.dedent(f"""
        import sys, time
        from iwsi.rundir import RunDir
        run = RunDir({str(run)!r})
        with run.lock():
            run.set_status("running", "score")
            print("ready", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert runs.run_state(run)["state"] == "running"
        assert runs.cancel_run("r") is True
        proc.wait(10)  # SIGTERM ended it
        assert runs.run_state(run)["state"] == "failed"  # and the lock it held was freed with it
    finally:
        proc.kill()
        proc.wait(5)


def test_a_run_whose_lock_this_process_holds_is_running(run):
    running(run, os.getpid())
    assert runs.run_state(run)["state"] == "failed"  # the pid is alive, but it does not hold the run's lock
    with RunDir(run).lock():
        assert runs.run_state(run)["state"] == "running"

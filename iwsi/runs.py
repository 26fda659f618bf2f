"""Run directories as the dashboard sees them: find, describe, launch and cancel runs (no torch).

Reads `cache/runs/<name>/{status.json, launch.json, config.yaml, metrics.json, progress.jsonl,
log.txt, stages/<stage>.json, eval_base.parquet, train_log.jsonl}` (see docs/run-directory.md) and the measured
demo `docs/results/bench-run.json`. Writes only `launch.json` (pid + command of a run started from the
dashboard, so it can be listed and cancelled before the pipeline writes status.json; and the pid the
dashboard cancelled), `labels.parquet` and `annotations.json` (tags, note, archived); deletes a whole run
folder only through `delete_run`.
The cache directory is `$IWSI_CACHE` or `<repo>/cache`, read at call time so tests can redirect it.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from iwsi import rundir
from iwsi.commands import DEMO_CONFIG
from iwsi.contract import (  # noqa: F401  (pages import them here)
    OWNER_FILE,
    PROBE_MANIFEST,
    REPO,
    RUN_FILE,
    STAGES,
    WRITTEN_BY,
    ablations_root,
    probes_root,
    runs_root,
)
from iwsi.rundir import RunDir, RunDirError, check_out_dir, claim_dir, process_alive, write_json, write_parquet
from iwsi.taxonomy import DEFECTS

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
SET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^\n\r]*$")
PRESETS = {"embedded demo": DEMO_CONFIG, "paper": REPO / "configs" / "paper.yaml"}


class RunNameError(ValueError):
    """A run name that is not a plain directory name inside cache/runs."""


runs_dir, ablations_dir = runs_root, ablations_root


def _folders(root: Path) -> list[Path]:
    """Plain-named real folders directly in `root`; links are not followed (one rule for runs, ablations
    and probes, the same as run_path's)."""
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and NAME_RE.fullmatch(p.name)]


def list_probes() -> list[Path]:
    """The probe directories whose tables are written (by `iwsi probe`), newest first."""
    found = [p for p in _folders(probes_root()) if (p / "scores.parquet").is_file() and (p / "auroc.parquet").is_file()]
    return sorted(found, key=lambda p: _stat_mtime(p / PROBE_MANIFEST), reverse=True)


def list_ablations() -> list[str]:
    """Names of the ablation folders that hold a results table (written by `iwsi ablate`), newest first."""
    found = [p for p in _folders(ablations_dir()) if (p / "results.parquet").exists()]
    return [p.name for p in sorted(found, key=lambda p: _stat_mtime(p / "results.parquet"), reverse=True)]


def check_run_name(name: str) -> None:
    """A run name is a plain folder name (the rule of every page and command that takes one)."""
    if not NAME_RE.fullmatch(name or "") or name in (".", ".."):
        raise RunNameError(f"run name {name!r} is not valid: use 1-80 letters, digits, '.', '_' or '-'")


def run_path(name: str) -> Path:
    """Validated path of run `name`: plain name, resolved inside cache/runs (no `..`, no links out)."""
    check_run_name(name)
    root = runs_dir().resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise RunNameError(f"run name {name!r} resolves outside {root}")
    return path


def list_run_names() -> list[str]:
    """Run directories, newest first (by mtime of their status/config files)."""
    return [p.name for p in sorted(_folders(runs_dir()), key=_mtime, reverse=True)]


def _mtime(path: Path) -> float:
    stamps = [_stat_mtime(path / f) for f in (RUN_FILE.status, RUN_FILE.launch, RUN_FILE.config)]
    return max(max(stamps), _stat_mtime(path))


def read_json(path: Path, default=None):
    """A JSON object from the run directory; missing, unreadable or not an object → default."""
    data = rundir.read_json(path, default, quiet=True)
    return data if isinstance(data, dict) else default


def finite(value) -> float | None:
    """A number read from a run's file (metrics.json, status, progress) when it is one: finite, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def read_config(run: Path) -> dict:
    try:
        data = yaml.safe_load((run / RUN_FILE.config).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _stat_mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def pid_alive(pid: int | None) -> bool:
    pid = _pid(pid)
    if pid is None:
        return False
    try:
        # Reap our own finished child first: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    return process_alive(pid)


def _pid(value) -> int | None:
    """A pid read from a file, if it can be one: 0 and -1 would signal our process group or every process."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 < value < 2**31 else None


def _cmdline(pid: int) -> str | None:
    """The process's command line, its arguments joined by spaces (/proc, else ps); None if unknown."""
    if Path("/proc/self").is_dir():
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    try:  # macOS and the BSDs have no /proc
        out = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _holds_lock(run: Path, pid: int) -> bool:
    """`pid` holds the run's lock (iwsi/rundir.py: RunDir.lock): the lock file names it and the lock is held.
    The OS frees the lock when its holder dies, so a pid left behind by a killed run (and perhaps reused by
    another process since) never passes."""
    path = run / RUN_FILE.lock
    try:
        if int(path.read_text().strip()) != pid:
            return False
    except (OSError, ValueError):  # no lock file: no live pipeline in this run
        return False
    fds = Path(f"/proc/{pid}/fd")
    if fds.is_dir():  # Linux: read-only, exact: the process has this very file open (filelock holds it open)
        try:
            lock = path.stat()
            return any(_same_file(fd, lock) for fd in fds.iterdir())
        except PermissionError:  # another user's process: ask the lock itself
            return _lock_taken(path)
        except OSError:
            return False
    return _lock_taken(path)


def _same_file(fd: Path, target: os.stat_result) -> bool:
    try:
        found = fd.stat()
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino)


def _lock_taken(path: Path) -> bool:
    """Without /proc: someone holds the flock on `path` (a non-blocking shared lock is refused)."""
    try:
        import fcntl
    except ImportError:  # Windows: the lock file naming a live pid is all there is to go on
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock the probe may have taken
    return False


def _is_run_process(run: Path, status: dict, launch: dict) -> bool:
    """The pid the run names is alive and is this run's process, not a pid reused by another process: the
    process started from the dashboard (its command line is launch.json's command) before the pipeline
    takes the run's lock, and the lock's holder after."""
    pid = _pid(status.get("pid"))
    if pid is None or not pid_alive(pid):
        return False
    if status.get("stage") == STARTING and pid == launch.get("pid"):
        command = launch.get("command")
        return isinstance(command, list) and _cmdline(pid) == " ".join(map(str, command))
    return _holds_lock(run, pid)


STARTING = "starting"  # the stage shown between a launch and the pipeline's first status


def run_state(run: Path) -> dict:
    """status.json (or launch.json before the pipeline starts), with `state` corrected: a run that says it
    is running, but whose process is gone or is not this run's (its pid reused after a kill), failed; or was
    cancelled, when it is the process the dashboard cancelled (`cancel_run`: a SIGTERM before the pipeline
    has begun a stage ends the process before it can write a status of its own)."""
    status = read_json(run / RUN_FILE.status) or {}
    launch = read_json(run / RUN_FILE.launch) or {}
    newer_launch = launch and _stat_mtime(run / RUN_FILE.launch) > _stat_mtime(run / RUN_FILE.status)
    started = {"state": "running", "pid": launch.get("pid"), "stage": STARTING, "error": None,
               "started": launch.get("started"), "updated": launch.get("started")}
    cancelled = _cancelled_pid(launch)
    launch_cancelled = cancelled is not None and cancelled == _pid(launch.get("pid"))
    if launch and (not status or (newer_launch and (launch_cancelled or _is_run_process(run, started, launch)))):
        status = started
    if not status:
        return {"state": "unknown", "pid": None, "stage": None, "error": None}
    if status.get("state") == "running" and not _is_run_process(run, status, launch):
        if cancelled is not None and cancelled == _pid(status.get("pid")):
            early = status.get("stage") == STARTING
            status = {**status, "state": "cancelled", "error": "cancelled from the dashboard" + (
                " while it was starting, before the pipeline began a stage" if early else "")}
        else:
            status = {**status, "state": "failed", "error": status.get("error") or
                      f"stopped unexpectedly: its process (pid {status.get('pid')}) is gone or is no longer this "
                      "run's, and left no final status (killed?); resume it to go on from its last finished stage"}
    return status


def _cancelled_pid(launch: dict) -> int | None:
    """The pid `cancel_run` signalled, as recorded in launch.json."""
    record = launch.get("cancelled")
    return _pid(record.get("pid")) if isinstance(record, dict) else None


def describe_run(name: str) -> dict:
    """One row of the Runs table; a value of the wrong type in a run's file shows as text, or empty."""
    run = runs_dir() / name
    cfg, metrics, status = read_config(run), read_json(run / RUN_FILE.metrics) or {}, run_state(run)
    acc = metrics.get("accuracy") if isinstance(metrics.get("accuracy"), dict) else {}
    k = finite(metrics.get("k"))
    notes = read_annotations(run)
    return {"run": name, "dataset": _text(cfg.get("dataset")), "model": _text(cfg.get("model")),
            "method": _text(metrics.get("method", cfg.get("method"))), "k": finite(cfg.get("k")) if k is None else k,
            "status": _text(status.get("state")), "stage": _text(status.get("stage")),
            "accuracy base": base_accuracy(run, metrics), "accuracy trained": finite(acc.get("trained")),
            "tags": list(notes.tags), "note": notes.note, "archived": notes.archived,
            "updated": _text(status.get("updated"))}


def base_accuracy(run: Path, metrics: dict | None = None) -> float | None:
    """The base model's test accuracy as soon as `evaluate-base` has written eval_base.parquet: metrics.json
    holds accuracies only once `evaluate` has written eval.parquet (pipeline.build_metrics), hours later on CPU."""
    metrics = (read_json(run / RUN_FILE.metrics) or {}) if metrics is None else metrics
    acc = metrics.get("accuracy")
    found = finite(acc.get("base")) if isinstance(acc, dict) else None
    if found is not None:
        return found
    import pandas as pd

    from iwsi.evaluate import accuracy  # the one definition (no torch in that module)

    try:
        ev = pd.read_parquet(run / RUN_FILE.eval_base, columns=["model", "is_correct"])
    except (OSError, ValueError, KeyError):  # not written yet, damaged, or without these columns
        return None
    return finite(accuracy(ev[ev["model"] == "base"]))


def _text(value) -> str | None:
    return None if value is None else str(value)


def progress_history(run: Path) -> dict[str, list[dict]]:
    """progress.jsonl's records per progress bar since that bar last (re)started (a bar starts at done = 0,
    elapsed = 0: a resumed or redone stage starts a new one), bars in the order they first appeared; `stage` a
    string and `done`, `total`, `elapsed` non-negative numbers (0 where a damaged line holds something else)."""
    bars: dict[str, list[dict]] = {}
    for rec in rundir.read_records(run / RUN_FILE.progress):
        done, total, elapsed = (max(finite(rec.get(key)) or 0.0, 0.0) for key in ("done", "total", "elapsed"))
        stage = str(rec.get("stage", "?"))
        rec = {**rec, "stage": stage, "done": int(done), "total": int(total), "elapsed": elapsed}
        if rec["done"] == 0 and elapsed == 0:
            bars[stage] = []
        bars.setdefault(stage, []).append(rec)
    return bars


TRAIN_LOG_COLUMNS = ["step", "loss", "learning_rate", "epoch", "time"]


def read_train_log(run: Path):
    """train_log.jsonl (the train stage's logged steps) as a DataFrame of TRAIN_LOG_COLUMNS, one row per step in
    step order: a step logged twice keeps its last line (a resume trains the steps after its checkpoint again),
    a torn or damaged line is skipped, a missing value is NaN. Empty before training has logged a step."""
    import pandas as pd

    rows = {}
    for rec in rundir.read_records(run / RUN_FILE.train_log):
        step, loss = rundir.record_step(rec), finite(rec.get("loss"))
        if step is None or loss is None:
            continue
        rows[step] = {"step": step, "loss": loss, "learning_rate": finite(rec.get("learning_rate")),
                      "epoch": finite(rec.get("epoch")), "time": _text(rec.get("time"))}
    df = pd.DataFrame([rows[s] for s in sorted(rows)], columns=TRAIN_LOG_COLUMNS)
    return df.astype({"step": int, "loss": float, "learning_rate": float, "epoch": float})


def read_progress(run: Path) -> dict[str, dict]:
    """Last progress record per bar, in the order bars first appeared (see progress_history)."""
    return {stage: records[-1] for stage, records in progress_history(run).items()}


def bar_stage(bar: str) -> str | None:
    """The pipeline stage a progress bar belongs to: its own name, or a stage's part (score-valid → score,
    judge-<judge> → judge, evaluate-trained → evaluate)."""
    if bar in STAGES:
        return bar
    return max((s for s in STAGES if bar.startswith(s + "-")), key=len, default=None)


def epoch(stamp) -> float | None:
    """An ISO time from a run's file (status, launch, progress) as seconds since the epoch; None if it is not one."""
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))  # Python 3.10 reads no "Z"
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError, OSError):  # not a time, or one beyond what the platform can count
        return None


def stage_eta(records: list[dict], now: float | None = None) -> float | None:
    """Seconds left in one progress bar (its records since it started, progress_history), an estimate: the items
    left at the pace since its first finished item(s), not from its start (the model's loading and the first
    batch's latency are no item's pace, and made the estimate jump), counted down from the last record's time to
    `now`. None before any item has finished or once all have."""
    if not records:
        return None
    last = records[-1]
    done, total = last["done"], last["total"]
    if not 0 < done < total:
        return None
    first = next(r for r in records if r["done"] > 0)
    if done > first["done"] and last["elapsed"] > first["elapsed"]:
        rate = (done - first["done"]) / (last["elapsed"] - first["elapsed"])
    elif last["elapsed"] > 0:
        rate = done / last["elapsed"]  # one batch finished so far: its average is all there is
    else:
        return None
    since = 0.0 if now is None else max(now - (epoch(last.get("time")) or now), 0.0)
    return max((total - done) / rate - since, 0.0)


def stage_seconds(run: Path) -> dict[str, float | None]:
    """The finished stages, in run order, and the seconds each took: a stage is done when its marker
    stages/<stage>.json exists (rundir.RunDir.is_done); None where the marker holds no number."""
    done = {}
    for stage in STAGES:
        path = run / RUN_FILE.stages / f"{stage}.json"
        if path.exists():
            done[stage] = finite((read_json(path) or {}).get("seconds"))
    return done


BENCH_RUN = REPO / "docs" / "results" / "bench-run.json"  # `iwsi bench run --json` of the embedded demo


def read_bench_run() -> dict | None:
    """The embedded demo as measured end to end on a known CPU (docs/results/bench-run.json, written by
    `iwsi bench run --json`), or None when the file is absent, unreadable, holds no total time or records a demo
    that failed (its time is not the demo's)."""
    data = read_json(BENCH_RUN)
    if data is None or finite(data.get("total_s")) is None or data.get("exit_code", 0) != 0:
        return None
    return data


def bench_stage_seconds(bench: dict | None) -> dict[str, float]:
    """The measured demo's seconds per stage (those it recorded as a non-negative number)."""
    stages = (bench or {}).get("stages")
    found = {s: finite(v.get("seconds")) for s, v in stages.items() if isinstance(v, dict)} \
        if isinstance(stages, dict) else {}
    return {s: sec for s, sec in found.items() if sec is not None and sec >= 0}


def speed_scale(done: dict[str, float | None], bench: dict[str, float]) -> float | None:
    """This run's pace against the measured demo's: its finished stages' seconds over the demo's for the same
    stages (one ratio for the run: a larger run or a slower CPU takes longer in each stage); None with no
    finished stage the demo timed."""
    shared = [s for s, sec in done.items() if sec is not None and bench.get(s, 0) > 0]
    if not shared:
        return None
    return sum(done[s] for s in shared) / sum(bench[s] for s in shared)


def estimate_left(done: dict[str, float | None], bench: dict[str, float], todo: list[str],
                  elapsed: float = 0.0) -> float | None:
    """Seconds the stages `todo` should still take, an estimate: the demo's time for each scaled by this run's
    pace (speed_scale), less the `elapsed` seconds the first of them (the running one) has run already. None
    with nothing to scale by, or a stage the demo did not time."""
    scale = speed_scale(done, bench)
    if scale is None or any(s not in bench for s in todo):
        return None
    left = [scale * bench[s] for s in todo]
    if left:
        left[0] = max(left[0] - elapsed, 0.0)
    return sum(left)


def duration(seconds: float) -> str:
    """A measured time: 4.2 s, 3 min 05 s, 1 h 02 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min {int(seconds % 60):02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def rough_duration(seconds: float) -> str:
    """An estimated time, no finer than it can be known: under a minute, 7 min, 1.5 h."""
    if seconds < 60:
        return "under a minute"
    return f"{math.ceil(seconds / 60)} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def log_tail(run: Path, lines: int = 40) -> str:
    """Last lines of log.txt; progress bars redrawn with '\r' keep only their last state."""
    try:
        with open(run / RUN_FILE.log, errors="replace", newline="\n") as fh:
            tail = deque(fh, maxlen=lines)
    except OSError:
        return ""
    return "".join(line.rstrip("\r\n").split("\r")[-1] + "\n" for line in tail)


def launch_command(config: Path, out: Path, sets: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "iwsi.cli", "run", "--config", str(config), "--out", str(out)]
    for pair in sets:
        cmd += ["--set", pair]
    return cmd


def check_launch(name: str, config: Path, sets: list[str]) -> list[str]:
    """Every problem with a launch form (name, each override, the resulting config, the data), before
    anything is written; [] when it can start. The model is checked by the run itself (no torch here)."""
    from iwsi.config import ConfigError, _read_yaml, check_value, load_config, parse_sets
    from iwsi.datasets import DatasetError, load_splits

    problems = []
    try:
        out = run_path(name)
        if out.exists() and run_state(out)["state"] == "running":
            problems.append(f"run {name!r} is already running")
        else:
            rundir.check_out_dir(out, "run")
    except (RunNameError, rundir.RunDirError) as err:
        problems.append(str(err))
    bad = [s for s in sets if not SET_RE.fullmatch(s)]
    problems += [f"override {b!r} is not KEY=VALUE (e.g. k=80)" for b in bad]
    try:
        overrides = parse_sets([s for s in sets if s not in bad])
        # the file's keys too (a resumed run's config.yaml may be hand-edited): every bad key at once, where
        # load_config stops at the first
        values = {**_read_yaml(config), **overrides}
    except ConfigError as err:
        return problems + [str(err)]
    for key, value in values.items():
        try:
            check_value(key, value)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        return problems
    try:
        cfg = load_config(config, overrides)
        load_splits(cfg.dataset, cfg.data_dir, cfg.num_questions, cfg.valid_size, cfg.test_size, cfg.seed,
                    cfg.fields or None)
    except (ConfigError, DatasetError) as err:
        problems.append(str(err))
    return problems


def launch_run(name: str, config: Path, sets: list[str]) -> int:
    """Start `iwsi run` detached (own session), stdout/stderr appended to RUN_DIR/log.txt → pid."""
    out = run_path(name)
    bad = [s for s in sets if not SET_RE.fullmatch(s)]
    if bad:
        raise ValueError(f"override {bad[0]!r} is not KEY=VALUE (e.g. k=80)")
    if out.exists() and run_state(out)["state"] == "running":  # also a launch still starting (double click)
        raise RunNameError(f"run {name!r} is already running")
    check_out_dir(out, "run")
    claim_dir(out, "run")
    cmd = launch_command(config, out, sets)
    with open(out / RUN_FILE.log, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / RUN_FILE.launch, {"pid": proc.pid, "command": cmd, "started": started})
    return proc.pid


def cancel_run(name: str) -> bool:
    """SIGTERM the run's own process; False when none is running. The pid is checked to be this run's
    (run_state) after it is pinned with a pidfd (Linux), so a pid that dies and is reused between the
    check and the signal is never hit."""
    run = run_path(name)
    state = run_state(run)
    pid = _pid(state.get("pid")) if state.get("state") == "running" else None
    if pid is None:
        return False
    try:
        pinned = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # no pidfd (macOS, an old kernel): check, then signal
        pinned = None
    try:
        state = run_state(run)
        if state.get("state") != "running" or state.get("pid") != pid:
            return False
        if pinned is None:
            os.kill(pid, signal.SIGTERM)
        else:
            signal.pidfd_send_signal(pinned, signal.SIGTERM)
    except ProcessLookupError:
        return False
    finally:
        if pinned is not None:
            os.close(pinned)
    _record_cancel(run, pid)
    return True


def _record_cancel(run: Path, pid: int) -> None:
    """Note in launch.json that the dashboard cancelled `pid`, the process it launched: a SIGTERM before the
    pipeline has begun a stage (imports, data and model checks) ends the process without a status of its own,
    which run_state would otherwise report as failed. launch.json keeps its time (run_state dates the launch
    by it)."""
    path = run / RUN_FILE.launch
    launch = read_json(path)
    if launch is None or _pid(launch.get("pid")) != pid:  # started elsewhere (a terminal): the pipeline says so
        return
    try:
        stamp = path.stat()
        write_json(path, {**launch, "cancelled": {"pid": pid, "at": datetime.now(timezone.utc).isoformat(
            timespec="seconds")}})
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    except OSError:  # the run keeps going to its end as failed rather than cancelled: nothing worse
        pass


LABELS = (*DEFECTS, "none")
# Who set a label: a person (set or confirmed on the Rationales page) or a heuristic suggestion left as
# it was; labels saved before sources were recorded are "unknown".
SOURCES = ("human", "suggested", "unknown")
LABEL_COLUMNS = ["question_id", "sample_id", "label", "source", "updated"]


def read_labels(run: Path):
    """labels.parquet (question_id, sample_id, label, source, updated) or an empty frame."""
    import pandas as pd

    try:
        df = pd.read_parquet(run / RUN_FILE.labels)
    except (OSError, ValueError):
        return pd.DataFrame(columns=LABEL_COLUMNS)
    if "source" not in df:
        df["source"] = "unknown"
    return df.reindex(columns=LABEL_COLUMNS)  # an older or hand-made file may lack `updated`


def save_labels(run: Path, new) -> int:
    """Merge `new` (question_id, sample_id, label[, source]) into labels.parquet (atomic).

    A label of None removes that sample's label; `source` defaults to human. Returns the number of
    labelled samples."""
    import pandas as pd

    old = read_labels(run)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    new = new.assign(source=new["source"] if "source" in new else "human")
    new = new[["question_id", "sample_id", "label", "source"]].assign(updated=stamp)
    keys = set(zip(new["question_id"], new["sample_id"]))
    keep = [(q, s) not in keys for q, s in zip(old["question_id"], old["sample_id"])]
    merged = pd.concat([old[keep], new[new["label"].notna()]], ignore_index=True)
    bad = set(merged["label"]) - set(LABELS)
    if bad:
        raise ValueError(f"unknown label(s) {sorted(bad)}: use one of {', '.join(LABELS)}")
    bad = set(merged["source"]) - set(SOURCES)
    if bad:
        raise ValueError(f"unknown label source(s) {sorted(bad)}: use one of {', '.join(SOURCES)}")
    write_parquet(run / RUN_FILE.labels, merged[LABEL_COLUMNS])
    return len(merged)


def label_sources(edited, shown_rows, qid: str):
    """The Rationales page's editor rows (sample_id, label, confirmed) → question_id, sample_id, label,
    source: what a person set or confirmed is human; a suggestion left untouched stays suggested."""
    suggested = shown_rows.set_index("sample_id")["suggested_label"]
    out = edited[["sample_id", "label", "confirmed"]].assign(question_id=qid)
    untouched = out["label"].eq(out["sample_id"].map(suggested)) & ~out["confirmed"].fillna(False).astype(bool)
    return out.assign(source=untouched.map({True: "suggested", False: "human"}))[
        ["question_id", "sample_id", "label", "source"]]


# -- a labelling queue across questions, and the label export (the Label queue page) -----------------------
# Each queue: (description, column it ranks by, highest first, D_c only).
QUEUES = {"highest w_DS in D_c": ("ds_weight", False, True), "lowest w_DS in D_c": ("ds_weight", True, True),
          "highest loss in D_c": ("loss", False, True), "every sample, highest w_DS first": ("ds_weight", False, False)}
EXPORT_COLUMNS = [*LABEL_COLUMNS, "question", "rationale", "answer", "gold", "is_correct", "is_majority",
                  "ds_weight", "loss"]


def label_queue(samples, labels, queue: str, size: int, skip_labelled: bool = True):
    """The (question_id, sample_id) rows to label next, across questions: the `size` first samples of the
    ranking `queue` (QUEUES), without those a person already labelled when `skip_labelled` (a suggestion left
    as it is does not count as labelled). Ties keep the samples' order; missing values rank last."""
    if queue not in QUEUES:
        raise ValueError(f"queue {queue!r} is not known: choose one of {', '.join(QUEUES)}")
    column, ascending, majority_only = QUEUES[queue]
    pool = samples[samples["is_majority"].astype(bool)] if majority_only else samples
    if skip_labelled:
        human = labels[labels["source"].eq("human")]
        done = set(zip(human["question_id"], human["sample_id"]))
        pool = pool[[key not in done for key in zip(pool["question_id"], pool["sample_id"])]]
    ranked = pool.sort_values(column, ascending=ascending, kind="stable", na_position="last")
    return ranked[["question_id", "sample_id"]].head(max(int(size), 0)).reset_index(drop=True)


def labels_export(samples, labels):
    """Every saved label with its source (human / suggested / unknown) and the sample it labels: what a
    labelling export (CSV or JSONL) holds, one row per labelled sample."""
    keys = ["question_id", "sample_id"]
    extra = [c for c in EXPORT_COLUMNS if c not in LABEL_COLUMNS and c in samples]
    return labels.merge(samples[keys + extra], on=keys, how="left").reindex(columns=EXPORT_COLUMNS)


# -- tags, note, archive and deletion (the Runs page) -------------------------------------------------------
TAG_RE = re.compile(r"[\w.+-]{1,40}")  # \w: letters and digits of any script, and _
NOTE_MAX = 2000  # characters: a note, not a document


@dataclass(frozen=True)
class Annotations:
    """What a person noted about a run on the Runs page (annotations.json). It lives outside config.yaml and the
    stage markers, so it changes neither the run's hash nor its fingerprints."""
    tags: tuple[str, ...] = ()
    note: str = ""
    archived: bool = False  # hidden from the Runs table unless it shows archived runs


def read_annotations(run: Path) -> Annotations:
    """annotations.json; a missing or damaged file, or a value of the wrong type, reads as its default."""
    data = read_json(run / RUN_FILE.annotations) or {}
    tags = data.get("tags") if isinstance(data.get("tags"), list) else []
    note = data.get("note")
    return Annotations(tags=tuple(t for t in tags if isinstance(t, str) and TAG_RE.fullmatch(t)),
                       note=note if isinstance(note, str) else "", archived=data.get("archived") is True)


def parse_tags(text: str) -> tuple[str, ...]:
    """Comma-separated tags → the tags, each once in the order given; a tag that is not a short plain word is
    refused with one line naming it."""
    tags = [t.strip() for t in str(text).split(",") if t.strip()]
    bad = next((t for t in tags if not TAG_RE.fullmatch(t)), None)
    if bad is not None:
        shown = bad if len(bad) <= 40 else bad[:40] + "…"
        raise ValueError(f"tag {shown!r} is not valid: use up to 40 letters, digits, '.', '_', '+' or '-' per tag, "
                         "tags separated by commas")
    return tuple(dict.fromkeys(tags))


def save_annotations(run: Path, notes: Annotations) -> None:
    """Write annotations.json (atomic). The folder keeps its time: a note does not move the run up the
    newest-first list."""
    if len(notes.note) > NOTE_MAX:
        raise ValueError(f"the note is {len(notes.note):,} characters: keep it under {NOTE_MAX:,}")
    if rundir.owner(run) != "run":  # iwsi writes only into folders it created
        raise RunNameError(f"{run} is not an iwsi run folder: the dashboard writes nothing there")
    before = run.stat()
    write_json(run / RUN_FILE.annotations, {**asdict(notes), "tags": list(notes.tags),
                                   "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    try:
        os.utime(run, ns=(before.st_atime_ns, before.st_mtime_ns))
    except OSError:  # the run merely moves up the list
        pass


def filter_runs(rows: list[dict], tags: list[str], show_archived: bool) -> list[dict]:
    """The Runs table's rows (describe_run) to show: archived ones only with `show_archived`, and with `tags`,
    those carrying any of them."""
    return [row for row in rows if (show_archived or not row["archived"])
            and (not tags or set(tags) & set(row["tags"]))]


def delete_run(name: str, confirm: str) -> Path:
    """Delete the run folder cache/runs/NAME and everything in it; returns the path it deleted.

    Refused, with one line saying why, unless `confirm` repeats the name, the entry is a real folder (not a
    link) directly inside the runs root, iwsi created it (its owner file says kind run), and no process runs in it:
    its state is not running and its lock is free (taken for the deletion, so no run can start in it meanwhile).
    Links inside the folder are removed, never followed (shutil.rmtree)."""
    if confirm != name:
        raise RunNameError(f"type the run's name ({name!r}) to confirm its deletion")
    check_run_name(name)
    root = runs_dir().resolve()
    path = root / name
    if path.is_symlink() or not path.is_dir():
        what = "a link" if path.is_symlink() else "not a folder" if os.path.lexists(path) else "not there"
        raise RunNameError(f"{path} is {what}: only a run folder inside {root} is deleted")
    if path.resolve().parent != root:
        raise RunNameError(f"{path} resolves outside {root}: not deleted")
    if rundir.owner(path) != "run" or not _regular(path / OWNER_FILE):
        raise RunNameError(f"{path} has no {OWNER_FILE} of a run: iwsi did not create it, so it is not deleted "
                           "(remove it by hand if you mean to)")
    lock = path / RUN_FILE.lock
    if not _regular(lock) and os.path.lexists(lock):
        raise RunNameError(f"{lock} is not a regular file: not deleted (remove it by hand if you mean to)")
    if run_state(path).get("state") == "running":
        raise RunNameError(f"run {name!r} is running: cancel it first")
    try:
        with RunDir(path).lock():
            shutil.rmtree(path)
    except RunDirError as err:  # a run started from a terminal holds it
        raise RunNameError(f"run {name!r} is in use, not deleted: {err}") from None
    return path


def _regular(path: Path) -> bool:
    """A regular file, not a link to one (lstat)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False

"""Run directories as the dashboard sees them: find, describe, launch and cancel runs (no torch).

Reads `cache/runs/<name>/{status.json, launch.json, config.yaml, metrics.json, progress.jsonl,
log.txt}` (see docs/run-directory.md). Writes only `launch.json` (pid + command of a run started
from the dashboard, so it can be listed and cancelled before the pipeline writes status.json).
The cache directory is `$IWSI_CACHE` or `<repo>/cache`, read at call time so tests can redirect it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import yaml

from iwsi import rundir
from iwsi.contract import REPO, WRITTEN_BY, ablations_root, runs_root  # noqa: F401  (pages import them from here)
from iwsi.rundir import check_out_dir, claim_dir, process_alive, write_json, write_parquet

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
SET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^\n\r]*$")
PRESETS = {"embedded demo": REPO / "configs" / "demo.yaml", "paper": REPO / "configs" / "paper.yaml"}


class RunNameError(ValueError):
    """A run name that is not a plain directory name inside cache/runs."""


runs_dir, ablations_dir = runs_root, ablations_root


def _folders(root: Path) -> list[Path]:
    """Plain-named real folders directly in `root`; links are not followed (one rule for runs and
    ablations, the same as run_path's)."""
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and NAME_RE.fullmatch(p.name)]


def list_ablations() -> list[str]:
    """Names of the ablation folders that hold a results table (written by `iwsi ablate`), newest first."""
    found = [p for p in _folders(ablations_dir()) if (p / "results.parquet").exists()]
    return [p.name for p in sorted(found, key=lambda p: _stat_mtime(p / "results.parquet"), reverse=True)]


def run_path(name: str) -> Path:
    """Validated path of run `name`: plain name, resolved inside cache/runs (no `..`, no links out)."""
    if not NAME_RE.fullmatch(name or "") or name in (".", ".."):
        raise RunNameError(f"run name {name!r} is not valid: use 1-80 letters, digits, '.', '_' or '-'")
    root = runs_dir().resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise RunNameError(f"run name {name!r} resolves outside {root}")
    return path


def list_run_names() -> list[str]:
    """Run directories, newest first (by mtime of their status/config files)."""
    return [p.name for p in sorted(_folders(runs_dir()), key=_mtime, reverse=True)]


def _mtime(path: Path) -> float:
    stamps = [_stat_mtime(path / f) for f in ("status.json", "launch.json", "config.yaml")]
    return max(max(stamps), _stat_mtime(path))


def read_json(path: Path, default=None):
    """A JSON object from the run directory; missing, unreadable or not an object → default."""
    data = rundir.read_json(path, default, quiet=True)
    return data if isinstance(data, dict) else default


def read_config(run: Path) -> dict:
    try:
        data = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _stat_mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # Reap our own finished child first: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    return process_alive(pid)


def run_state(run: Path) -> dict:
    """status.json (or launch.json before the pipeline starts), with `state` corrected for dead pids."""
    status = read_json(run / "status.json") or {}
    launch = read_json(run / "launch.json") or {}
    newer_launch = launch and (run / "launch.json").stat().st_mtime > _stat_mtime(run / "status.json")
    if launch and (not status or (newer_launch and pid_alive(launch.get("pid")))):
        status = {"state": "running", "pid": launch.get("pid"), "stage": "starting", "error": None,
                  "started": launch.get("started"), "updated": launch.get("started")}
    if not status:
        return {"state": "unknown", "pid": None, "stage": None, "error": None}
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status = {**status, "state": "failed", "error": status.get("error") or "process exited without a final status"}
    return status


def describe_run(name: str) -> dict:
    """One row of the Runs table."""
    run = runs_dir() / name
    cfg, metrics, status = read_config(run), read_json(run / "metrics.json") or {}, run_state(run)
    acc = metrics.get("accuracy") or {}
    return {"run": name, "dataset": cfg.get("dataset"), "model": cfg.get("model"),
            "method": metrics.get("method", cfg.get("method")), "k": metrics.get("k", cfg.get("k")),
            "status": status.get("state"), "stage": status.get("stage"),
            "accuracy base": acc.get("base"), "accuracy trained": acc.get("trained"),
            "updated": status.get("updated")}


def read_progress(run: Path) -> dict[str, dict]:
    """Last progress record per stage, in the order stages first appeared."""
    last: dict[str, dict] = {}
    try:
        lines = (run / "progress.jsonl").read_text().splitlines()
    except OSError:
        return last
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line being appended right now
        last[rec.get("stage", "?")] = rec
    return last


def log_tail(run: Path, lines: int = 40) -> str:
    """Last lines of log.txt; progress bars redrawn with '\r' keep only their last state."""
    try:
        with open(run / "log.txt", errors="replace", newline="\n") as fh:
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
    from iwsi.config import ConfigError, check_value, load_config, parse_sets
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
    except ConfigError as err:
        return problems + [str(err)]
    for key, value in overrides.items():
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
    with open(out / "log.txt", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / "launch.json", {"pid": proc.pid, "command": cmd, "started": started})
    return proc.pid


def cancel_run(name: str) -> bool:
    """SIGTERM the run's process (pid from status.json, else launch.json); False if not running."""
    state = run_state(run_path(name))
    if state.get("state") != "running" or not state.get("pid"):
        return False
    try:
        os.kill(int(state["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


LABELS = ("redundant", "jumping", "spurious", "none")
# Who set a label: a person (set or confirmed on the Rationales page) or a heuristic suggestion left as
# it was; labels saved before sources were recorded are "unknown".
SOURCES = ("human", "suggested", "unknown")
LABEL_COLUMNS = ["question_id", "sample_id", "label", "source", "updated"]


def read_labels(run: Path):
    """labels.parquet (question_id, sample_id, label, source, updated) or an empty frame."""
    import pandas as pd

    try:
        df = pd.read_parquet(run / "labels.parquet")
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
    write_parquet(run / "labels.parquet", merged[LABEL_COLUMNS])
    return len(merged)


def label_sources(edited, shown_rows, qid: str):
    """The Rationales page's editor rows (sample_id, label, confirmed) → question_id, sample_id, label,
    source: what a person set or confirmed is human; a suggestion left untouched stays suggested."""
    suggested = shown_rows.set_index("sample_id")["suggested_label"]
    out = edited[["sample_id", "label", "confirmed"]].assign(question_id=qid)
    untouched = out["label"].eq(out["sample_id"].map(suggested)) & ~out["confirmed"].fillna(False).astype(bool)
    return out.assign(source=untouched.map({True: "suggested", False: "human"}))[
        ["question_id", "sample_id", "label", "source"]]

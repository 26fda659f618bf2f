"""The run directory: paths, atomic writes, the lock, status, progress and stage markers.

Layout and column names are documented in docs/run-directory.md. Every file is written to a
temporary name and renamed, so a reader (the dashboard, a resumed run) sees it complete or not at all.
A stage is done when `stages/<stage>.json` exists (written last, holding its wall time and its files'
fingerprints), whether it ran here or was adopted from another run directory (`RunDir.adopt`).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from iwsi.contract import (  # noqa: F401
    FILES,
    KINDS,
    OWNER_FILE,
    PROBE_MANIFEST,
    RUN_FILE,
    SCHEMA_VERSION,
    STAGE_ARTEFACTS,
    STAGE_OUTPUTS,
    STAGE_REQUIRED,
    STAGES,
    runs_root,
    with_dependents,
)


class RunDirError(RuntimeError):
    """The run directory cannot be used (locked by a live process, config changed)."""


class StageFailed(RuntimeError):
    """A stage stopped mid-run (out of memory, NaN loss, a bug); completed artefacts are kept."""

    def __init__(self, stage: str, path: Path, cause: BaseException):
        self.stage, self.path, self.cause = stage, path, cause
        detail = " ".join(str(cause).split()) or "no details"
        super().__init__(f"stage {stage} failed: {type(cause).__name__}: {detail}; "
                         f"completed stages are kept in {path}, rerun to resume (details in log.txt)")


# -- ownership: iwsi writes only into folders it created ------------------------------------------------
# OWNER_FILE is the first file written into a new run, ablation or probe folder; its presence is what lets
# later commands write, resume or clean up there. Folders made before it existed are recognised by LEGACY
# (a probe by its manifest's kind).
# The files iwsi appends to instead of replacing: a copy of a run directory must not hard-link them.
APPENDED = (RUN_FILE.progress, RUN_FILE.log, RUN_FILE.train_log)
LEGACY = {"run": (RUN_FILE.config, RUN_FILE.status, RUN_FILE.stages), "ablation": ("shared", "results.parquet")}
# What iwsi keeps at the top of a run folder (files, and the folders whose files it reads and writes).
# A link, a folder where a file belongs or an unreadable file there is refused (odd_entry) before any
# write: appends and the lock follow links, a linked folder would take iwsi's writes elsewhere, and a
# FIFO blocks its reader.
RUN_FOLDERS = (RUN_FILE.stages, RUN_FILE.chunks, RUN_FILE.adapter)
RUN_NAMES = tuple(f.name for f in FILES if "/" not in f.name) + RUN_FOLDERS


def owner(path: Path) -> str | None:
    """'run', 'ablation' or 'probe' (contract.KINDS) when iwsi created `path`, else None."""
    info = read_json(path / OWNER_FILE, None, quiet=True)
    if isinstance(info, dict) and info.get("kind") in KINDS:
        return info["kind"]
    for kind, names in LEGACY.items():
        if all((path / n).exists() for n in names):
            return kind
    manifest = read_json(path / PROBE_MANIFEST, None, quiet=True)
    return "probe" if isinstance(manifest, dict) and manifest.get("kind") == "probe" else None


def check_out_dir(path: Path, kind: str = "run") -> None:
    """Refuse an --out iwsi may not write into, before anything is written: a file, a non-empty folder
    iwsi did not create (or made for another purpose), or a folder that cannot be created."""
    if path.is_symlink() and not path.exists():
        raise RunDirError(f"--out {path} is a broken link: give a new or empty folder")
    if path.exists():
        if not path.is_dir():
            raise RunDirError(f"--out {path} is a file, not a directory: give a new or existing {kind} directory")
        found = owner(path)
        if found != kind and any(path.iterdir()):
            what = f"an iwsi {found} directory" if found else "a non-empty folder that iwsi did not create"
            raise RunDirError(f"--out {path} is {what}: give a new or empty folder, or an existing {kind} directory")
        odd = odd_entry(path)
        if odd:
            raise RunDirError(f"--out {path}: {odd}")
        if not os.access(path, os.W_OK | os.X_OK):
            raise RunDirError(f"--out {path} is not writable: give a folder you can write to")
        return
    parent = nearest_existing(path.parent)
    if not parent.is_dir():
        raise RunDirError(f"--out {path} cannot be created: {parent} is a file; give a folder path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {path} cannot be created: no permission to write in {parent}")


def nearest_existing(path: Path) -> Path:
    """`path` or its nearest existing parent: where a new --out would be created (every --out checker's rule)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def can_create_in(path: Path) -> bool:
    """A folder path below which this process may create entries."""
    found = nearest_existing(path)
    return found.is_dir() and os.access(found, os.W_OK | os.X_OK)


def odd_entry(path: Path) -> str | None:
    """What in iwsi's folder `path` iwsi may not read or write through (see RUN_NAMES), with the fix;
    None when nothing is odd."""
    names = [name for name in RUN_NAMES if os.path.lexists(path / name)]
    for folder in RUN_FOLDERS:
        where = path / folder
        if where.is_dir() and not where.is_symlink() and os.access(where, os.R_OK | os.X_OK):
            names += [f"{folder}/{entry.name}" for entry in sorted(where.iterdir())]
    fix = "remove it, or give another --out"
    for name in names:
        entry, folder = path / name, name in RUN_FOLDERS
        if entry.is_symlink():
            return f"{name} is a symbolic link, and iwsi writes only its own files there: {fix}"
        if folder and not entry.is_dir():
            return f"{name} is not a folder, where iwsi keeps its own folder: {fix}"
        if not folder and not entry.is_file():
            return f"{name} is not a regular file (a folder, FIFO or device), where iwsi keeps its own file: {fix}"
        if not os.access(entry, os.R_OK | (os.X_OK if folder else 0)):
            return f"{name} cannot be read: give it read permission (chmod u+r), or give another --out"
    return None


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def claim_dir(path: Path, kind: str = "run", mark: bool = True) -> None:
    """Create `path` (checked by check_out_dir) and, with mark, mark it as iwsi's. When that fails (a full
    disk), the folders it created are removed again: nothing is left half-made."""
    top = path
    while not top.parent.exists() and top.parent != top.parent.parent:
        top = top.parent
    created = not top.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if mark and not isinstance(read_json(path / OWNER_FILE, None, quiet=True), dict):
            write_json(path / OWNER_FILE, {"kind": kind, "schema_version": SCHEMA_VERSION, "created": now_iso()})
    except OSError as err:
        if created:
            shutil.rmtree(top, ignore_errors=True)
        raise RunDirError(f"--out {path} cannot be created ({err.strerror}): "
                          f"{'free some disk space' if err.errno in DISK_FULL else 'give a folder you can write to'} "
                          "and retry") from None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def atomic_file(path: Path):
    """The one way iwsi writes a file: yield a temp name beside `path`; when the block succeeds, fsync it
    and rename it over `path`, so a reader sees the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(o):
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def read_json(path: Path, default=None, quiet: bool = False):
    """JSON from `path`, `default` when it is missing (and, with quiet, when it does not parse or is not a
    regular file: a FIFO would block the reader)."""
    try:
        if path.exists() and not path.is_file():
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError, RecursionError) as err:  # json recurses once per nesting level
        if quiet:
            return default
        if isinstance(err, RecursionError):
            raise ValueError(f"{path}: JSON nested too deeply") from None
        raise


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


class RunDir:
    """Typed access to one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- stage markers -------------------------------------------------------------------------
    def marker(self, stage: str) -> Path:
        return self.path / RUN_FILE.stages / f"{stage}.json"

    def is_done(self, stage: str) -> bool:
        return self.marker(stage).exists()

    def read_marker(self, stage: str) -> dict | None:
        """The stage's marker, or None when it is damaged: not an object, or `files` not a table of records of
        the stage's own files (a name such as ../x would make verify and adopt reach outside the folder)."""
        data = read_json(self.marker(stage), None, quiet=True)
        files = data.get("files", {}) if isinstance(data, dict) else None
        ok = isinstance(files, dict) and all(name in STAGE_OUTPUTS.get(stage, ()) and isinstance(record, dict)
                                             for name, record in files.items())
        return data if ok else None

    def mark_done(self, stage: str, seconds: float, **extra) -> None:
        self.marker(stage).parent.mkdir(parents=True, exist_ok=True)
        files = {name: fingerprint(self.path / name) for name in STAGE_OUTPUTS.get(stage, ())
                 if (self.path / name).is_file()}
        write_json(self.marker(stage), {"stage": stage, "seconds": round(seconds, 3), "finished": now_iso(),
                                        "files": files, **extra})

    def adopt(self, src: RunDir, stages: tuple[str, ...]) -> None:
        """Take over stages that `src` finished with the same settings (the ablation's shared stages):
        their files, checked against src's markers, are hard-linked here (copied across filesystems;
        every iwsi write replaces a file, so neither directory ever changes the other's), then each
        stage is recorded done as if it had run here, its marker naming `src`. Stages already done
        here are kept: a resumed cell keeps its own later files."""
        todo = [s for s in stages if not self.is_done(s)]
        markers = {s: src.read_marker(s) if src.is_done(s) else None for s in todo}
        files: dict[str, dict] = {}
        for stage, marker in markers.items():
            if marker is None:
                raise RunDirError(f"{src.path} has not finished stage {stage}: run it there first")
            files.update(marker.get("files", {}))  # a later stage's record of a rewritten file wins
        for name, record in files.items():
            if not (src / name).is_file() or fingerprint(src / name) != record:
                raise RunDirError(f"{src / name} changed since its stage wrote it: rerun {src.path} to repair it")
        for name in files:
            _link(src / name, self / name)
        for stage, marker in markers.items():
            self.mark_done(stage, marker.get("seconds", 0.0), adopted_from=str(src.path))

    def verify(self) -> tuple[str, str | None, str] | None:
        """(stage to redo from, damaged file or folder, why) for the first damaged artefact of the finished
        stages (or chunks/chunking.json), or None.

        A file is checked against the marker of the last finished stage that wrote it; the stage to
        redo is the first stage that writes it (a later writer reads the earlier version)."""
        if self.chunking_damaged():  # every chunk's boundaries and seed are unknown: redo them all
            return "generate", RUN_FILE.chunks, "chunks/chunking.json is damaged (the chunk size is unknown)"
        latest: dict[str, tuple[str, dict]] = {}
        for stage in STAGE_OUTPUTS:
            if not self.is_done(stage):
                continue
            marker = self.read_marker(stage)
            if marker is None:
                return stage, None, f"stages/{stage}.json is damaged"
            unrecorded = [n for n in STAGE_REQUIRED[stage] if "files" in marker and n not in marker["files"]]
            if unrecorded:  # e.g. a marker edited to claim the stage done
                return stage, None, f"stages/{stage}.json does not record {unrecorded[0]}, which the stage writes"
            for name, record in marker.get("files", {}).items():  # markers of older runs have no files
                latest[name] = (stage, record)
        for name, (stage, record) in latest.items():
            found = fingerprint(self.path / name) if (self.path / name).is_file() else None
            if found != record:
                first = next(s for s, names in STAGE_OUTPUTS.items() if name in names)
                why = ("is missing" if found is None
                       else f"changed since stage {stage} wrote it ({_describe(found, record)})")
                return first, name, f"{name} {why}"
        return None

    def chunking_damaged(self) -> bool:
        """chunks/chunking.json exists but holds no positive questions_per_chunk: the chunks' boundaries,
        and so their seeds, are unknown (generate would fail on it on every rerun)."""
        path = self.path / RUN_FILE.chunks / "chunking.json"
        if not os.path.lexists(path):
            return False
        data = read_json(path, None, quiet=True)
        size = data.get("questions_per_chunk") if isinstance(data, dict) else None
        return not (isinstance(size, int) and not isinstance(size, bool) and size >= 1)

    def redo_from(self, stage: str, damaged: str | None = None) -> None:
        """Forget `stage` and the stages that read it (their markers) and delete the damaged file (or folder:
        `chunks` when its chunking is unknown); the other files are rewritten as the stages rerun, and the
        checkpoints (generate/score chunks, train_ckpt) are checked where they are read."""
        for s in with_dependents([stage]):
            self.marker(s).unlink(missing_ok=True)
        if damaged and os.path.lexists(self.path / damaged):
            _remove(self.path / damaged)

    def record_config(self) -> None:
        """Remember config.yaml's fingerprint in the owner file: a later run can then tell a damaged or
        hand-edited config.yaml from the one its artefacts were made with."""
        info = read_json(self.path / OWNER_FILE, None, quiet=True) or {"kind": "run", "schema_version": SCHEMA_VERSION}
        write_json(self.path / OWNER_FILE, {**info, "config": fingerprint(self.path / RUN_FILE.config)})

    def recorded_config(self) -> dict | None:
        info = read_json(self.path / OWNER_FILE, None, quiet=True)
        return info.get("config") if isinstance(info, dict) else None

    def timings(self) -> dict[str, float]:
        found = {s: self.read_marker(s) for s in STAGES if self.is_done(s)}
        return {s: m["seconds"] for s, m in found.items() if m and "seconds" in m}


    def clear_from(self, stages: tuple[str, ...]) -> None:
        """Forget `stages`: markers first (so a crash in between never leaves a marker without its
        artefacts), then their artefacts. A file that a forgotten stage rewrote after a kept one
        (samples.parquet: vote, score, judge, then filter) is then the kept stage's: its record is
        renewed, so a filter-only change is not taken for damage (call after `verify` found none)."""
        shared = {name for stage in stages if self.is_done(stage) for name in STAGE_OUTPUTS.get(stage, ())}
        for stage in stages:
            self.marker(stage).unlink(missing_ok=True)
        self._renew_records(shared)
        for stage in stages:
            for pattern in STAGE_ARTEFACTS.get(stage, ()):
                for path in self.path.glob(pattern):
                    _remove(path)

    def _renew_records(self, names: set[str]) -> None:
        for stage in STAGES:
            marker = self.read_marker(stage) if self.is_done(stage) else None
            files = (marker or {}).get("files", {})
            renewed = {n: fingerprint(self.path / n) for n in files if n in names and (self.path / n).is_file()}
            if renewed:
                write_json(self.marker(stage), {**marker, "files": {**files, **renewed}})

    def remove_temporaries(self) -> None:
        """Half-written temp files of a killed process (never read: only renames publish).

        Only iwsi's own names (`.<name>.<pid>.tmp`) in the folders iwsi writes, in a run directory."""
        if owner(self.path) != "run":
            return
        for folder in (self.path, self.path / RUN_FILE.stages, self.path / RUN_FILE.chunks):
            for path in folder.glob(".*.tmp"):
                if TEMP_RE.fullmatch(path.name) and not path.name.startswith(".lock."):  # a lock being taken
                    _remove(path)

    # -- status, progress, log ----------------------------------------------------------------
    def set_status(self, state: str, stage: str | None = None, error: str | None = None) -> None:
        old = read_json(self.path / RUN_FILE.status, {}, quiet=True)
        old = old if isinstance(old, dict) else {}
        write_json(self.path / RUN_FILE.status, {"state": state, "pid": os.getpid(), "stage": stage, "error": error,
                                               "started": old.get("started", now_iso()), "updated": now_iso()})

    def progress(self, stage: str, done: int, total: int, elapsed: float) -> None:
        append_record(self.path / RUN_FILE.progress, {"stage": stage, "done": done, "total": total,
                                                      "elapsed": round(elapsed, 2), "time": now_iso()})

    def log(self, message: str) -> None:
        _append(self.path / RUN_FILE.log, f"{now_iso()} {message}\n")

    # -- lock ------------------------------------------------------------------------------------
    @contextmanager
    def lock(self):
        """Exclusive use of the directory: an OS file lock (filelock), which the OS releases when its
        process dies, so there are no stale locks to take over. The holder's pid is written into the
        lock file for the "in use by process N" message."""
        from filelock import FileLock, Timeout

        path = self.path / RUN_FILE.lock
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = _holder(path)
            who = f"process {holder}" if holder else "another process"
            fix = f"stop it (kill {holder})" if holder else "stop it"
            raise RunDirError(f"run directory {self.path} is in use by {who}: "
                              f"wait for it, or {fix} and retry") from None
        try:
            path.write_text(str(os.getpid()))
            yield
        finally:
            path.unlink(missing_ok=True)  # while still held: filelock retries on an unlinked inode
            lock.release()


def fingerprint(path: Path) -> dict:
    """Size, sha256 and (for parquet) row count of a finished file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    record = {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    if path.suffix == ".parquet":
        try:
            record["rows"] = pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError):
            record["rows"] = None  # unreadable: the sha256 already differs from the recorded one
    return record


def _describe(found: dict, record: dict) -> str:
    if found.get("bytes") != record.get("bytes"):
        return f"{found.get('bytes')} bytes, {record.get('bytes')} recorded"
    if found.get("rows") != record.get("rows"):
        return f"{found.get('rows')} rows, {record.get('rows')} recorded"
    return "checksum differs"


TEMP_RE = re.compile(r"\.[^/]+\.\d+\.tmp")


def read_checkpoint(path: Path) -> pd.DataFrame | None:
    """A chunk file, or None when it is missing or damaged (then it is deleted: it is redone)."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        path.unlink(missing_ok=True)
        return None


def _link(src: Path, dst: Path) -> None:
    """`dst` gets `src`'s content: a hard link, or a copy where linking fails (another filesystem)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def append_record(path: Path, record: dict) -> None:
    """`record` as one JSON line at the end of `path` (progress.jsonl's format: a reader skips a torn line)."""
    _append(path, json.dumps(record) + "\n")


def read_records(path: Path) -> list[dict]:
    """The records append_record wrote to `path`, in order: a torn line (one being appended right now) or a
    line that is JSON but not a record (a damaged file) is skipped; none when the file cannot be read."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def record_step(record: dict) -> int | None:
    """A train_log.jsonl record's optimizer step: a non-negative int, else None (a foreign or damaged line)."""
    step = record.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def _append(path: Path, text: str) -> None:
    """One write at the end of `path`; never through a link (O_NOFOLLOW), which check_out_dir refuses
    anyway: a link planted after that check must not take iwsi's writes elsewhere either."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _holder(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None  # the holder has not written its pid yet


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Progress:
    """tqdm bar + throttled progress.jsonl lines for one stage."""

    def __init__(self, run: RunDir, stage: str, total: int, unit: str = "it"):
        from tqdm.auto import tqdm

        self.run, self.stage, self.total = run, stage, total
        self.bar = tqdm(total=total, desc=stage, unit=unit, leave=False)
        self.done, self.start, self.last = 0, time.time(), 0.0
        run.progress(stage, 0, total, 0.0)

    def __call__(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)
        if time.time() - self.last > 0.5 or self.done >= self.total:
            self.last = time.time()
            self.run.progress(self.stage, self.done, self.total, self.last - self.start)

    def close(self) -> None:
        self.bar.close()

"""Path shapes, inputs that hang or exhaust memory, damage that was never repaired, and
messages that named the wrong cause. Each case: one line, exit 2 and nothing written (or, for damage
iwsi can repair, a rerun that repairs it).

Cases that could hang (a FIFO, /dev/zero, a YAML alias bomb, whose repr loops in C where no signal
reaches it) run the CLI in a subprocess under a timeout; the others call `iwsi.cli.main` in-process
with the stages replaced. Tests run as root in CI, where a mode-000 file is readable and a read-only
folder writable: those two cases are skipped there.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from benchmarks.fixtures import make_run_dir
from iwsi import generate, pipeline
from iwsi.cli import check_edge, main, parser
from iwsi.config import load_config
from iwsi.contract import STAGE_OUTPUTS
from iwsi.datasets import load_splits
from iwsi.rundir import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--set", "num_questions=4", "--set", "valid_size=2", "--set", "test_size=2", "--set", "embed=false"]
AS_ROOT = os.geteuid() == 0  # root reads mode-000 files and writes read-only folders
LONG = "x" * 256  # one byte over NAME_MAX


def export_main(argv: list[str]) -> int:
    """`iwsi export ARGV`."""
    return main(["export", *argv])


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("IWSI_CHUNK", raising=False)


class Hung(BaseException):
    """Not an OSError (as TimeoutError is): the code under test must not catch it as a bad file."""


@contextmanager
def time_bound(seconds: int = 30):
    """Fail instead of hanging: after `seconds`, SIGALRM goes to the main thread itself (signal.alarm may be
    delivered to another thread, leaving a FIFO's open() blocked), which interrupts the blocked syscall."""
    def expire(*_):
        raise Hung(f"no answer in {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    timer = threading.Timer(seconds, signal.pthread_kill, (threading.main_thread().ident, signal.SIGALRM))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGALRM, previous)


def cli(args: list[str], capsys) -> tuple[int, str]:
    """The CLI in-process with the stages replaced by a no-op: only the checks run."""
    with time_bound(), mock.patch.object(pipeline, "_run_stages", lambda ctx, stages: None):
        status = main(args)
    return status, capsys.readouterr().err


MEMORY_BOUND = 4 << 30  # address space of a CLI process fed hostile input: an expanding input fails loudly past it


def _bound_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def cli_process(args: list[str], timeout: int = 30, **env) -> tuple[int, str, float]:
    """The CLI in a subprocess under a time bound (`timeout`) and a memory bound (MEMORY_BOUND of address space:
    a MemoryError there is a traceback, which `one_line` refuses)."""
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "iwsi.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
                          preexec_fn=_bound_memory)
    return proc.returncode, proc.stderr, time.time() - start


def one_line(status: int, err: str, *fragments: str) -> str:
    assert status == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("iwsi"), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> dict:
    """Every entry under `folder` with its kind, and a regular file's bytes (a FIFO is never opened)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        kind = "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) \
            else "other"
        found[str(path.relative_to(folder))] = path.read_bytes() if kind == "file" else kind
    return found


@pytest.fixture
def run_dir(tmp_path, capsys) -> Path:
    """A run directory as `iwsi run` leaves it (stages replaced)."""
    out = tmp_path / "run"
    assert cli(["run", "--out", str(out), *SMALL], capsys)[0] == 0
    (out / "stages").mkdir()
    (out / "chunks").mkdir()
    (out / "log.txt").write_text("earlier log\n")
    (out / "progress.jsonl").write_text("")
    (out / "status.json").write_text('{"state": "done"}')
    return out


# -- 3. `~` and other path shapes -------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def test_tilde_in_out_is_the_home_folder(home, tmp_path, capsys):
    # bash leaves `--out=~/r` as it is: iwsi made ./~/r while pandas wrote its temp files to $HOME/r
    status, err = cli(["run", "--out=~/r", *SMALL], capsys)
    assert status == 0, err
    assert (home / "r" / "iwsi.json").is_file() and not (tmp_path / "~").exists()


@pytest.mark.parametrize("argv", [
    ["run", "--out=~/r", "--config=~/c.yaml"],
    ["ablate", "--out=~/a", "--config=~/c.yaml", "--shared-from=~/s", "--data-root=~/d"],
    ["probe", "--out=~/p", "--config=~/c.yaml", "--run=~/r"],
])
def test_every_path_option_expands_tilde(argv, home):
    args = parser().parse_args(argv)
    check_edge(args)
    for option in ("out", "config", "shared_from", "data_root", "run"):
        value = getattr(args, option, None)
        assert value is None or value.startswith(str(home)), (option, value)


def test_path_config_keys_expand_tilde(home):
    cfg = load_config(overrides={"data_dir": "~/d", "model": "~/m", "reward_model": "~/rm"})
    assert (cfg.data_dir, cfg.model, cfg.reward_model) == (f"{home}/d", f"{home}/m", f"{home}/rm")
    (home / "c.yaml").write_text("data_dir: ~/data\nmodel: embedded\n")
    cfg = load_config(home / "c.yaml")
    assert (cfg.data_dir, cfg.model) == (f"{home}/data", "embedded")


def test_export_paths_expand_tilde(home, monkeypatch):
    monkeypatch.setenv("IWSI_CACHE", str(home / "cache"))
    make_run_dir(home / "runs" / "r", num_questions=10)
    assert export_main(["~/runs/r", "--out=~/kept.jsonl"]) == 0
    assert (home / "kept.jsonl").is_file() and (home / "kept.jsonl.manifest.json").is_file()


@pytest.mark.parametrize("args, fragment", [
    (["run", "--out", f"/tmp/{LONG}"], "--out: the name"),
    (["run", "--config", f"/tmp/{LONG}.yaml"], "--config: the name"),
    (["run", *SMALL, "--set", "dataset=jsonl", "--set", f"data_dir=/tmp/{LONG}"], "data_dir: the name"),
    (["run", *SMALL, "--set", f"model=/tmp/{'é' * 128}"], "model: the name"),  # 256 bytes in UTF-8
    (["ablate", "--shared-from", f"/tmp/{LONG}"], "--shared-from: the name"),
    (["run", "--out", "/tmp/" + "a/" * 2100], "more than the 4095 a path may have"),
])
def test_names_over_255_bytes_are_one_line(args, fragment, tmp_path, capsys):
    status, err = cli(args, capsys)
    one_line(status, err, fragment, "shorten it")


def test_export_names_over_255_bytes(tmp_path, capsys):
    status = export_main([str(tmp_path / LONG), "--out", str(tmp_path / "k.jsonl")])
    one_line(status, capsys.readouterr().err, "the name", "shorten it")
    status = export_main([str(tmp_path), "--out", str(tmp_path / LONG)])
    one_line(status, capsys.readouterr().err, "--out: the name")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_to_outside(path: Path) -> None:
    path.symlink_to(path.parent.parent / "outside.txt")


ODD_RUN_FILES = [
    ("config.yaml", "dir", "config.yaml is not a regular file"),
    ("status.json", "dir", "status.json is not a regular file"),
    ("iwsi.json", "fifo", "iwsi.json is not a regular file"),
    ("lock", "dir", "lock is not a regular file"),
    ("lock", "link", "lock is a symbolic link"),
    ("log.txt", "link", "log.txt is a symbolic link"),
    ("progress.jsonl", "link", "progress.jsonl is a symbolic link"),
    ("stages", "link", "stages is a symbolic link"),
    ("stages/generate.json", "dir", "stages/generate.json is not a regular file"),
    ("chunks/generate-00000.parquet", "fifo", "chunks/generate-00000.parquet is not a regular file"),
    ("chunks", "file", "chunks is not a folder"),
]


@pytest.mark.parametrize("name, shape, fragment", ODD_RUN_FILES, ids=[f"{n}-{s}" for n, s, _ in ODD_RUN_FILES])
def test_odd_run_files_are_refused_and_untouched(name, shape, fragment, run_dir, capsys):
    outside = run_dir.parent / "outside.txt"
    outside.write_text("a user's file")
    path = run_dir / name
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    {"dir": path.mkdir, "fifo": lambda: _fifo(path), "link": lambda: _symlink_to_outside(path),
     "file": lambda: path.write_text("x")}[shape]()
    before = listing(run_dir)
    status, err = cli(["run", "--out", str(run_dir), *SMALL], capsys)
    one_line(status, err, fragment, "remove it, or give another --out")
    assert listing(run_dir) == before and outside.read_text() == "a user's file"


@pytest.mark.skipif(AS_ROOT, reason="root reads a mode-000 file (tests run as root in CI)")
def test_unreadable_run_file_is_refused(run_dir, capsys):
    (run_dir / "status.json").write_text("{}")
    (run_dir / "status.json").chmod(0)
    status, err = cli(["run", "--out", str(run_dir), *SMALL], capsys)
    one_line(status, err, "status.json cannot be read")


def test_appends_never_follow_a_link(run_dir):
    """A link planted after the check: log and progress lines never go through it (O_NOFOLLOW)."""
    from iwsi.rundir import RunDir

    outside = run_dir.parent / "outside.txt"
    outside.write_text("mine")
    (run_dir / "log.txt").unlink()
    (run_dir / "log.txt").symlink_to(outside)
    with pytest.raises(OSError):
        RunDir(run_dir).log("x")
    assert outside.read_text() == "mine"


@pytest.mark.parametrize("command", ["run", "ablate"])
def test_full_disk_while_claiming_leaves_nothing(command, tmp_path, capsys, monkeypatch):
    from iwsi import rundir

    real = rundir.write_json

    def full(path, obj):
        if path.name == "iwsi.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(rundir, "write_json", full)
    out = tmp_path / "new" / "out"
    status, err = cli([command, "--out", str(out), *SMALL], capsys)
    one_line(status, err, "No space left on device", "free some disk space")
    # the run claims its folder before the lock and marks it once the lock is held: it is left empty
    assert not out.exists() if command == "ablate" else not any(out.iterdir())


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_iwsi_cache_that_is_a_file(where, tmp_path, capsys, monkeypatch):
    (tmp_path / "cache").write_text("a file")
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path / "cache" / ("" if where == "file" else "sub")))
    for args in (["run", *SMALL], ["run", "--out", str(tmp_path / "r"), *SMALL]):
        status, err = cli(args, capsys)
        one_line(status, err, "IWSI_CACHE=", "a file, not a folder", "point it at a folder")
    assert (tmp_path / "cache").read_text() == "a file" and not (tmp_path / "r").exists()


@pytest.mark.skipif(AS_ROOT, reason="root writes into a read-only folder (tests run as root in CI)")
def test_iwsi_cache_read_only(tmp_path, capsys, monkeypatch):
    (tmp_path / "cache").mkdir(mode=0o555)
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path / "cache"))
    one_line(*cli(["run", *SMALL], capsys), "IWSI_CACHE=", "is not writable")


# -- 4. inputs that hang or exhaust memory ----------------------------------------------------------------
def alias_bomb(key: str) -> str:
    """Nine levels of nine aliases under `key`: 9**9 elements once expanded (a few hundred bytes of YAML)."""
    lines = [f"{key}:", '  - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"  - &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def _hanging_input(tmp: Path, shape: str) -> list[str]:
    jsonl = ["--set", "dataset=jsonl", *SMALL]
    if shape == "fifo-data-dir":
        os.mkfifo(tmp / "data.jsonl")
        return [*jsonl, "--set", f"data_dir={tmp / 'data.jsonl'}"]
    if shape == "fifo-in-folder":
        (tmp / "data").mkdir()
        os.mkfifo(tmp / "data" / "a.jsonl")
        return [*jsonl, "--set", f"data_dir={tmp / 'data'}"]
    if shape == "dev-zero":
        return [*jsonl, "--set", "data_dir=/dev/zero"]
    if shape == "fifo-config":
        os.mkfifo(tmp / "c.yaml")
        return ["--config", str(tmp / "c.yaml")]
    if shape == "deep-json-line":
        (tmp / "deep.jsonl").write_text('{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
        return [*jsonl, "--set", f"data_dir={tmp / 'deep.jsonl'}"]
    if shape == "deep-json-array":
        (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
        return [*jsonl, "--set", f"data_dir={tmp / 'deep.json'}"]
    if shape == "deep-yaml":
        (tmp / "c.yaml").write_text("k: " + "[" * 100_000 + "]" * 100_000 + "\n")
        return ["--config", str(tmp / "c.yaml")]
    (tmp / "c.yaml").write_text(alias_bomb(shape.removeprefix("bomb-")))
    return ["--config", str(tmp / "c.yaml")]


HANGING = {"fifo-data-dir": "not a regular file", "fifo-in-folder": "not a regular file",
           "dev-zero": "/dev/zero: not a regular file", "fifo-config": "is not a regular file",
           "deep-json-line": "line 1: JSON nested too deeply", "deep-json-array": "JSON nested too deeply",
           "deep-yaml": "is nested too deeply", "bomb-k": "is a list, not a single float",
           "bomb-fields": "fields=", "bomb-model": "is a list, not a single str"}


@pytest.mark.parametrize("shape", HANGING)
def test_input_that_would_hang_is_one_line(shape, tmp_path):
    out = tmp_path / "run"
    status, err, seconds = cli_process(["run", "--out", str(out), *_hanging_input(tmp_path, shape)])
    line = one_line(status, err, HANGING[shape])
    assert len(line) < 1000 and not out.exists()  # the error message's repr is bounded too


def test_data_file_over_the_size_cap(tmp_path, capsys, monkeypatch):
    from iwsi.datasets import _io

    monkeypatch.setattr(_io, "MAX_FILE_BYTES", 100)
    rows = [{"question": f"What is {i} plus 0?", "answer": str(i), "rationale": f"{i} + 0 = {i}."} for i in range(12)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    status, err = cli(["run", "--out", str(tmp_path / "r"), *SMALL, "--set", "dataset=jsonl", "--set",
                       f"data_dir={tmp_path / 'd.jsonl'}"], capsys)
    one_line(status, err, "bytes, more than the 100 iwsi reads", "smaller file")


# -- 7. damage that was never repaired, checks that came after a write --------------------------------------
def fake_generate(seen: list):
    def stage(ctx):
        seen.append(generate.chunk_size(ctx.run))
        pd.DataFrame({"question_id": ["q"]}).to_parquet(ctx.run / "candidates.parquet")
    return stage


@pytest.mark.parametrize("damage", [b"{", b"", b"[]", b"null", b"{}", b'{"questions_per_chunk": 0}',
                                    b'{"questions_per_chunk": "4"}', b'{"questions_per_chunk": true}',
                                    b'{"questions_per_chunk": -2}',
                                    b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_damaged_chunking_json_is_redone(damage, tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setitem(pipeline.STAGE_FUNCS, "generate", fake_generate(seen))
    monkeypatch.setenv("IWSI_CHUNK", "4")
    args = ["run", "--out", str(tmp_path / "r"), *SMALL, "--until", "generate"]
    assert main(args) == 0
    chunks = tmp_path / "r" / "chunks"
    (chunks / "chunking.json").write_bytes(damage)
    (chunks / "generate-00000.parquet").write_bytes(b"a chunk of unknown boundaries")
    capsys.readouterr()
    with time_bound():
        assert main(args) == 0
    assert "chunks/chunking.json is damaged" in capsys.readouterr().err
    assert seen == [4, 4] and json.loads((chunks / "chunking.json").read_text()) == {"questions_per_chunk": 4}
    assert not (chunks / "generate-00000.parquet").exists()


@pytest.mark.parametrize("value", ["abc", "", "0", "-3", "1.5"])
def test_bad_iwsi_chunk_is_one_line_before_any_write(value, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IWSI_CHUNK", value)
    status, err = cli(["run", "--out", str(tmp_path / "r"), *SMALL], capsys)
    one_line(status, err, "IWSI_CHUNK=", "positive whole number")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--methods", ""], "--methods '' names no value"),
    (["--methods", " , "], "names no value"),
    (["--k", ""], "--k '' names no value"),
    (["--seeds", "-1"], "seed=-1 is too small"),
    (["--seeds", ""], "--seeds '' names no value"),
    (["--datasets", "gsm8k", "--data-root", "/definitely/not/here"], "does not exist"),
])
def test_ablate_validates_before_writing(args, fragment, tmp_path, capsys):
    out = tmp_path / "ab"
    status, err = cli(["ablate", "--out", str(out), *SMALL, *args], capsys)
    one_line(status, err, fragment)
    assert not out.exists()


def copy_stages(template: Path):
    """Stage functions that copy each stage's files from a synthetic finished run: an ablation without a model."""
    def stage(name):
        def run(ctx):
            for file in STAGE_OUTPUTS[name]:
                if (template / file).is_file():  # replaced, as iwsi writes: the cell's files are hard links
                    (ctx.run / file).parent.mkdir(exist_ok=True)
                    atomic_write_bytes(ctx.run / file, (template / file).read_bytes())
        return run
    return {name: stage(name) for name in pipeline.STAGE_FUNCS}


@pytest.fixture
def fake_ablation(tmp_path, monkeypatch):
    template = make_run_dir(tmp_path / "template", num_questions=10, method="iwsi")
    pd.read_parquet(template / "samples.parquet").to_parquet(template / "candidates.parquet")
    evals = pd.read_parquet(template / "eval.parquet")
    evals[evals["model"] == "base"].to_parquet(template / "eval_base.parquet")
    (template / "filter.json").write_text('{"method": "iwsi", "k": 80, "threshold": 1.0, "sigma_k": 1.0}')
    (template / "train.json").write_text('{"train_loss": 1.0}')
    (template / "adapter").mkdir(exist_ok=True)  # what train writes besides train.json (contract.STAGE_REQUIRED)
    (template / "adapter" / "adapter_config.json").write_text("{}")
    (template / "adapter" / "adapter_model.safetensors").write_bytes(b"not a real adapter")
    for name, func in copy_stages(template).items():
        monkeypatch.setitem(pipeline.STAGE_FUNCS, name, func)
    out = tmp_path / "ab"
    return out, ["ablate", "--out", str(out), "--methods", "iwsi", "--seeds", "0", *SMALL]


@pytest.mark.parametrize("name, damage", [("samples.parquet", b"PAR1 garbage"), ("eval.parquet", b""),
                                          ("metrics.json", b"{"), ("metrics.json", b"[]"),
                                          ("config.yaml", b"k: [")])
def test_ablate_redoes_a_damaged_cell(name, damage, fake_ablation, capsys):
    out, args = fake_ablation
    assert main([*args, "--k", "80"]) == 0
    cell = out / "cells" / "synthetic-arith" / "iwsi-k80-s0"
    (cell / name).write_bytes(damage)
    capsys.readouterr()
    assert main([*args, "--k", "80"]) == 0
    assert "redoing the cell" in capsys.readouterr().err
    assert pipeline.RunDir(cell).verify() is None and pd.read_parquet(out / "results.parquet")["num_kept"].all()


def test_ablate_skips_an_earlier_cell_whose_config_is_damaged(fake_ablation, capsys):
    out, args = fake_ablation
    assert main([*args, "--k", "50"]) == 0
    (out / "cells" / "synthetic-arith" / "iwsi-k50-s0" / "config.yaml").write_text("k: [")
    capsys.readouterr()
    assert main([*args, "--k", "80"]) == 0  # the k=50 cell is an earlier sweep's
    assert "iwsi-k50-s0 is left out of the tables: its config.yaml is damaged" in capsys.readouterr().err
    assert list(pd.read_parquet(out / "results.parquet")["k"]) == [80.0]
    assert main([*args, "--k", "50"]) == 0  # its own sweep redoes it
    assert sorted(pd.read_parquet(out / "results.parquet")["k"]) == [50.0, 80.0]


# -- 8. messages with the right cause -----------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_jsonl_says_it_is_empty(text, tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text(text)
    status, err = cli(["run", "--out", str(tmp_path / "r"), *SMALL, "--set", "dataset=jsonl", "--set",
                       f"data_dir={tmp_path / 'd.jsonl'}"], capsys)
    line = one_line(status, err, "d.jsonl holds no records")
    assert "test_size" not in line


@pytest.mark.parametrize("form", ["jsonl", "json"])
def test_a_utf8_bom_is_read(form, tmp_path):
    rows = [{"question": f"What is {i} plus 0?", "answer": str(i), "rationale": f"{i} + 0 = {i}."} for i in range(12)]
    text = "\n".join(json.dumps(r) for r in rows) if form == "jsonl" else json.dumps(rows)
    path = tmp_path / f"d.{form}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    splits = load_splits("jsonl", path, 4, 2, 2)
    assert (len(splits.pool), len(splits.valid), len(splits.test)) == (4, 2, 2)


def test_config_that_is_a_directory(tmp_path, capsys):
    status, err = cli(["run", "--config", str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    line = one_line(status, err, "is a directory", "give a YAML file")
    assert "not found" not in line


def test_export_write_error_names_out_not_the_run(tmp_path, capsys, monkeypatch):
    from iwsi import export

    monkeypatch.setenv("IWSI_CACHE", str(tmp_path / "cache"))
    run = make_run_dir(tmp_path / "cache" / "runs" / "r", num_questions=10)

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "atomic_write_text", full)
    out = tmp_path / "k.jsonl"
    line = one_line(export_main([str(run), "--out", str(out)]), capsys.readouterr().err, f"--out {out} cannot be "
                    "written (No space left on device)")
    assert "rerun" not in line and not out.exists() and not (tmp_path / "k.jsonl.manifest.json").exists()


def test_unreachable_hub_id_fails_at_once(tmp_path):
    """No network: one line within seconds, not 11 retry lines and ~23 s (port 9 refuses at once)."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    status, err, seconds = cli_process(["run", "--out", str(tmp_path / "r"), *SMALL, "--set",
                                        "model=someorg/no-such-model"], timeout=60, **env)
    one_line(status, err, "'someorg/no-such-model' is neither a local folder nor in the Hugging Face cache",
             "cannot be reached")
    assert seconds < 15, seconds


def test_offline_hub_id_names_hf_hub_offline(tmp_path, capsys):
    status, err = cli(["run", "--out", str(tmp_path / "r"), *SMALL, "--set", "model=someorg/no-such-model"], capsys)
    one_line(status, err, "HF_HUB_OFFLINE is set", "give a local model folder")

"""Bad input through the CLI: exit status 2, one line naming the problem and the fix, no traceback,
and nothing written (a new run directory is not created; an existing one is unchanged byte for byte).

Most cases call `iwsi.cli.main` in-process (fast); `REAL_PROCESS` cases run `python -m iwsi.cli`
as a real process to check the exit status and stderr as a user sees them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iwsi.cli import main
from iwsi.config import load_config

ROOT = Path(__file__).resolve().parent.parent


# -- fixtures --------------------------------------------------------------------------------------------
def gsm8k_row(i: int, final: str | None = None) -> dict:
    return {"question": f"Tom has {i} apples and buys 2 more. How many apples does he have?",
            "answer": f"He has {i} + 2 = <<{i}+2={i + 2}>>{i + 2} apples.\n#### {final or i + 2}"}


def write_jsonl(path: Path, rows: list, raw_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    for number, text in (raw_lines or {}).items():  # 1-based line number → raw text
        lines[number - 1] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def gsm8k_dir(tmp: Path, train: list | None = None, raw: dict | None = None, test: bool = True) -> Path:
    folder = tmp / "gsm8k"
    write_jsonl(folder / "train.jsonl", [gsm8k_row(i) for i in range(12)] if train is None else train, raw)
    if test:
        write_jsonl(folder / "test.jsonl", [gsm8k_row(100 + i) for i in range(4)])
    return folder


def own_jsonl(tmp: Path, rationale: bool = True, answers=None) -> Path:
    answers = answers or [str(i) for i in range(12)]
    rows = [{"question": f"What is {a} plus 0?", "answer": a, **({"rationale": f"{a} + 0 = {a}."} if rationale else {})}
            for a in answers]
    return write_jsonl(tmp / "own.jsonl", rows)


def not_a_causal_lm(tmp: Path) -> Path:
    folder = tmp / "bert"
    folder.mkdir()
    config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def model_copy(tmp: Path, tokenizer: bool = True, weights: bool = True) -> Path:
    """The embedded model's config (+ its tokenizer files, + a stand-in weights file: never loaded)."""
    from iwsi.models import embedded_dir

    src, folder = embedded_dir(), tmp / f"model-t{int(tokenizer)}-w{int(weights)}"
    folder.mkdir()
    tokenizer_files = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    names = ["config.json"] + (tokenizer_files if tokenizer else [])
    for name in names:
        if (src / name).exists():
            (folder / name).write_bytes((src / name).read_bytes())
    if weights:
        (folder / "model.safetensors").write_bytes(b"checked for, never loaded")
    return folder


def surrogate_jsonl(tmp: Path) -> Path:
    path = own_jsonl(tmp)
    lines = path.read_text().splitlines()
    lines[2] = '{"question": "What is \\ud800 plus 0?", "answer": "2", "rationale": "2 + 0 = 2."}'
    path.write_text("\n".join(lines) + "\n")
    return path


def long_question_jsonl(tmp: Path) -> Path:
    rows = [{"question": f"What is {i} plus 0?" + (" Think about apples and pears." * 2000 if i == 1 else ""),
             "answer": str(i), "rationale": f"{i} + 0 = {i}."} for i in range(12)]
    return write_jsonl(tmp / "long.jsonl", rows)


SMALL = ["num_questions=4", "valid_size=2", "test_size=2", "embed=false"]


def gsm8k(tmp, **kw):
    return ["dataset=gsm8k", f"data_dir={gsm8k_dir(tmp, **kw)}", *SMALL]


# Each case: (id, function tmp_path → list of --set pairs or extra args, expected message fragments)
CASES = [
    ("unknown-key", lambda t: ["bogus=1"], ["unknown config key 'bogus'", "valid keys are"]),
    ("k-zero", lambda t: ["k=0"], ["k=0.0 is out of range", "> 0.0"]),
    ("k-above-100", lambda t: ["k=150"], ["k=150.0 is out of range", "≤ 100"]),
    ("num-samples-zero", lambda t: ["num_samples=0"], ["num_samples=0 is too small", "≥ 1"]),
    # torch.set_num_threads overflows (a traceback) at 2**31 and starts a million threads at 10**6
    ("worker-threads-huge", lambda t: ["worker_threads=2147483648"], ["worker_threads=2147483648 is out of range",
                                                                      "≤ 1024"]),
    ("temperature-negative", lambda t: ["temperature=-0.5"], ["temperature=-0.5 is too small"]),
    ("valid-size-zero", lambda t: ["valid_size=0"], ["valid_size=0 is too small"]),
    ("unknown-method", lambda t: ["method=magic"], ["method='magic' is not valid", "choose one of iwsi"]),
    ("unknown-dataset", lambda t: ["dataset=mnist"], ["dataset='mnist' is not valid", "gsm8k"]),
    ("not-an-int", lambda t: ["num_samples=two"], ["num_samples='two' is not a valid int"]),
    ("rm-without-reward-model", lambda t: ["method=rm"], ["method 'rm' needs a reward model", "set reward_model="]),
    ("missing-data-dir", lambda t: ["dataset=gsm8k"], ["needs data_dir", "set data_dir="]),
    ("data-dir-does-not-exist", lambda t: ["dataset=gsm8k", f"data_dir={t / 'nowhere'}", *SMALL],
     ["does not exist", "check the path"]),
    ("missing-train-file", lambda t: ["dataset=gsm8k", f"data_dir={gsm8k_dir(t, test=True, train=[]).parent}", *SMALL],
     ["no train file", "put the file there or fix data_dir"]),
    ("line-not-json", lambda t: gsm8k(t, raw={3: '{"question": "broken'}), ["train.jsonl line 3: not valid JSON"]),
    ("missing-field", lambda t: gsm8k(t, train=[gsm8k_row(i) for i in range(5)] + [{"answer": "x #### 3"}]
                                      + [gsm8k_row(i) for i in range(6)]),
     ["train.jsonl line 6: missing field 'question'", "fix the record or map the field name"]),
    ("empty-dataset", lambda t: gsm8k(t, train=[]), ["the train file has no records", "not empty"]),
    ("unparseable-gold", lambda t: gsm8k(t, train=[gsm8k_row(i) for i in range(2)] + [gsm8k_row(2, "lots")]
                                         + [gsm8k_row(i) for i in range(9)]),
     ["train.jsonl line 3: cannot parse the final answer 'lots'"]),
    ("unparseable-gold-jsonl", lambda t: ["dataset=jsonl",
                                          f"data_dir={own_jsonl(t, answers=['1', 'banana'] + ['2'] * 10)}",
                                          "fields=task:number", *SMALL],
     ["own.jsonl line 2: cannot parse answer 'banana' as a number answer"]),
    ("empty-valid-set", lambda t: ["dataset=jsonl", f"data_dir={own_jsonl(t, rationale=False)}", *SMALL],
     ["usable rationale, fewer than valid_size = 2", "lower num_questions or valid_size"]),
    ("dataset-too-small", lambda t: gsm8k(t) + ["num_questions=50"], ["fewer than num_questions + valid_size = 52",
                                                                      "lower num_questions"]),
    ("test-set-too-small", lambda t: gsm8k(t) + ["test_size=9"], ["fewer than test_size = 9"]),
    ("model-does-not-exist", lambda t: [*SMALL, f"model={t / 'no-model'}"], ["does not exist", "'embedded'"]),
    ("model-not-causal-lm", lambda t: [*SMALL, f"model={not_a_causal_lm(t)}"],
     ["is not a causal LM", "BertForSequenceClassification", "give a *ForCausalLM model"]),
]
# inputs that used to pass validation and fail mid-run (or never)
CASES += [
    ("k-nan", lambda t: ["k=nan"], ["k='nan' is not a finite number"]),
    ("temperature-nan", lambda t: ["temperature=nan"], ["temperature='nan' is not a finite number"]),
    ("learning-rate-inf", lambda t: ["learning_rate=inf"], ["learning_rate='inf' is not a finite number"]),
    ("entropy-threshold-minus-inf", lambda t: ["entropy_threshold=-inf"], ["entropy_threshold='-inf' is not a finite"]),
    ("entropy-threshold-above-1", lambda t: ["entropy_threshold=1.5"], ["entropy_threshold=1.5 is out of range"]),
    ("model-empty", lambda t: ["model="], ["model is empty", "default 'embedded'"]),
    ("seed-huge", lambda t: ["seed=123456789012345"], ["seed=123456789012345 is out of range", "≤ 4294967295"]),
    ("seed-negative", lambda t: ["seed=-1"], ["seed=-1 is too small"]),
    ("synthetic-too-many", lambda t: ["num_questions=999999999"], ["is more than the 200,000 questions"]),
    ("model-without-tokenizer", lambda t: [*SMALL, f"model={model_copy(t, tokenizer=False)}"],
     ["has no usable tokenizer", "copy its tokenizer files"]),
    ("model-without-weights", lambda t: [*SMALL, f"model={model_copy(t, weights=False)}"],
     ["has no weights", "weights included"]),
    ("lone-surrogate", lambda t: ["dataset=jsonl", f"data_dir={surrogate_jsonl(t)}", *SMALL],
     ["own.jsonl line 3: holds an invalid character", "lone surrogate"]),
    ("question-too-long", lambda t: ["dataset=jsonl", f"data_dir={long_question_jsonl(t)}", *SMALL],
     ["question jsonl-train-1 needs", "more than the model's 8192", "max_new_tokens=64"]),
    ("max-new-tokens-past-context", lambda t: ["max_new_tokens=9000"], ["max_new_tokens=9000 does not fit"]),
]
REAL_PROCESS = {"unknown-key", "line-not-json", "model-not-causal-lm", "k-above-100"}


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file's bytes (and every directory) under `folder`; None when it does not exist."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))}


def run_cli(args: list[str], real: bool, capsys) -> tuple[int, str]:
    if real:
        proc = subprocess.run([sys.executable, "-m", "iwsi.cli", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        return proc.returncode, proc.stderr
    status = main(args)
    return status, capsys.readouterr().err


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run directory's lock as `iwsi run` does (filelock + its pid)."""
    code = ("import os, sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
            "open(sys.argv[1], 'w').write(str(os.getpid())); print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir / "lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def check_refused(status: int, err: str, fragments: list[str]) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("iwsi: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def as_args(sets: list[str], out: Path) -> list[str]:
    args = ["run", "--out", str(out)]
    for pair in sets:
        args += ["--set", pair]
    return args


@pytest.mark.parametrize("name, sets, fragments", CASES, ids=[c[0] for c in CASES])
def test_new_run_dir_is_never_created(name, sets, fragments, tmp_path, capsys):
    out = tmp_path / "run"
    status, err = run_cli(as_args(sets(tmp_path), out), name in REAL_PROCESS, capsys)
    check_refused(status, err, fragments)
    assert not out.exists()


@pytest.fixture
def existing_run(tmp_path) -> Path:
    """A run directory as a finished small run leaves it (contents are only compared, never read)."""
    run = tmp_path / "existing"
    (run / "stages").mkdir(parents=True)
    (run / "chunks").mkdir()
    cfg = load_config(overrides={"num_questions": 4, "valid_size": 2, "test_size": 2, "embed": False})
    (run / "config.yaml").write_text(cfg.to_yaml())
    for stage in ("generate", "vote", "score"):
        (run / "stages" / f"{stage}.json").write_text(json.dumps({"stage": stage, "seconds": 1.0}))
    (run / "chunks" / "generate-00000.parquet").write_bytes(b"PAR1 not really")
    (run / "status.json").write_text('{"state": "done"}')
    (run / "log.txt").write_text("earlier log\n")
    return run


EXISTING_CASES = [
    ("bad-value", ["k=0"], ["k=0.0 is out of range"]),
    ("bad-data", ["dataset=gsm8k", "data_dir=/definitely/not/here"], ["does not exist"]),
    ("bad-model", ["model=/definitely/not/a/model"], ["does not exist"]),
    ("config-changed", ["num_samples=7"], ["was made with a different config (num_samples changed)",
                                           "--force to redo the affected stages"]),
    ("train-config-changed", ["lora_r=4"], ["(lora_r changed)", "use another --out"]),
]


@pytest.mark.parametrize("name, sets, fragments", EXISTING_CASES, ids=[c[0] for c in EXISTING_CASES])
def test_existing_run_dir_is_unchanged(name, sets, fragments, existing_run, capsys):
    before = snapshot(existing_run)
    status, err = run_cli(as_args([*SMALL, "num_questions=4", *sets], existing_run), False, capsys)
    check_refused(status, err, fragments)
    assert snapshot(existing_run) == before


def test_locked_run_dir_names_the_holder(existing_run, capsys):
    holder = hold_lock(existing_run)
    try:
        before = snapshot(existing_run)
        status, err = run_cli(as_args(SMALL, existing_run), True, capsys)
        check_refused(status, err, [f"is in use by process {holder.pid}", f"kill {holder.pid}"])
        assert snapshot(existing_run) == before
    finally:
        holder.kill()
        holder.wait()


def test_out_into_a_user_folder_is_refused_and_untouched(tmp_path, capsys):
    """A non-empty folder iwsi did not create is never written into, nor cleaned."""
    folder = tmp_path / "mine"
    (folder / "chunks").mkdir(parents=True)
    (folder / ".notes.123.tmp").write_text("a user's file that looks like a temp file")
    (folder / "sub").mkdir()
    (folder / "sub" / ".draft.9.tmp").write_text("another")
    (folder / "chunks" / "generate-00000.parquet").write_bytes(b"not ours")
    before = snapshot(folder)
    status, err = run_cli(as_args(SMALL, folder), False, capsys)
    check_refused(status, err, ["is a non-empty folder that iwsi did not create", "give a new or empty folder"])
    assert snapshot(folder) == before


def test_ablate_into_a_user_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "results.md").write_text("my results")
    status, err = run_cli(["ablate", "--out", str(folder), *sum((["--set", s] for s in SMALL), [])], False, capsys)
    check_refused(status, err, ["is a non-empty folder that iwsi did not create"])
    assert snapshot(folder) == {"results.md": b"my results"}


def test_ablate_into_a_run_directory_is_refused(existing_run, capsys):
    before = snapshot(existing_run)
    status, err = run_cli(["ablate", "--out", str(existing_run)], False, capsys)
    check_refused(status, err, ["is an iwsi run directory"])
    assert snapshot(existing_run) == before


@pytest.mark.parametrize("where", ["under-a-file", "under-proc"])
def test_out_that_cannot_be_created(where, tmp_path, capsys):
    if where == "under-a-file":
        (tmp_path / "file").write_text("x")
        out, fragment = tmp_path / "file" / "run", "is a file"
    else:
        out, fragment = Path("/proc/iwsi-test/run"), "cannot be created"
    status, err = run_cli(as_args(SMALL, out), False, capsys)
    check_refused(status, err, [fragment])
    assert not out.exists()


@pytest.mark.parametrize("text, fragment", [
    ("k: [1]\n", "k=[1] is a list, not a single float"),
    ("num_questions: {a: 1}\n", "num_questions={'a': 1} is a dict, not a single int"),
    ("k: 80\nseed: 1\nk: 70\n", "key 'k' appears twice (line 3)"),
    ("k: 8\xff0\n", "is not UTF-8 text"),
    ("? [1, 2]\n: 3\n", "is not a name"),
    ("temperature: .nan\n", "temperature=nan is not a finite number"),
    ("entropy_threshold: 0.4\nmethod: entropy\nk: true\n", "k=True is not a valid float"),
])
def test_bad_yaml_values(text, fragment, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    out = tmp_path / "run"
    status, err = run_cli(["run", "--config", str(path), "--out", str(out)], False, capsys)
    check_refused(status, err, [fragment])
    assert not out.exists()


def test_optional_floats_are_typed_from_the_annotation(tmp_path):
    """entropy_threshold (default None) from YAML or --set is a float, not a string."""
    path = tmp_path / "c.yaml"
    path.write_text("method: entropy\nentropy_threshold: 0.5\n")
    assert load_config(path).entropy_threshold == 0.5
    assert load_config(overrides={"entropy_threshold": "0.25"}).entropy_threshold == 0.25
    assert load_config(overrides={"entropy_threshold": "none"}).entropy_threshold is None


def test_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("not a run")
    status, err = run_cli(as_args(SMALL, out), False, capsys)
    check_refused(status, err, ["is a file, not a directory"])
    assert out.read_text() == "not a run"


def test_missing_or_bad_config_file(tmp_path, capsys):
    status, err = run_cli(["run", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")], False, capsys)
    check_refused(status, err, ["nope.yaml' not found", "give an existing YAML file"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("k: [unclosed\n")
    status, err = run_cli(["run", "--config", str(bad), "--out", str(tmp_path / "r")], False, capsys)
    check_refused(status, err, ["is not valid YAML"])
    python_object = tmp_path / "obj.yaml"  # the safe loader refuses Python tags
    python_object.write_text("k: !!python/object/apply:os.system ['echo pwned']\n")
    status, err = run_cli(["run", "--config", str(python_object), "--out", str(tmp_path / "r")], False, capsys)
    check_refused(status, err, ["is not valid YAML"])
    assert not (tmp_path / "r").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "iwsi.cli", "run", "--debug", "--out", str(tmp_path / "r"),
                           "--set", "bogus=1"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


# -- failures mid-run ------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [MemoryError("out of memory"), FloatingPointError("training loss became nan"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_mid_run_failure_keeps_completed_stages(error, tmp_path, capsys, monkeypatch):
    from iwsi import pipeline

    def fake_generate(ctx):  # a completed stage whose artefact must survive the failure
        (ctx.run / "candidates.parquet").write_bytes(b"candidates")

    def failing_vote(ctx):
        raise error

    monkeypatch.setitem(pipeline.STAGE_FUNCS, "generate", fake_generate)
    monkeypatch.setitem(pipeline.STAGE_FUNCS, "vote", failing_vote)
    out = tmp_path / "run"
    status = main(as_args(SMALL, out))
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    line, = [x for x in err.splitlines() if x.startswith("iwsi: error:")]
    assert f"stage vote failed: {type(error).__name__}: {error}" in line
    assert f"completed stages are kept in {out}, rerun to resume" in line
    state = json.loads((out / "status.json").read_text())
    assert (state["state"], state["stage"]) == ("failed", "vote") and type(error).__name__ in state["error"]
    assert (out / "candidates.parquet").read_bytes() == b"candidates" and (out / "stages" / "generate.json").exists()
    assert not (out / "stages" / "vote.json").exists() and not (out / "lock").exists()
    assert "Traceback" in (out / "log.txt").read_text()  # the details are kept for debugging

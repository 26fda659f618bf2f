"""One-call check of the CUDA path: `python benchmarks/gpu_check.py [--device cuda|cpu] [--out DIR]`.

Builds a tiny Llama checkpoint locally (random weights, 2 layers, hidden size 64, a byte-level BPE
tokenizer trained here on the run's own prompts: no download, no extra package), then runs
`iwsi run --set device=DEVICE --set engine=hf --set model=<it> --set train_processes=1` with tiny sizes
through every stage, one process per stage group (generate | vote, score | evaluate-base | embed,
judge, filter, train | evaluate), and checks each group's artefacts and, on a GPU, that the group's
process allocated CUDA memory (`torch.cuda.max_memory_allocated() > 0`, written to the run's log.txt
by the process itself through `iwsi.device.cuda_peak_note`). A fresh process per group means the
peak belongs to that group's work alone.

The random model is given one planted path so the pipeline has something to vote on and train with:
after the prompt's last token it writes " The answer is 1." and a blank line (a bigram chain written
into the embedding and output matrices, logits ~90 above the rest), so every sample parses and agrees.

Prints one line per check: PASS, FAIL, or SKIP (a CUDA branch on `--device cpu`), then a summary;
exits 1 on any FAIL. Needs torch, transformers, peft, accelerate, pandas, pyarrow and the source
checkout (`iwsi` is imported from it); nothing else (docs/scale.md, "GPU check"). On this repo's CI it
runs with `--device cpu` (tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ANSWER = " The answer is 1.\n\n"  # what the planted chain writes after every prompt
SIZES = {"num_questions": 8, "valid_size": 2, "valid_pool": 0, "test_size": 4, "num_samples": 2,
         "max_new_tokens": 16, "embed": "false", "epochs": 1, "lora_r": 8, "batch_size": 4, "workers": 1}
GROUPS = [("generate", "generate"), ("vote+score", "score"), ("evaluate-base", "evaluate-base"),
          ("judge+filter+train", "train"), ("evaluate", "evaluate")]
BUDGET_S = 300


class Report:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def __call__(self, status: str, what: str) -> None:
        self.lines.append((status, what))
        print(f"{status} {what}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        self("PASS" if ok else "FAIL", what)
        return ok

    def count(self, status: str) -> int:
        return sum(s == status for s, _ in self.lines)


# -- the tiny model -----------------------------------------------------------------------------------
def splits():
    from iwsi.datasets import load_splits

    return load_splits("synthetic-arith", None, SIZES["num_questions"], SIZES["valid_size"], SIZES["test_size"], 0,
                       None)


def build_model(out: Path, seed: int = 0) -> dict:
    """Write a tiny random Llama + tokenizer to `out`; returns facts about it for the report."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from iwsi.prompts import few_shot_prefix, question_suffix

    sp = splits()
    questions = [*sp.pool, *sp.test, *sp.valid]
    prompts = [few_shot_prefix(q.task) + question_suffix(q.question) for q in questions]
    texts = prompts + [question_suffix(q.question) + " " + (q.rationale or "") for q in questions] + [ANSWER] * 64
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1024, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    last = {tok(p)["input_ids"][-1] for p in prompts}
    chain = tok(ANSWER, add_special_tokens=False)["input_ids"]
    if len(last) != 1 or tok.decode(chain) != ANSWER or len({*last, *chain}) != len(chain) + 1:
        raise RuntimeError(f"the planted chain needs one last prompt token and distinct answer tokens: "
                           f"last tokens {last}, chain {chain}")
    steps = [last.pop(), *chain]
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        for i, (a, b) in enumerate(zip(steps, steps[1:])):  # token a → one-hot direction i → token b
            emb[a] = 0.0
            emb[a, i] = 1.0
            head[b, i] = 12.0
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return {"params": sum(p.numel() for p in model.parameters()), "vocab": len(tok), "chain": len(chain)}


# -- one stage group per process ------------------------------------------------------------------------
def child(run: str, argv: list[str]) -> int:
    """`iwsi run` (iwsi.cli.main) in this process, then this process's CUDA peak into the run's log."""
    from iwsi.cli import main
    from iwsi.device import cuda_peak_note
    from iwsi.rundir import RunDir

    code = main(argv)
    until = argv[argv.index("--until") + 1] if "--until" in argv else "all"
    note = cuda_peak_note() or "; cuda not used"
    if Path(run).is_dir():
        RunDir(run).log(f"gpu_check: process {os.getpid()} (--until {until}) exit {code}{note}")
    return code


def run_group(run: Path, device: str, model: Path, until: str, timeout: float) -> tuple[int, str, str]:
    sets = {"device": device, "engine": "hf", "model": str(model), "train_processes": 1, **SIZES}
    from iwsi.config import RunConfig

    sets = {k: v for k, v in sets.items() if k in RunConfig.__dataclass_fields__}  # valid_pool: newer configs
    argv = ["run", "--out", str(run), "--until", until, *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "IWSI_CACHE": str(run.parent / "cache")}
    done = subprocess.run([sys.executable, __file__, "--child", str(run), "--", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)
    log = (run / "log.txt").read_text() if (run / "log.txt").exists() else ""
    ours = [line for line in log.splitlines() if "gpu_check: process" in line and f"--until {until})" in line]
    return done.returncode, (done.stderr or "")[-1500:], ours[-1] if ours else ""


def artefacts(run: Path, group: str) -> tuple[bool, str]:
    """What the group must have written, in one line."""
    import pandas as pd

    if group == "generate":
        c = pd.read_parquet(run / "candidates.parquet")
        parsed = int(c["answer"].notna().sum())
        want = SIZES["num_questions"] * SIZES["num_samples"]
        return len(c) == want and parsed == want, f"{len(c)} candidates (want {want}), {parsed} answers parsed"
    if group == "evaluate-base":
        e = pd.read_parquet(run / "eval_base.parquet")
        return len(e) == SIZES["test_size"], f"{len(e)} greedy test answers (want {SIZES['test_size']})"
    if group == "vote+score":
        s, v = pd.read_parquet(run / "samples.parquet"), pd.read_parquet(run / "valid.parquet")
        finite = bool(s["loss"].map(math.isfinite).all() and v["loss"].map(math.isfinite).all())
        return finite and len(v) == SIZES["valid_size"], (f"{len(s)} candidate losses, {len(v)} valid losses, "
                                                           f"finite: {finite}, mean {s['loss'].mean():.3f} nats")
    if group == "judge+filter+train":
        import json

        metrics = json.loads((run / "train.json").read_text())
        loss = metrics.get("train_loss")
        ok = (run / "adapter" / "adapter_config.json").exists() and loss is not None and math.isfinite(loss)
        # ~0: the planted answer is near-certain, so the LoRA gradients are tiny (the point is where it ran)
        shown = "none" if loss is None else f"{loss:.3g}"
        return ok, f"LoRA adapter written, {metrics.get('global_step')} steps, train loss {shown}"
    e = pd.read_parquet(run / "eval.parquet")
    models = sorted(e["model"].unique())
    return models == ["base", "trained"], f"eval.parquet models {models}, {len(e)} rows"


def peak_of(line: str) -> int | None:
    found = re.search(r"cuda peak [\d.]+ MiB \((\d+) B\)", line)
    return int(found.group(1)) if found else None


# -- the checks -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (CUDA checks SKIP)")
    ap.add_argument("--out", help="work folder (default: a new temporary one); holds model/, run/, cache/")
    args = ap.parse_args(argv)
    start = time.time()
    out = Path(args.out or tempfile.mkdtemp(prefix="iwsi-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    report = Report()

    import torch

    from iwsi.config import ConfigError
    from iwsi.device import pick_engine, torch_device

    gpu = args.device != "cpu"
    print(f"gpu_check: torch {torch.__version__}, cuda available {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "") + f", work folder {out}")
    # device resolution (in this process)
    if gpu:
        try:
            report.check(torch_device(args.device).type == "cuda", f"device={args.device} resolves to a CUDA device")
        except ConfigError as err:
            report("FAIL", f"device={args.device} refused: {err}")
            return 1
        try:
            pick_engine("iwsi", "cuda")
            report("FAIL", "engine=iwsi was accepted on cuda (the native engine is CPU-only)")
        except ConfigError:
            report("PASS", "engine=iwsi refused on cuda (names engine=vllm / hf)")
        report("PASS", f"engine=auto on cuda picks {pick_engine('auto', 'cuda')}")
    else:
        if torch.cuda.is_available():
            report("SKIP", "device=cuda refused without a GPU: a GPU is visible")
        else:
            try:
                torch_device("cuda")
                report("FAIL", "device=cuda was accepted without a GPU")
            except ConfigError:
                report("PASS", "device=cuda refused without a GPU (ConfigError, no CPU fallback)")
        report("SKIP", "device=cuda resolves, engine=iwsi refused on cuda, engine=auto on cuda: no GPU (--device cpu)")

    model_dir = out / "model"
    facts = build_model(model_dir)
    report("PASS", f"tiny Llama built in {model_dir}: {facts['params']:,} parameters, vocab {facts['vocab']}, "
                   f"planted answer of {facts['chain']} tokens")
    if gpu:
        from iwsi.models import load_model

        m = load_model(str(model_dir), device=torch_device(args.device))
        p = next(m.parameters())
        report.check(p.device.type == "cuda" and p.dtype == torch.bfloat16,
                     f"load_model on {args.device}: {p.dtype} on {p.device}")
        del m, p
        torch.cuda.empty_cache()
    else:
        report("SKIP", "load_model on cuda (bf16): no GPU")

    run = out / "run"
    for group, until in GROUPS:
        left = BUDGET_S + 60 - (time.time() - start)
        t0 = time.time()
        try:
            code, err, line = run_group(run, args.device, model_dir, until, timeout=max(30.0, left))
        except subprocess.TimeoutExpired:
            report("FAIL", f"{group} on {args.device}: no result within {left:.0f} s")
            break
        took = time.time() - t0
        if code != 0:
            report("FAIL", f"{group} on {args.device}: iwsi run exit {code} ({took:.0f} s): {err.strip()[-600:]}")
            break
        ok, what = artefacts(run, group)
        report.check(ok, f"{group} on {args.device} ({took:.0f} s): {what}")
        peak = peak_of(line)
        if gpu:
            logged = line.split("; ", 1)[-1] if line else "no log line"
            report.check(bool(peak), f"{group} process used the GPU: {logged}")
        elif peak is None and line.endswith("cuda not used"):
            report("SKIP", f"{group} process used the GPU (max_memory_allocated > 0): no GPU (logged: cuda not used)")
        else:
            report("FAIL", f"{group} process: expected the log line 'cuda not used' on the CPU, got {line!r}")
    total = time.time() - start
    if total > BUDGET_S:
        report("FAIL", f"the check took {total:.0f} s, over its {BUDGET_S} s budget")
    print(f"gpu_check: {report.count('PASS')} PASS, {report.count('FAIL')} FAIL, {report.count('SKIP')} SKIP "
          f"in {total:.0f} s on {args.device}; run directory {run}")
    return 1 if report.count("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main())

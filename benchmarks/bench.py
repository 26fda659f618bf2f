"""Benchmark the iwsi engine (`engine: iwsi`, iwsi/engines/native.py) against the reference (`engine: hf`,
iwsi/engines/hf.py) on the IWSI workload.

    iwsi bench generate [--json] [--questions 64 --samples 8 --max-new-tokens 96 --batch-size 256]
    iwsi bench score [--json]
    iwsi bench sweep [--batch-sizes 16,32,64,128,256,512] [--plot docs/engine_throughput.png]
    iwsi bench train [--json] [--examples 256 --epochs 1]
    iwsi bench run [--json] [--config configs/demo.yaml] [--repo CHECKOUT]   (benchmarks/bench_run.py)
    iwsi bench profile [--what generate|score] [--json]   (benchmarks/bench_profile.py)
    PYTHONPATH=. .venv/bin/python -m benchmarks.bench generate --json

Workload: the embedded model (SmolLM2-135M-Instruct), the synthetic-arith few-shot prefix
(`iwsi.prompts.few_shot_prefix("number")`, ~290 tokens) and synthetic-arith pool questions;
sampling at the pipeline's defaults (temperature 0.8, top-p 1, top-k off, stop strings of
`iwsi.prompts.STOP`). Both engines run in one process, alternating. Tokens/s counts the tokens of
the returned (stop-cut) completions, re-tokenised, over wall time, so padding and tokens after a
stop string are not counted for either engine. `greedy_match` is the share of rows whose greedy
completion is identical between the engines. Peak RSS is the process high-water mark (VmHWM),
reset before each measured run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Callable

import torch

from benchmarks import bench_run
from iwsi.usage import peak_rss_mb, reset_peak_rss

# ----------------------------------------------------------------------------------------------
# Workload


def workload(num_questions: int, seed: int = 0) -> tuple[str, list[str], list[str], list[str]]:
    """(prefix, question suffixes, gold answers, stop strings) of the synthetic-arith sampling stage."""
    from iwsi.datasets import load_splits
    from iwsi.prompts import STOP, few_shot_prefix, question_suffix

    pool = load_splits("synthetic-arith", None, num_questions, 1, 1, seed=seed).pool[:num_questions]
    return (few_shot_prefix("number"), [question_suffix(q.question) for q in pool],
            [q.gold or "" for q in pool], list(STOP))


def load(model_name: str = "embedded"):
    from iwsi.models import load_model, load_tokenizer

    return load_model(model_name), load_tokenizer(model_name)


# ----------------------------------------------------------------------------------------------
# Measurement helpers


def load_average() -> float:
    return os.getloadavg()[0]


def timed(run: Callable[[], object]) -> tuple[object, float, float]:
    """(result, seconds, peak RSS in MB) of one call."""
    reset_peak_rss()
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start, peak_rss_mb()


def count_tokens(tokenizer, texts: list[str]) -> int:
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0


def _engines() -> dict[str, object]:
    from iwsi import engines

    return {name: engines.get(name) for name in ("iwsi", "hf")}  # the two torch engines this benchmark compares


# ----------------------------------------------------------------------------------------------
# Generation


def bench_generate(questions: int = 64, samples: int = 8, max_new_tokens: int = 96, batch_size: int = 256,
                   hf_batch_size: int = 64, temperature: float = 0.8, rounds: int = 1, greedy: bool = True,
                   seed: int = 0, model=None, tokenizer=None, engines: tuple[str, ...] = ("hf", "iwsi")) -> dict:
    """Tokens/s of each engine on the same sampling workload (alternating rounds), their ratio,
    peak RSS, and the share of rows with identical greedy output."""
    if model is None:
        model, tokenizer = load()
    prefix, suffixes, _, stop = workload(questions, seed)
    mods = _engines()
    sizes = {"iwsi": batch_size, "hf": hf_batch_size}
    totals = {name: [0, 0.0, 0.0] for name in engines}  # tokens, seconds, peak RSS MB
    loads = []
    for r in range(rounds):
        for name in engines:
            loads.append(load_average())
            out, seconds, rss = timed(lambda: mods[name].sample(
                model, tokenizer, prefix, suffixes, samples, temperature=temperature, max_new_tokens=max_new_tokens,
                stop=stop, seed=seed + r, batch_size=sizes[name]))
            totals[name][0] += count_tokens(tokenizer, [t for row in out for t in row])
            totals[name][1] += seconds
            totals[name][2] = max(totals[name][2], rss)
    result = _generate_summary(totals, dict(questions=questions, samples=samples, max_new_tokens=max_new_tokens,
                                            batch_size=batch_size, hf_batch_size=hf_batch_size,
                                            temperature=temperature, rounds=rounds))
    if "iwsi" in engines:  # the ceiling: a plain forward of batch_size rows x 1 token, in the same run
        result["forward_tok_s"] = round(forward_tok_s(model, batch_size), 1)
        result["ratio_to_forward"] = round(result["iwsi_tok_s"] / result["forward_tok_s"], 3)
    result["load_average_1m"] = round(max(loads), 2)
    if greedy and set(engines) == {"hf", "iwsi"}:
        result.update(greedy_agreement(model, tokenizer, prefix, suffixes, stop, max_new_tokens,
                                       batch_size, hf_batch_size))
    return result


def _generate_summary(totals: dict[str, list], settings: dict) -> dict:
    out: dict = {"workload": settings, "threads": torch.get_num_threads(), "dtype": "model"}
    for name, (tokens, seconds, rss) in totals.items():
        out[f"{name}_tokens"] = tokens
        out[f"{name}_seconds"] = round(seconds, 2)
        out[f"{name}_tok_s"] = round(tokens / seconds, 1) if seconds else 0.0
        out[f"{name}_peak_rss_mb"] = round(rss, 1)
    if "hf" in totals and "iwsi" in totals and out["hf_tok_s"]:
        out["ratio"] = round(out["iwsi_tok_s"] / out["hf_tok_s"], 2)
    return out


def forward_tok_s(model, rows: int, width: int = 1, reps: int = 5) -> float:
    """Tokens/s of the plain transformers forward on [rows, width] token ids (no cache): the ceiling."""
    ids = torch.randint(100, 1000, (rows, width))
    with torch.inference_mode():
        model(input_ids=ids, use_cache=False)  # warm-up
        start = time.perf_counter()
        for _ in range(reps):
            model(input_ids=ids, use_cache=False)
    return rows * width * reps / (time.perf_counter() - start)


def greedy_agreement(model, tokenizer, prefix: str, suffixes: list[str], stop: list[str], max_new_tokens: int,
                     batch_size: int, hf_batch_size: int) -> dict:
    """Greedy completions of every question through both engines; share of identical rows.

    Also the two yardsticks that say what a bf16 mismatch means: `hf_self_match`, engine: hf
    against itself at batch size 8 (its left padding and GEMM shapes change bf16 rounding, so it
    flips near-tied argmaxes too), and `greedy_match_fp32`, both engines on a float32 copy."""
    from iwsi.models import load_model

    out = {"greedy_rows": len(suffixes)}
    ref = _greedy("hf", model, tokenizer, prefix, suffixes, stop, max_new_tokens, hf_batch_size)
    mine = _greedy("iwsi", model, tokenizer, prefix, suffixes, stop, max_new_tokens, batch_size)
    out["greedy_match"] = _share_same(ref, mine)
    out["hf_self_match"] = _share_same(ref, _greedy("hf", model, tokenizer, prefix, suffixes, stop, max_new_tokens, 8))
    if model.dtype != torch.float32:
        fp32 = load_model("embedded", dtype=torch.float32)
        out["greedy_match_fp32"] = _share_same(
            _greedy("hf", fp32, tokenizer, prefix, suffixes, stop, max_new_tokens, hf_batch_size),
            _greedy("iwsi", fp32, tokenizer, prefix, suffixes, stop, max_new_tokens, batch_size))
    return out


def _greedy(name: str, model, tokenizer, prefix: str, suffixes: list[str], stop: list[str], max_new_tokens: int,
            batch_size: int) -> list[str]:
    rows = _engines()[name].sample(model, tokenizer, prefix, suffixes, 1, temperature=0.0,
                                   max_new_tokens=max_new_tokens, stop=stop, seed=0, batch_size=batch_size)
    return [r[0] for r in rows]


def _share_same(a: list[str], b: list[str]) -> float:
    return round(sum(x == y for x, y in zip(a, b)) / len(a), 4) if a else float("nan")


# ----------------------------------------------------------------------------------------------
# Scoring


def score_items(questions: int, per_question: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """DS-weight-like items: few-shot prompt + question as context, a rationale of varied length as completion."""
    prefix, suffixes, golds, _ = workload(questions, seed)
    rng = random.Random(seed)
    words = "first we add the numbers then we take away the rest and split what is left equally".split()
    contexts, completions = [], []
    for suffix, gold in zip(suffixes, golds):
        for _ in range(per_question):
            reasoning = " ".join(rng.choice(words) for _ in range(rng.randint(4, 60)))
            contexts.append(prefix + suffix)
            completions.append(f" {reasoning}. The answer is {gold}.\n\n")
    return contexts, completions


def bench_score(questions: int = 64, per_question: int = 8, span: str = "completion", token_budget: int = 8192,
                rounds: int = 2, with_hf: bool = True, model=None, tokenizer=None) -> dict:
    """Scoring tokens/s of the iwsi engine against a plain unpadded forward over the same tokens."""
    from iwsi.engines import hf as hf_engine
    from iwsi.engines import native as engine
    from iwsi.engines.hf import encode_pair

    if model is None:
        model, tokenizer = load()
    contexts, completions = score_items(questions, per_question)
    ids = [encode_pair(tokenizer, c, x, "full")[0] for c, x in zip(contexts, completions)]
    tokens = sum(len(i) for i in ids)
    best = {"iwsi": float("inf"), "forward": float("inf")}
    rss = {"iwsi": 0.0, "forward": 0.0}
    loads = []
    for _ in range(rounds):  # alternate; keep the best time of each
        loads.append(load_average())
        _, t, m = timed(lambda: engine.score(model, tokenizer, contexts, completions, span=span,
                                             token_budget=token_budget))
        best["iwsi"], rss["iwsi"] = min(best["iwsi"], t), max(rss["iwsi"], m)
        _, t, m = timed(lambda: plain_forward(model, ids, token_budget))
        best["forward"], rss["forward"] = min(best["forward"], t), max(rss["forward"], m)
    out = {"items": len(ids), "tokens": tokens, "span": span, "token_budget": token_budget,
           "iwsi_tok_s": round(tokens / best["iwsi"], 1), "forward_tok_s": round(tokens / best["forward"], 1),
           "iwsi_peak_rss_mb": round(rss["iwsi"], 1), "forward_peak_rss_mb": round(rss["forward"], 1),
           "load_average_1m": round(max(loads), 2)}
    out["ratio_to_forward"] = round(out["iwsi_tok_s"] / out["forward_tok_s"], 3)
    if with_hf:
        _, t, _ = timed(lambda: hf_engine.score(model, tokenizer, contexts, completions, span=span))
        out["hf_tok_s"] = round(tokens / t, 1)
    return out


@torch.inference_mode()
def plain_forward(model, ids: list[list[int]], token_budget: int) -> None:
    """The ceiling: the same tokens, concatenated and cut into equal rows (no padding), through the
    transformers forward in batches of about `token_budget` tokens."""
    stream = torch.tensor([t for seq in ids for t in seq])
    width = sorted(len(i) for i in ids)[len(ids) // 2]  # median item length
    rows = stream[: len(stream) // width * width].view(-1, width)
    per_batch = max(1, token_budget // width)
    for start in range(0, rows.shape[0], per_batch):
        model(input_ids=rows[start:start + per_batch])
    tail = stream[rows.numel():]
    if tail.numel():
        model(input_ids=tail[None])


# ----------------------------------------------------------------------------------------------
# Training


def train_examples(tokenizer, count: int, seed: int = 0) -> list[dict]:
    """SFT examples like the train stage's: synthetic-arith questions with their reference rationales."""
    from iwsi.datasets import load_splits
    from iwsi.train import encode_example

    pool = load_splits("synthetic-arith", None, count, count, 1, seed=seed).valid[:count]
    return [encode_example(tokenizer, q.question, q.rationale or "") for q in pool]


def bench_train(examples: int = 256, epochs: int = 1, batch_size: int | None = None) -> dict:
    """LoRA training tokens/s with the train stage's arguments (bf16 autocast where the CPU has it,
    length-grouped batches) against the Trainer's defaults (float32, random batches), same data,
    batch size, LoRA and seed, and against its compute floor, a plain forward + backward of the same
    batches (`plain_forward_backward`). Tokens = non-padding tokens of every example seen."""
    import tempfile
    from dataclasses import replace as dc_replace

    from accelerate.state import AcceleratorState
    from transformers import TrainingArguments

    from iwsi.config import RunConfig
    from iwsi.models import load_model, load_tokenizer
    from iwsi.train import WeightedTrainer, _LengthDataset, collate, lora_model, training_args

    tokenizer = load_tokenizer("embedded")
    data = train_examples(tokenizer, examples)
    cfg = RunConfig(epochs=epochs, batch_size=batch_size or RunConfig().batch_size, grad_accum=1)
    tokens = epochs * sum(len(e["input_ids"]) for e in data)
    result: dict = {"examples": len(data), "epochs": epochs, "batch_size": cfg.batch_size, "tokens": tokens}
    with tempfile.TemporaryDirectory() as tmp:
        ours = dc_replace(training_args(cfg, Path(tmp), len(data)), save_strategy="no", disable_tqdm=True)
        defaults = TrainingArguments(output_dir=tmp, num_train_epochs=epochs, learning_rate=cfg.learning_rate,
                                     per_device_train_batch_size=cfg.batch_size, use_cpu=True, report_to="none",
                                     save_strategy="no", seed=cfg.seed, remove_unused_columns=False,
                                     disable_tqdm=True)
        for name, args in (("defaults", defaults), ("iwsi", ours)):
            AcceleratorState._reset_state(reset_partial_state=True)  # mixed precision is process-global
            model = lora_model(load_model("embedded", dtype=torch.float32), cfg)
            trainer = WeightedTrainer(model=model, args=args, train_dataset=_LengthDataset(data),
                                      data_collator=lambda b: collate(b, tokenizer.pad_token_id))
            _, seconds, rss = timed(trainer.train)
            result.update({f"{name}_seconds": round(seconds, 2), f"{name}_tok_s": round(tokens / seconds, 1),
                           f"{name}_peak_rss_mb": round(rss, 1), f"{name}_bf16": bool(args.bf16),
                           f"{name}_sampling": str(args.train_sampling_strategy)})
        AcceleratorState._reset_state(reset_partial_state=True)
        model = lora_model(load_model("embedded", dtype=torch.float32), cfg)
        _, seconds, rss = timed(lambda: plain_forward_backward(model, data, tokenizer.pad_token_id, cfg.batch_size,
                                                               epochs, bool(ours.bf16)))
        result.update(plain_seconds=round(seconds, 2), plain_tok_s=round(tokens / seconds, 1),
                      plain_peak_rss_mb=round(rss, 1))
    result["ratio"] = round(result["iwsi_tok_s"] / result["defaults_tok_s"], 2)
    result["iwsi_over_plain"] = round(result["iwsi_tok_s"] / result["plain_tok_s"], 3)
    result["load_average_1m"] = round(load_average(), 2)
    return result


def plain_forward_backward(model, data: list[dict], pad_id: int, batch_size: int, epochs: int, bf16: bool) -> None:
    """The compute floor of a LoRA step: forward + backward of the same length-grouped batches (same padding,
    same autocast), without the Trainer, optimizer, scheduler or logging."""
    from iwsi.train import collate

    order = sorted(range(len(data)), key=lambda i: len(data[i]["input_ids"]))
    batches = [[data[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]
    model.train()
    for _ in range(epochs):
        for batch in batches:
            inputs = collate(batch, pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                            labels=inputs["labels"])
            out.loss.backward()
            model.zero_grad(set_to_none=True)


# ----------------------------------------------------------------------------------------------
# Batch-size sweep and plot


def bench_sweep(batch_sizes: list[int], hf_batch_sizes: list[int], questions: int = 64, samples: int = 8,
                max_new_tokens: int = 96) -> list[dict]:
    """Generation tokens/s of each engine at several batch sizes (one model load)."""
    model, tokenizer = load()
    rows = []
    for name, sizes in (("iwsi", batch_sizes), ("hf", hf_batch_sizes)):
        for size in sizes:
            res = bench_generate(questions, samples, max_new_tokens, batch_size=size, hf_batch_size=size,
                                 greedy=False, model=model, tokenizer=tokenizer, engines=(name,))
            rows.append({"engine": name, "batch_size": size, "tok_s": res[f"{name}_tok_s"],
                         "peak_rss_mb": res[f"{name}_peak_rss_mb"], "load_average_1m": res["load_average_1m"]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def plot_sweep(rows: list[dict], path: str) -> str:
    """Write a PNG (plotly + kaleido) of tokens/s against batch size; fall back to a Markdown table."""
    try:
        import plotly.graph_objects as go

        fig = go.Figure()
        for name in dict.fromkeys(r["engine"] for r in rows):
            pts = [r for r in rows if r["engine"] == name]
            fig.add_scatter(x=[r["batch_size"] for r in pts], y=[r["tok_s"] for r in pts], mode="lines+markers",
                            name=f"engine: {name}")
        sizes = sorted({r["batch_size"] for r in rows})
        fig.update_layout(title="Generation throughput, SmolLM2-135M bf16, 2 CPU cores",
                          xaxis=dict(title="batch size (rows generated together)", type="log", tickvals=sizes,
                                     ticktext=[str(v) for v in sizes]),
                          yaxis=dict(title="tokens / s (stop-cut completions)", rangemode="tozero"),
                          width=720, height=420)
        fig.write_image(path)
        return path
    except Exception as err:  # kaleido missing or no browser: a table is the documented fallback
        table = Path(path).with_suffix(".md")
        lines = ["| engine | batch size | tokens/s |", "|---|---|---|"]
        lines += [f"| {r['engine']} | {r['batch_size']} | {r['tok_s']} |" for r in rows]
        table.write_text("\n".join(lines) + "\n")
        print(f"plot failed ({err}); wrote {table}")
        return str(table)


# ----------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iwsi bench", description="Benchmark the iwsi engine against engine: hf.")
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generate", help="sampling tokens/s, engine: iwsi vs engine: hf")
    g.add_argument("--questions", type=int, default=64)
    g.add_argument("--samples", type=int, default=8)
    g.add_argument("--max-new-tokens", type=int, default=96)
    g.add_argument("--batch-size", type=int, default=256)
    g.add_argument("--hf-batch-size", type=int, default=64, help="hf_engine's default batch size")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--rounds", type=int, default=1)
    g.add_argument("--no-greedy", action="store_true", help="skip the greedy-agreement check")
    g.add_argument("--iwsi-only", action="store_true", help="measure only the iwsi engine")
    s = sub.add_parser("score", help="scoring tokens/s vs a plain unpadded forward")
    s.add_argument("--questions", type=int, default=64)
    s.add_argument("--per-question", type=int, default=8)
    s.add_argument("--span", choices=["full", "completion"], default="completion")
    s.add_argument("--token-budget", type=int, default=8192)
    s.add_argument("--rounds", type=int, default=2)
    s.add_argument("--no-hf", action="store_true")
    w = sub.add_parser("sweep", help="tokens/s against batch size, with a plot")
    w.add_argument("--batch-sizes", default="16,32,64,128,256,512")
    w.add_argument("--hf-batch-sizes", default="16,64,256")
    w.add_argument("--questions", type=int, default=64)
    w.add_argument("--samples", type=int, default=8)
    w.add_argument("--max-new-tokens", type=int, default=96)
    w.add_argument("--plot", default="docs/engine_throughput.png")
    f = sub.add_parser("profile", help="where a decode step's (or scoring's) time goes, under torch.profiler")
    f.add_argument("--what", dest="what_profile", choices=["generate", "score"], default="generate")
    f.add_argument("--questions", type=int, default=64)
    f.add_argument("--samples", type=int, default=8)
    f.add_argument("--per-question", type=int, default=8)
    f.add_argument("--max-new-tokens", type=int, default=96)
    f.add_argument("--batch-size", type=int, default=256)
    r = sub.add_parser("run", help="the demo end to end: per-stage wall/CPU time, tokens, peak RSS, first insight")
    bench_run.add_arguments(r)
    t = sub.add_parser("train", help="LoRA training tokens/s, train-stage arguments vs Trainer defaults")
    t.add_argument("--examples", type=int, default=256)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=None, help="default: the config's batch_size")
    for q in (g, s, w, t, f, r):
        q.add_argument("--json", action="store_true", help="print one JSON object")
    for q in (g, s):  # engines side by side, tok/s and tok per CPU-second (benchmarks/bench_engines.py)
        q.add_argument("--engines", help="comma-separated: iwsi, vllm, hf (e.g. iwsi,vllm,hf)")
        q.add_argument("--threads", type=int, default=2, help="with --engines: threads (cores) per engine")
        q.add_argument("--model", default="embedded", help="with --engines: model (a local HF dir on a GPU machine)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.what == "run":
        return bench_run.main(args)
    if getattr(args, "engines", None):
        from benchmarks.bench_engines import bench_engines, human

        per_q = args.samples if args.what == "generate" else args.per_question
        res = bench_engines(args.what, args.engines.split(","), args.threads, args.questions, per_q,
                            getattr(args, "max_new_tokens", 96), args.rounds, model=args.model)
        print(json.dumps(res) if args.json else human(res))
        return 0
    if args.what == "profile":
        from benchmarks.bench_profile import human, profile_generate, profile_score

        res = (profile_generate(args.questions, args.samples, args.max_new_tokens, args.batch_size)
               if args.what_profile == "generate" else profile_score(args.questions, args.per_question))
        print(json.dumps(res) if args.json else human(res))
        return 0
    if args.what == "generate":
        res = bench_generate(args.questions, args.samples, args.max_new_tokens, args.batch_size, args.hf_batch_size,
                             args.temperature, args.rounds, greedy=not args.no_greedy,
                             engines=("iwsi",) if args.iwsi_only else ("hf", "iwsi"))
    elif args.what == "score":
        res = bench_score(args.questions, args.per_question, args.span, args.token_budget, args.rounds,
                          with_hf=not args.no_hf)
    elif args.what == "train":
        res = bench_train(args.examples, args.epochs, args.batch_size)
    else:
        rows = bench_sweep(_ints(args.batch_sizes), _ints(args.hf_batch_sizes), args.questions, args.samples,
                           args.max_new_tokens)
        res = {"rows": rows, "plot": plot_sweep(rows, args.plot)}
    print(json.dumps(res) if args.json else _human(res))
    return 0


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _human(res: dict) -> str:
    lines = [f"{k}: {v}" for k, v in res.items() if k != "rows"]
    if "iwsi_tok_s" in res and "hf_tok_s" in res and "ratio" in res:
        lines.append(f"=> engine: iwsi {res['iwsi_tok_s']} tok/s vs engine: hf {res['hf_tok_s']} tok/s "
                     f"({res['ratio']}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

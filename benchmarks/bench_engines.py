"""The engines side by side: `iwsi` (the native engine), `vllm` and `hf` on the same sampling or
scoring workload in one process, reporting tokens per second and tokens per CPU-second. The names
are the config's `engine` values (iwsi/config.py: ENGINES).

    iwsi bench generate --engines iwsi,vllm,hf [--threads 2] [--questions 64 --samples 8 --max-new-tokens 96]
    iwsi bench score --engines iwsi,vllm [--threads 2]
    iwsi bench generate --engines vllm,hf --model /models/Meta-Llama-3-8B      # on a GPU machine

Same workload and token counting as `iwsi bench generate|score` (benchmarks/bench.py). CPU-seconds are the
user + system time of this process and all its children (vLLM's engine-core and worker processes)
over the measured call, so an engine that burns a second core for its scheduler pays for it.
vLLM's start-up is reported apart (`vllm_startup_s`). Engines alternate each round. Prints JSON
with `--json`; records `uptime` load and the CPU model so figures can be checked against machine load.
"""
from __future__ import annotations

import os
import platform
import time

import psutil
import torch

from benchmarks.bench import count_tokens, load_average, score_items, workload
from iwsi import engines as engine_registry
from iwsi.engines.hf import encode_pair

ENGINES = tuple(engine_registry.ENGINES)  # the config's concrete engines ("auto" picks one of them)


def cpu_seconds() -> float:
    """User + system CPU time of this process and every live child process."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_model() -> str:
    from iwsi.usage import cpu_info

    return cpu_info()["model_name"] or platform.processor()


def handles(engines: list[str], threads: int, model_name: str = "embedded") -> tuple[dict, object, dict]:
    """(engine name → model handle, tokenizer, extra facts) with one load per kind, on the GPU
    when one is visible (hf, vLLM) — the iwsi engine is CPU-only and refuses there."""
    from iwsi.config import RunConfig
    from iwsi.device import torch_device
    from iwsi.models import load_model, load_tokenizer

    torch.set_num_threads(threads)
    device = torch_device("auto")
    if device.type != "cpu" and "iwsi" in engines:
        raise SystemExit("iwsi bench: the iwsi engine runs on the CPU only and a GPU is visible: "
                         "bench vllm,hf here, or hide the GPU (CUDA_VISIBLE_DEVICES=)")
    model, tokenizer = load_model(model_name, device=device), load_tokenizer(model_name)
    out, facts = {}, {}
    for name in engines:  # each engine's load hook: the shared torch model, or its own instance (timed)
        start = time.perf_counter()
        cfg = RunConfig(model=model_name, device=device.type, engine=name)
        out[name] = engine_registry.get(name).load(cfg, base=lambda: model, threads=threads)
        if out[name] is not model:
            facts[f"{name}_startup_s"] = round(time.perf_counter() - start, 1)
    return out, tokenizer, facts


def measure(call) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = call()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def bench_engines(what: str, engines: list[str], threads: int = 2, questions: int = 64, samples: int = 8,
                  max_new_tokens: int = 96, rounds: int = 1, temperature: float = 0.8, model: str = "embedded") -> dict:
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise SystemExit(f"iwsi bench: unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    load_before = os.getloadavg()
    models, tokenizer, facts = handles(engines, threads, model)
    totals = {name: [0, 0.0, 0.0] for name in engines}  # tokens, wall s, CPU s
    if what == "generate":
        prefix, suffixes, _, stop = workload(questions)
    else:
        contexts, completions = score_items(questions, samples)
        tokens = sum(len(encode_pair(tokenizer, c, x, "full")[0]) for c, x in zip(contexts, completions))
    for name in engines:  # warm-up, untimed: first-call caches (token pieces, vLLM's compiled shapes)
        mod = engine_registry.get(name)
        if what == "generate":
            mod.sample(models[name], tokenizer, prefix, suffixes[:2], 2, temperature=temperature, max_new_tokens=8,
                       stop=stop, seed=0)
        else:
            mod.score(models[name], tokenizer, contexts[:4], completions[:4], span="full")
    for r in range(rounds):
        for name in engines:
            mod = engine_registry.get(name)
            if what == "generate":
                out, wall, cpu = measure(lambda: mod.sample(models[name], tokenizer, prefix, suffixes, samples,
                                                            temperature=temperature, max_new_tokens=max_new_tokens,
                                                            stop=stop, seed=r))
                n = count_tokens(tokenizer, [t for row in out for t in row])
            else:
                _, wall, cpu = measure(lambda: mod.score(models[name], tokenizer, contexts, completions, span="full"))
                n = tokens
            totals[name] = [totals[name][0] + n, totals[name][1] + wall, totals[name][2] + cpu]
    shape = (dict(questions=questions, samples=samples, max_new_tokens=max_new_tokens) if what == "generate"
             else dict(questions=questions, per_question=samples, tokens=tokens))
    res = {"what": what, "workload": {**shape, "rounds": rounds}, "threads": threads, "cpu": cpu_model(),
           "cores": len(os.sched_getaffinity(0)), "model": model, "load_before": [round(x, 2) for x in load_before],
           **facts}
    for name, (n, wall, cpu) in totals.items():
        res[name] = {"tokens": n, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                     "tok_s": round(n / wall, 1), "tok_per_cpu_s": round(n / cpu, 1) if cpu else None}
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    res["load_average_1m"] = round(max(load_average(), load_before[0]), 2)
    return res


def human(res: dict) -> str:
    lines = [f"{res['what']}: {res['workload']}, {res['threads']} threads, {res['cpu']} ({res['cores']} cores), "
             f"load {res['load_before']} → {res['load_after']}"]
    if "vllm_startup_s" in res:
        lines.append(f"vllm start-up: {res['vllm_startup_s']} s")
    lines += [f"{name:7s} {v['tok_s']:8.1f} tok/s  {v['tok_per_cpu_s']} tok/CPU-s  ({v['tokens']} tokens, "
              f"{v['seconds']} s, {v['cpu_seconds']} CPU-s)" for name, v in res.items() if isinstance(v, dict)
              and "tok_s" in v]
    return "\n".join(lines)

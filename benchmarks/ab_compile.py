"""A/B of `torch.compile` (inductor, dynamic batch) on the iwsi engine's per-layer work, alternating in one
process: eager (the engine as it is) against the same decoder layer with its projections, norms, rotary,
SiLU gate and residual adds compiled (attention and KV-cache writes stay eager). Reports sampling tokens/s
per variant on 64 q x 8 samples x <= 96 tokens (batch 256), the compile time (first call), and whether the
greedy outputs of both variants agree on 64 rows.

    PYTHONPATH=. .venv/bin/python benchmarks/ab_compile.py [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from benchmarks.bench import count_tokens, load, load_average, workload
from iwsi.engines import attention
from iwsi.engines import native as engine


def _pre(x, norm1, qkv, cos, sin, eps: float, hq: int, hkv: int, d: int):
    n, t, _ = x.shape
    qk, v = F.linear(attention.rms_norm(x, norm1, eps), qkv).split([(hq + hkv) * d, hkv * d], dim=-1)
    q, k = attention.apply_rope(qk.view(n, t, hq + hkv, d), cos, sin).split([hq, hkv], dim=2)
    return q, k, v.view(n, t, hkv, d)


def _post(x, a, o, norm2, gate_up, down, eps: float):
    x = x + F.linear(a.to(x.dtype), o)
    gate, up = F.linear(attention.rms_norm(x, norm2, eps), gate_up).chunk(2, dim=-1)
    return x + F.linear(F.silu(gate) * up, down)


pre_c = torch.compile(_pre, dynamic=True)
post_c = torch.compile(_post, dynamic=True)


def compiled_run_layers(net, ids, positions, attend):
    net.ensure_rope(int(positions.max()) + 1)
    cos, sin = net.cos[positions], net.sin[positions]
    x = net.embed[ids]
    for i, layer in enumerate(net.layers):
        if layer.qkv_bias is not None:
            raise NotImplementedError("q/k/v bias")
        q, k, v = pre_c(x, layer.norm1, layer.qkv, cos, sin, net.eps, net.heads, net.kv_heads, net.head_dim)
        x = post_c(x, attend(i, q, k, v), layer.o, layer.norm2, layer.gate_up, layer.down, net.eps)
    return x


EAGER = engine.run_layers
VARIANTS = {"eager": EAGER, "compiled": compiled_run_layers}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    model, tok = load()
    prefix, suffixes, _, stop = workload(64)
    res: dict = {"dtype": str(model.dtype), "threads": torch.get_num_threads(), "load_before": round(load_average(), 2)}
    for v, fn in VARIANTS.items():  # warm-up (the compiled variant compiles here)
        engine.run_layers = fn
        start = time.perf_counter()
        engine.sample(model, tok, prefix, suffixes[:4], 4, temperature=0.8, max_new_tokens=8, stop=stop, seed=0)
        res[f"{v}_first_call_s"] = round(time.perf_counter() - start, 1)
    totals = {v: [0, 0.0] for v in VARIANTS}
    for r in range(args.rounds):
        for v, fn in VARIANTS.items():
            engine.run_layers = fn
            start = time.perf_counter()
            out = engine.sample(model, tok, prefix, suffixes, 8, temperature=0.8, max_new_tokens=96, stop=stop,
                                seed=r, batch_size=256)
            totals[v][1] += time.perf_counter() - start
            totals[v][0] += count_tokens(tok, [t for row in out for t in row])
            print(v, r, round(time.perf_counter() - start, 2), flush=True)
    for v, (tokens, seconds) in totals.items():
        res[f"{v}_tok_s"] = round(tokens / seconds, 1)
    greedy = {}
    for v, fn in VARIANTS.items():
        engine.run_layers = fn
        greedy[v] = [r[0] for r in engine.sample(model, tok, prefix, suffixes, 1, temperature=0.0,
                                                  max_new_tokens=96, stop=stop, seed=0, batch_size=256)]
    engine.run_layers = EAGER
    res["greedy_rows"] = len(suffixes)
    res["greedy_same"] = sum(a == b for a, b in zip(greedy["eager"], greedy["compiled"])) / len(suffixes)
    res["ratio"] = round(res["compiled_tok_s"] / res["eager_tok_s"], 3)
    res["load_after"] = round(load_average(), 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

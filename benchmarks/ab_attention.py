"""A/B of the cascade attention inside the iwsi engine, alternating in one process: PyTorch's CPU flash
kernel over the longest row's width (the engine before session 5) against the batched matmuls of
`iwsi.attention.softmax_attention` over the slots' whole, contiguous width (now). Reports sampling
tokens/s per variant (64 q x 8 samples x <= 96 tokens, bf16) and the greedy agreement of each variant
with `engine: hf` on 64 rows, beside hf's agreement with itself at batch 8.

    PYTHONPATH=. .venv/bin/python benchmarks/ab_attention.py [--rounds 2] [--greedy]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.bench import _greedy, _share_same, count_tokens, load, load_average, workload
from iwsi.engines import attention
from iwsi.engines import native as engine

_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


def flash_shared(q5, keys, values, scale):
    n, t, hkv, g, d = q5.shape
    flat = q5.permute(2, 0, 1, 3, 4).reshape(1, hkv, n * t * g, d)
    out, lse = _flash(flat, keys, values, 0.0, False, scale=scale)
    return out.view(hkv, n, t * g, d).transpose(0, 1), lse.view(hkv, n, t * g).transpose(0, 1)


def flash_own(q5, keys, values, bias, scale):
    n, t, hkv, g, d = q5.shape
    rows = q5.permute(0, 2, 1, 3, 4).reshape(n, hkv, t * g, d)
    return _flash(rows, keys, values, 0.0, False, attn_mask=bias, scale=scale)


def old_step_logits(self):
    """engine.Sampler._step_logits before session 5: attention over the longest row's width."""
    slots, n = self.slots, len(self.slots.rows)
    lengths = slots.lengths[:n]
    width = int(lengths.max()) + 1
    bias = attention.mask_bias((torch.arange(width)[None, :] <= lengths[:, None])[:, None, :], 1, self.net.dtype)
    rows = torch.arange(n)

    def attend(i, q, k, v):
        slots.keys[i][rows, :, lengths] = k[:, 0]
        slots.values[i][rows, :, lengths] = v[:, 0]
        return engine.cascade_attention(q, self._shared(i), slots.keys[i][:n, :, :width],
                                        slots.values[i][:n, :, :width], bias, self.net.scale)

    positions = len(self.plan.shared) + lengths[:, None]
    hidden = engine.run_layers(self.net, slots.last[:n, None], positions, attend)
    slots.lengths[:n] += 1
    return engine.final_logits(self.net, hidden[:, 0], self.choose.logit_scale)


VARIANTS = {"flash": (flash_shared, flash_own, old_step_logits),
            "matmul": (attention.shared_part, attention.own_part, engine.Sampler._step_logits)}


def use(variant: str) -> None:
    attention.shared_part, attention.own_part, engine.Sampler._step_logits = VARIANTS[variant]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--greedy", action="store_true")
    args = p.parse_args()
    model, tok = load()
    prefix, suffixes, _, stop = workload(64)
    res: dict = {"threads": torch.get_num_threads(), "load_before": round(load_average(), 2)}
    engine.sample(model, tok, prefix, suffixes[:2], 2, temperature=0.8, max_new_tokens=4, stop=stop, seed=0)
    totals = {v: [0, 0.0] for v in VARIANTS}
    for r in range(args.rounds):
        for v in VARIANTS:
            use(v)
            start = time.perf_counter()
            out = engine.sample(model, tok, prefix, suffixes, 8, temperature=0.8, max_new_tokens=96, stop=stop,
                                seed=r, batch_size=256)
            totals[v][1] += time.perf_counter() - start
            totals[v][0] += count_tokens(tok, [t for row in out for t in row])
    for v, (tokens, seconds) in totals.items():
        res[f"{v}_tok_s"] = round(tokens / seconds, 1)
    if args.greedy:
        ref = _greedy("hf", model, tok, prefix, suffixes, stop, 96, 64)
        res["hf_self_match"] = _share_same(ref, _greedy("hf", model, tok, prefix, suffixes, stop, 96, 8))
        for v in VARIANTS:
            use(v)
            res[f"{v}_greedy_match"] = _share_same(ref, _greedy("iwsi", model, tok, prefix, suffixes, stop, 96, 256))
    res["load_after"] = round(load_average(), 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

"""Attention pieces of the fast engine (`iwsi.engine`): RMSNorm, rotary embedding, cascade attention.

Cascade (shared-prefix) attention: every row's keys are split into a part shared by all rows (the
few-shot prefix, stored once) and the row's own part (question suffix + generated tokens). The
shared part is one batched matmul of *all* rows' queries against the shared keys; the own part is
a masked batched matmul per row. Each part returns an unnormalised output with its running max and
sum of exponentials, and `merge` combines them exactly by log-sum-exp, so the result equals
ordinary softmax attention over the concatenated keys without copying the prefix into every row.

Numerics follow transformers' Llama code where it matters for greedy equality: RMSNorm in float32,
rotary embedding in the model dtype; attention scores and softmax are float32 (keys/values are
kept in float32, which holds bf16 values exactly).

Run the checks with `PYTHONPATH=. .venv/bin/python -m pytest tests/test_engine.py`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Partial(NamedTuple):
    """Unnormalised attention over one part of the keys: sum_j exp(s_j - m) v_j, m, sum_j exp(s_j - m)."""
    out: Tensor   # [..., D]
    max: Tensor   # [..., 1]
    sum: Tensor   # [..., 1]


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Llama RMSNorm: normalise in float32, cast back, then scale (same rounding as transformers)."""
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rope_tables(inv_freq: Tensor, scaling: float, length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos/sin for positions 0..length-1, computed exactly like transformers' rotary embedding."""
    freqs = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq.float()[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * scaling).to(dtype), (emb.sin() * scaling).to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x: [..., tokens, heads, D]; cos/sin: [..., tokens, D] (broadcast over heads)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.unsqueeze(-2) + rotated * sin.unsqueeze(-2)


def _partial(scores: Tensor, values: Tensor) -> Partial:
    """Unnormalised softmax-weighted values. scores: [..., Q, K] float32 (may hold -inf); values: [..., K, D]."""
    m = scores.amax(-1, keepdim=True).clamp_min(-1e30)  # a fully masked row gives exp(-inf) = 0, not NaN
    p = torch.exp(scores - m)
    return Partial(torch.matmul(p, values), m, p.sum(-1, keepdim=True))


def merge(a: Partial, b: Partial) -> Tensor:
    """Exact softmax attention over the union of both key sets (log-sum-exp merge)."""
    m = torch.maximum(a.max, b.max)
    wa, wb = torch.exp(a.max - m), torch.exp(b.max - m)
    return (a.out * wa + b.out * wb) / (a.sum * wa + b.sum * wb)


def shared_part(q: Tensor, keys: Tensor, values: Tensor, scale: float) -> Partial:
    """All rows' queries against the shared keys in one matmul per KV head.

    q: [n, t, Hkv, G, D] float32; keys/values: [Hkv, P, D]. Returns tensors shaped [n, t, Hkv, G, ...]."""
    n, t, hkv, g, d = q.shape
    flat = q.permute(2, 0, 1, 3, 4).reshape(hkv, n * t * g, d)
    part = _partial(torch.matmul(flat, keys.transpose(1, 2)) * scale, values)
    return Partial(*(x.view(hkv, n, t, g, -1).permute(1, 2, 0, 3, 4) for x in part))


def own_part(q: Tensor, keys: Tensor, values: Tensor, allowed: Tensor, scale: float) -> Partial:
    """Each row's queries against its own keys.

    q: [n, t, Hkv, G, D] float32; keys/values: [n, Hkv, T, D]; allowed: [n, t, T] bool (causal and
    length mask). Returns tensors shaped [n, t, Hkv, G, ...]."""
    n, t, hkv, g, d = q.shape
    rows = q.permute(0, 2, 1, 3, 4).reshape(n, hkv, t * g, d)
    scores = torch.matmul(rows, keys.transpose(2, 3)) * scale  # [n, Hkv, t*G, T]
    bias = torch.zeros(allowed.shape, dtype=scores.dtype).masked_fill_(~allowed, float("-inf"))
    scores = scores.view(n, hkv, t, g, -1) + bias[:, None, :, None, :]
    part = _partial(scores.view(n, hkv, t * g, -1), values)
    return Partial(*(x.view(n, hkv, t, g, -1).permute(0, 2, 1, 3, 4) for x in part))


def cascade_attention(q: Tensor, shared: tuple[Tensor, Tensor] | None, own_k: Tensor, own_v: Tensor,
                      allowed: Tensor, scale: float) -> Tensor:
    """Attention of q ([n, t, H, D]) over shared prefix keys + each row's own keys -> [n, t, H*D] float32."""
    n, t, h, d = q.shape
    hkv = own_k.shape[1]
    q5 = q.float().view(n, t, hkv, h // hkv, d)  # query head i uses KV head i // G, as repeat_kv does
    own = own_part(q5, own_k, own_v, allowed, scale)
    if shared is None or shared[0].shape[1] == 0:
        out = own.out / own.sum
    else:
        out = merge(shared_part(q5, shared[0], shared[1], scale), own)
    return out.reshape(n, t, h * d)


def reference_attention(q: Tensor, keys: Tensor, values: Tensor, allowed: Tensor, scale: float) -> Tensor:
    """Ordinary softmax attention (for tests). q: [n, t, H, D]; keys/values: [n, Hkv, T, D]; allowed: [n, t, T]."""
    n, t, h, d = q.shape
    g = h // keys.shape[1]
    k = keys.float().repeat_interleave(g, dim=1)
    v = values.float().repeat_interleave(g, dim=1)
    scores = torch.matmul(q.float().transpose(1, 2), k.transpose(2, 3)) * scale
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(n, t, h * d)

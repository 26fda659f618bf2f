"""Attention pieces of the fast engine (`iwsi.engines.native`): RMSNorm, rotary embedding, cascade attention.

Cascade (shared-prefix) attention: every row's keys are split into a part shared by all rows (the
few-shot prefix, stored once) and the row's own part (question suffix + generated tokens). The
shared part is one attention of *all* rows' queries against the shared keys, the own part a masked
attention per row; both are two batched matmuls with a float32 softmax (`softmax_attention`, faster
here than PyTorch's CPU flash kernel for few queries per row). Both return their log-sum-exp, and
the merge is exact: the result equals ordinary softmax attention over the concatenated keys, without
copying the prefix into every row. With the G query heads of a KV head folded into the query axis
neither needs a GQA expansion.

Numerics follow transformers' Llama code where it matters for greedy equality: RMSNorm in float32,
rotary embedding and KV cache in the model dtype, scores rounded to the model
dtype by the matmul (as transformers' eager attention), softmax and its sums in float32.

Run the checks with `PYTHONPATH=. .venv/bin/python -m pytest tests/test_engine.py`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Llama RMSNorm: normalise in float32, cast back, then scale (same rounding as transformers)."""
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def rope_tables(inv_freq: Tensor, scaling: float, length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sign-folded sin for positions 0..length-1, computed like transformers' rotary embedding.

    The sin table's first half is negated so that rotate_half(x) * sin == roll(x, D/2) * signed_sin."""
    freqs = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq.float()[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = (emb.cos() * scaling).to(dtype), (emb.sin() * scaling).to(dtype)
    half = sin.shape[-1] // 2
    return cos, torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """x: [..., tokens, heads, D]; cos/signed_sin: [..., tokens, D] (broadcast over heads)."""
    rolled = torch.roll(x, x.shape[-1] // 2, dims=-1)
    return x * cos.unsqueeze(-2) + rolled * signed_sin.unsqueeze(-2)


def mask_bias(allowed: Tensor, groups: int, dtype: torch.dtype) -> Tensor:
    """Additive attention bias for `own_part` from allowed [n, t, T] (bool): [n, 1, t*G, T], or
    [n, 1, 1, T] (broadcast over the G query heads) when t == 1. Build once, reuse for every layer."""
    n, t, width = allowed.shape
    bias = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, float("-inf"))
    if t == 1:
        return bias[:, None]
    return bias[:, None, :, None, :].expand(n, 1, t, groups, width).reshape(n, 1, t * groups, width)


def softmax_attention(rows: Tensor, keys: Tensor, values: Tensor, bias: Tensor | None,
                      scale: float) -> tuple[Tensor, Tensor]:
    """Attention of rows [b, Hkv, r, D] over keys/values [b or 1, Hkv, T, D] -> (out [b, Hkv, r, D] in
    float32, log-sum-exp [b, Hkv, r]). Two batched matmuls with the softmax between them in float32:
    with a few queries per row (a decode step has G) PyTorch's CPU flash kernel took twice as long for
    the own part and 1.15x for the shared part (docs/benchmarks.md, "profile"). The scores are rounded
    to the model dtype by the matmul (in bf16 as in transformers' eager attention)."""
    scores = torch.matmul(rows, keys.transpose(-1, -2)).float().mul_(scale)
    if bias is not None:
        scores.add_(bias)
    top = scores.amax(-1, keepdim=True)
    weights = scores.sub_(top).exp_()
    total = weights.sum(-1, keepdim=True)
    out = torch.matmul(weights.to(values.dtype), values).float().div_(total)
    return out, (top + total.log())[..., 0]


def shared_part(q5: Tensor, keys: Tensor, values: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """All rows' queries against the shared keys: one attention per KV head.

    q5: [n, t, Hkv, G, D]; keys/values: [1, Hkv, P, D]. Returns output [n, Hkv, t*G, D] and
    log-sum-exp [n, Hkv, t*G] (strided views in the `own_part` layout)."""
    n, t, hkv, g, d = q5.shape
    flat = q5.permute(2, 0, 1, 3, 4).reshape(1, hkv, n * t * g, d)
    out, lse = softmax_attention(flat, keys, values, None, scale)
    return out.view(hkv, n, t * g, d).transpose(0, 1), lse.view(hkv, n, t * g).transpose(0, 1)


def own_part(q5: Tensor, keys: Tensor, values: Tensor, bias: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """Each row's queries against its own keys (query heads of a KV head folded into the query axis).

    q5: [n, t, Hkv, G, D]; keys/values: [n, Hkv, T, D]; bias from `mask_bias`."""
    n, t, hkv, g, d = q5.shape
    rows = q5.permute(0, 2, 1, 3, 4).reshape(n, hkv, t * g, d)
    return softmax_attention(rows, keys, values, bias, scale)


def cascade_attention(q: Tensor, shared: tuple[Tensor, Tensor] | None, own_k: Tensor, own_v: Tensor,
                      bias: Tensor, scale: float) -> Tensor:
    """Attention of q ([n, t, H, D]) over shared prefix keys + each row's own keys -> [n, t, H*D].

    Both parts come with their log-sum-exp (`shared_part`, `own_part`); the merge weights the
    shared part by sigmoid(lse_shared - lse_own), i.e. its share of the total softmax mass."""
    n, t, h, d = q.shape
    hkv = own_k.shape[1]
    q5 = q.view(n, t, hkv, h // hkv, d)  # query head i uses KV head i // G, as repeat_kv does
    out, lse = own_part(q5, own_k, own_v, bias, scale)
    if shared is not None and shared[0].shape[2] > 0:
        s_out, s_lse = shared_part(q5, shared[0], shared[1], scale)
        weight = torch.sigmoid(s_lse - lse).unsqueeze(-1)
        out = torch.lerp(out.float(), s_out.float(), weight).to(q.dtype)
    return out.view(n, hkv, t, h // hkv, d).permute(0, 2, 1, 3, 4).reshape(n, t, h * d)


def reference_attention(q: Tensor, keys: Tensor, values: Tensor, allowed: Tensor, scale: float) -> Tensor:
    """Ordinary softmax attention (for tests). q: [n, t, H, D]; keys/values: [n, Hkv, T, D]; allowed: [n, t, T]."""
    n, t, h, d = q.shape
    g = h // keys.shape[1]
    k = keys.float().repeat_interleave(g, dim=1)
    v = values.float().repeat_interleave(g, dim=1)
    scores = torch.matmul(q.float().transpose(1, 2), k.transpose(2, 3)) * scale
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(n, t, h * d)

"""The iwsi engine (`engine: iwsi`): batched CoT sampling and NLL scoring for Llama-family models on CPU.

Same API as the reference `iwsi.engines.hf`:

    sample(model, tokenizer, prefix, questions, num_samples, *, temperature, max_new_tokens, stop,
           seed, top_p=1.0, top_k=0, batch_size=256, progress=None) -> list[list[str]]
    score(model, tokenizer, contexts, completions, *, span="full", batch_size=64, progress=None,
          token_budget=8192) -> list[tuple[mean_nll, n_tokens]]

How sampling is fast (the model's own weights, our own forward with torch ops):
* The token prefix shared by every prompt (the few-shot prefix) is run once; its keys/values are
  stored once and attended by all rows with cascade attention (`iwsi.engines.attention`): one fused
  attention of every row's queries against the shared keys, merged with the other parts by
  log-sum-exp.
* Each question's suffix is run once (several questions per forward); its keys/values are copied
  into the row buffers of that question's samples (a few dozen tokens each), so a decode step is
  one masked attention per row over suffix + generated tokens plus the shared-prefix part.
* Continuous batching: rows live in preallocated per-slot KV buffers; a row that hits EOS, a stop
  string or `max_new_tokens` leaves at once (a row from the tail moves into its slot, so active
  rows stay contiguous) and pending samples refill the batch.
* Sampling: 1/temperature is folded into the final norm, one fused softmax per step, and one
  uniform per row inverts the CDF (chunk sums, then a cumsum inside one chunk) instead of
  `torch.multinomial` over the whole vocabulary, which costs more than the forward on CPU.
Compute runs in the model's dtype (`iwsi.models.load_model` picks bf16 on CPUs with AMX/AVX-512
bf16, float32 elsewhere), KV cache included; attention accumulates in float32. Results are
reproducible for a fixed seed and batch layout. Peak memory is bounded by `KV_TOKEN_BUDGET` row
tokens for sampling and `token_budget` tokens per scoring batch, not by dataset size.

Weights are read afresh on every call (fused q/k/v and gate/up copies), so a model fine-tuned
between calls is always sampled as it is now. Unsupported architectures fall back to engine hf, whose
hooks (load, load_trained, release, gpus) this engine shares.

Benchmark: `iwsi bench generate` (benchmarks/bench.py, source checkout); tests: `pytest tests/test_engine.py`.
"""
from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from iwsi.engines import hf as hf_engine
from iwsi.engines.attention import apply_rope, cascade_attention, mask_bias, rms_norm, rope_tables
from iwsi.engines.hf import EMBEDDING, Progress, Scores, cut_at_stop, encode_spans, mean_pooled, span_means

KV_TOKEN_BUDGET = 65_536   # row-slot tokens (slots x longest row) kept in the sampling KV cache
PREFILL_TOKENS = 2_048     # question-suffix tokens per prefill forward
SAMPLE_CHUNKS = 64         # vocabulary chunks for the two-level inverse-CDF draw
SUPPORTED_TYPES = ("llama", "qwen2", "mistral")
STATIC_ROPE = ("default", "linear", "llama3", "yarn")

Attend = Callable[[int, Tensor, Tensor, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------
# The network as plain tensors


@dataclass
class Layer:
    norm1: Tensor
    qkv: Tensor               # q, k, v projections stacked: [(H + 2 Hkv) * D, E]
    qkv_bias: Tensor | None
    o: Tensor
    norm2: Tensor
    gate_up: Tensor           # gate and up projections stacked: [2 I, E]
    down: Tensor


@dataclass
class Net:
    layers: list[Layer]
    embed: Tensor
    norm: Tensor
    lm_head: Tensor
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    inv_freq: Tensor
    rope_scaling: float
    dtype: torch.dtype
    cos: Tensor = field(default=None)  # type: ignore[assignment]
    sin: Tensor = field(default=None)  # type: ignore[assignment]  # sign-folded, see rope_tables

    @property
    def scale(self) -> float:
        return self.head_dim ** -0.5

    @property
    def groups(self) -> int:
        return self.heads // self.kv_heads

    def ensure_rope(self, length: int) -> None:
        """Grow the cos/sin tables to cover positions 0..length-1."""
        if self.cos is None or self.cos.shape[0] < length:
            self.cos, self.sin = rope_tables(self.inv_freq, self.rope_scaling, max(length, 1024), self.dtype)


def unsupported_reason(model) -> str | None:
    """Why the fast engine cannot run `model` (None if it can)."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in SUPPORTED_TYPES:
        return f"model_type {getattr(cfg, 'model_type', None)!r} is not Llama-like"
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "mlp_bias", False):
        return "MLP is not a bias-free SiLU-gated MLP"
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return "sliding-window attention"
    rope = getattr(model.model, "rotary_emb", None)
    if rope is None or getattr(rope, "rope_type", "default") not in STATIC_ROPE:
        return f"rope type {getattr(rope, 'rope_type', None)!r}"
    if model.dtype not in (torch.bfloat16, torch.float32):
        return f"dtype {model.dtype}"
    return None


def build_net(model) -> Net:
    """Read the weights of a Llama-family `*ForCausalLM` (fresh copies of the fused projections)."""
    cfg, body = model.config, model.model
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    layers = [_layer(block) for block in body.layers]
    return Net(layers=layers, embed=body.embed_tokens.weight.detach(), norm=body.norm.weight.detach(),
               lm_head=model.lm_head.weight.detach(), heads=heads, kv_heads=kv_heads,
               head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
               eps=body.norm.variance_epsilon, inv_freq=body.rotary_emb.inv_freq.detach(),
               rope_scaling=float(body.rotary_emb.attention_scaling), dtype=model.dtype)


def _layer(block) -> Layer:
    att, mlp = block.self_attn, block.mlp
    projections = (att.q_proj, att.k_proj, att.v_proj)
    bias = None
    if att.q_proj.bias is not None:  # Qwen2-style q/k/v bias
        bias = torch.cat([p.bias.detach() for p in projections])
    return Layer(norm1=block.input_layernorm.weight.detach(),
                 qkv=torch.cat([p.weight.detach() for p in projections]), qkv_bias=bias,
                 o=att.o_proj.weight.detach(), norm2=block.post_attention_layernorm.weight.detach(),
                 gate_up=torch.cat([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()]),
                 down=mlp.down_proj.weight.detach())


def run_layers(net: Net, ids: Tensor, positions: Tensor, attend: Attend) -> Tensor:
    """Decoder stack on ids [n, t] at absolute positions [n, t]; `attend(i, q, k, v)` does layer i's
    attention (and any caching). Returns the last hidden states [n, t, E] before the final norm."""
    net.ensure_rope(int(positions.max()) + 1)
    cos, sin = net.cos[positions], net.sin[positions]
    x = net.embed[ids]
    for i, layer in enumerate(net.layers):
        q, k, v = _qkv(net, layer, rms_norm(x, layer.norm1, net.eps), cos, sin)
        x = x + F.linear(attend(i, q, k, v).to(x.dtype), layer.o)
        x = x + _mlp(layer, rms_norm(x, layer.norm2, net.eps))
    return x


def _qkv(net: Net, layer: Layer, h: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Projected q [n, t, H, D], k and v [n, t, Hkv, D]; rotary embedding on q and k in one pass."""
    n, t, _ = h.shape
    d, hq, hkv = net.head_dim, net.heads, net.kv_heads
    qk, v = F.linear(h, layer.qkv, layer.qkv_bias).split([(hq + hkv) * d, hkv * d], dim=-1)
    q, k = apply_rope(qk.view(n, t, hq + hkv, d), cos, sin).split([hq, hkv], dim=2)
    return q, k, v.view(n, t, hkv, d)


def _mlp(layer: Layer, h: Tensor) -> Tensor:
    gate, up = F.linear(h, layer.gate_up).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, layer.down)


def final_logits(net: Net, hidden: Tensor, scale: float = 1.0) -> Tensor:
    """Logits in the model dtype (as transformers computes them), for hidden states [..., E].

    `scale` (1 / temperature) is folded into the final norm weight, so tempered logits cost no
    extra pass over [rows, vocab]; the rounding this moves is of the size bf16 logits already have."""
    weight = net.norm if scale == 1.0 else (net.norm.float() * scale).to(net.norm.dtype)
    return F.linear(rms_norm(hidden, weight, net.eps), net.lm_head)


def causal_allowed(lengths: Tensor, width: int) -> Tensor:
    """[n, width, width] mask: query i sees key j iff j <= i and j < length (right padding)."""
    j = torch.arange(width)
    return (j[None, :] <= j[:, None])[None] & (j[None, None, :] < lengths[:, None, None])


def causal_attention(net: Net, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Plain causal self-attention of q [n, t, H, D] over k/v [n, t, Hkv, D] -> [n, t, H*D].
    Right padding needs no mask: real positions never see later (padding) positions."""
    n, t = q.shape[:2]
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         is_causal=True, enable_gqa=True, scale=net.scale)
    return out.transpose(1, 2).reshape(n, t, -1)


def forward_logits(net: Net, ids: Tensor) -> Tensor:
    """Plain causal forward of ids [n, t] through the engine's own layers (for tests): logits [n, t, V]."""
    n, t = ids.shape
    return final_logits(net, run_layers(net, ids, torch.arange(t).expand(n, t), causal_attend(net)))


def causal_attend(net: Net) -> Attend:
    """run_layers' `attend` for a plain causal forward (no shared prefix; the layer index is unused)."""
    def attend(i, q, k, v):
        return causal_attention(net, q, k, v)
    return attend


# ----------------------------------------------------------------------------------------------
# Token choice


class Chooser:
    """Next-token choice from logits already multiplied by `logit_scale` (1 / temperature):
    greedy, or temperature / top-k / top-p sampling with a seeded generator."""

    def __init__(self, temperature: float, top_k: int, top_p: float, seed: int):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.gen = torch.Generator().manual_seed(seed)

    @property
    def logit_scale(self) -> float:
        return 1.0 / self.temperature if self.temperature > 0 else 1.0

    def __call__(self, scaled_logits: Tensor) -> Tensor:
        if self.temperature <= 0:
            return chunked_argmax(scaled_logits)
        if self.top_k > 0 or self.top_p < 1.0:
            return self._filtered(scaled_logits)
        return draw(torch.softmax(scaled_logits, -1, dtype=torch.float32), self.gen)

    def _filtered(self, scores: Tensor) -> Tensor:
        """Top-k and/or top-p (transformers' order and tie rules) on a candidate set, then draw."""
        k = self.top_k if self.top_k > 0 else scores.shape[-1]
        values, index = torch.topk(scores.float(), min(k, scores.shape[-1]), dim=-1)  # sorted, descending
        probs = torch.softmax(values, -1)
        if self.top_p < 1.0:
            cum = probs.flip(-1).cumsum(-1).flip(-1)  # mass of this token and all below it
            drop = cum <= 1.0 - self.top_p  # transformers: ascending cumulative mass <= 1 - top_p
            drop[:, 0] = False
            probs = probs.masked_fill(drop, 0.0)
        return index.gather(1, draw(probs, self.gen)[:, None])[:, 0]


def chunked_argmax(logits: Tensor, chunks: int = SAMPLE_CHUNKS) -> Tensor:
    """argmax(-1) with first-index tie breaking, faster than torch.argmax on wide CPU rows."""
    n, vocab = logits.shape
    if vocab % chunks:
        return logits.argmax(-1)
    blocks = logits.view(n, chunks, vocab // chunks)
    best = blocks.amax(-1).argmax(-1)  # first chunk holding the maximum
    return best * (vocab // chunks) + blocks[torch.arange(n), best].argmax(-1)


def draw(weights: Tensor, gen: torch.Generator) -> Tensor:
    """One draw per row, proportional to non-negative `weights` [n, V], by inverting the CDF:
    one uniform per row picks a vocabulary chunk from the chunk sums, then a token inside it
    (torch.multinomial over a 49k vocabulary costs more than the model's forward on CPU)."""
    n, vocab = weights.shape
    chunks = SAMPLE_CHUNKS if vocab % SAMPLE_CHUNKS == 0 and vocab >= 4 * SAMPLE_CHUNKS else 1
    blocks = weights.view(n, chunks, vocab // chunks)
    totals = blocks.sum(-1).cumsum(-1)                                   # [n, chunks]
    # 1 - U lies in (0, 1]: the target is never 0, so it cannot land on a leading zero-weight chunk
    target = (1.0 - torch.rand(n, 1, generator=gen, dtype=totals.dtype)) * totals[:, -1:]
    chunk = torch.searchsorted(totals, target).clamp_max(chunks - 1)     # [n, 1]
    before = torch.where(chunk > 0, totals.gather(1, (chunk - 1).clamp_min(0)), torch.zeros_like(target))
    inner = blocks[torch.arange(n), chunk[:, 0]]
    pick = torch.searchsorted(inner.cumsum(-1), target - before).clamp_max(vocab // chunks - 1)
    pick = _skip_zero_weight(inner, pick)
    return chunk[:, 0] * (vocab // chunks) + pick[:, 0]


def _skip_zero_weight(weights: Tensor, pick: Tensor) -> Tensor:
    """Rounding can land a draw on a zero-weight (filtered) token; use the chunk's heaviest token then."""
    bad = weights.gather(1, pick) <= 0
    if not bool(bad.any()):
        return pick
    best = weights.argmax(-1, keepdim=True)
    return torch.where(bad, best, pick)


# ----------------------------------------------------------------------------------------------
# Sampling


@dataclass
class Plan:
    """Tokenised prompts split into the shared token prefix and one suffix per question."""
    shared: list[int]
    suffixes: list[list[int]]


def plan_prompts(tokenizer, prefix: str, questions: list[str]) -> Plan:
    """Tokenise each full prompt exactly as hf_engine does, then split off the longest common token
    prefix (so token boundaries equal the reference's; every suffix keeps at least one token)."""
    prompts = [tokenizer(prefix + q)["input_ids"] for q in questions]
    common = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for p in prompts[1:]:
        common = next((i for i in range(common) if p[i] != first[i]), common)
    return Plan(shared=first[:common], suffixes=[p[common:] for p in prompts])


@dataclass(eq=False)  # hashed by identity: pending rows are grouped by chunk
class Chunk:
    """Prefilled question suffixes: their KV per layer, lengths, and next-token logits."""
    keys: list[Tensor]       # per layer [q, Hkv, s_max, D]
    values: list[Tensor]
    lengths: Tensor          # [q]
    logits: Tensor           # [q, V]


@dataclass(eq=False)
class Group:
    """A question being sampled: its prefill chunk and how many of its samples are unfinished."""
    question: int
    chunk: Chunk
    local: int               # index in `chunk`
    left: int                # samples not finished


@dataclass
class Row:
    group: Group
    sample: int
    tokens: list[int] = field(default_factory=list)
    text: str = ""


class Slots:
    """KV buffers of the batch: per row slot the keys/values of its question's suffix (copied from
    the prefill chunk on admission) followed by its generated tokens; active rows occupy slots 0..n-1.

    The suffix (~40 tokens) is copied, the prefix (~300 tokens) never is. One masked attention per
    row over suffix + own tokens replaced a separate per-question suffix part with a third
    log-sum-exp merge: faster per layer in a micro-benchmark, the same end to end within noise,
    and less code (docs/benchmarks.md)."""

    def __init__(self, net: Net, slots: int, new_tokens: int, suffix_width: int):
        row_shape = (slots, net.kv_heads, suffix_width + new_tokens, net.head_dim)
        self.keys = [torch.zeros(row_shape, dtype=net.dtype) for _ in net.layers]
        self.values = [torch.zeros(row_shape, dtype=net.dtype) for _ in net.layers]
        self.lengths = torch.zeros(slots, dtype=torch.long)        # suffix + generated tokens in the cache
        self.last = torch.zeros(slots, dtype=torch.long)           # last chosen token, not yet in the cache
        self.rows: list[Row] = []

    @property
    def free(self) -> int:
        return self.lengths.shape[0] - len(self.rows)

    def admit(self, rows: list[Row], first: Tensor) -> None:
        """Put rows (with their first chosen token) into the next free slots, each starting from its
        question's suffix keys/values (rows come grouped by prefill chunk: one copy per chunk and layer)."""
        start = len(self.rows)
        for chunk, members in _by_chunk(rows):
            local = torch.tensor([r.group.local for r in members])
            dst = slice(start, start + len(members))
            width = chunk.keys[0].shape[2]
            for layer in range(len(self.keys)):
                self.keys[layer][dst, :, :width] = chunk.keys[layer][local]
                self.values[layer][dst, :, :width] = chunk.values[layer][local]
            self.lengths[dst] = chunk.lengths[local]
            start += len(members)
        self.last[len(self.rows):start] = first
        self.rows += rows

    def remove(self, done: list[int]) -> None:
        """Drop finished rows; survivors from the tail move into the holes, so only moved rows are copied."""
        n, gone = len(self.rows), set(done)
        size = n - len(gone)
        holes = [i for i in sorted(gone) if i < size]
        movers = [i for i in range(size, n) if i not in gone]
        if holes:
            src, dst = torch.tensor(movers), torch.tensor(holes)
            width = int(self.lengths[src].max())
            for buf in self.keys + self.values:
                buf[dst, :, :width] = buf[src, :, :width]
            for t in (self.lengths, self.last):
                t[dst] = t[src]
            for h, m in zip(holes, movers):
                self.rows[h] = self.rows[m]
        del self.rows[size:]


def _by_chunk(rows: list[Row]) -> list[tuple[Chunk, list[Row]]]:
    """Consecutive rows grouped by prefill chunk (rows are queued chunk by chunk)."""
    out: list[tuple[Chunk, list[Row]]] = []
    for row in rows:
        if out and out[-1][0] is row.group.chunk:
            out[-1][1].append(row)
        else:
            out.append((row.group.chunk, [row]))
    return out


class Sampler:
    """One `sample()` call: shared prefix once, suffix chunks, continuous batching over row slots."""

    def __init__(self, net: Net, tokenizer, plan: Plan, num_samples: int, chooser: Chooser,
                 max_new_tokens: int, stop: list[str], eos: set[int], batch_size: int, progress: Progress):
        self.net, self.tokenizer, self.plan, self.m = net, tokenizer, plan, num_samples
        self.choose, self.max_new, self.stop, self.eos, self.progress = chooser, max_new_tokens, stop, eos, progress
        suffix_width = max(len(s) for s in plan.suffixes)
        slots = max(1, min(batch_size, KV_TOKEN_BUDGET // (suffix_width + max_new_tokens),
                           len(plan.suffixes) * num_samples))
        self.slots = Slots(net, slots, max_new_tokens, suffix_width)
        self.pieces = token_pieces(tokenizer, net.lm_head.shape[0])
        self.shared = self._prefill_shared()
        self.pending: deque[Row] = deque()
        self.next_question = 0
        self.results: list[list[str]] = [[""] * num_samples for _ in plan.suffixes]

    def run(self) -> list[list[str]]:
        while True:
            self._fill()
            if not self.slots.rows:
                return self.results
            self._finish(self.choose(self._step_logits()))

    # -- prefill -----------------------------------------------------------------------------

    def _prefill_shared(self) -> list[tuple[Tensor, Tensor]] | None:
        """Run the shared prefix once; keep its keys/values [1, Hkv, P, D] per layer."""
        ids = self.plan.shared
        if not ids:
            return None
        out: list[tuple[Tensor, Tensor]] = []

        def attend(i: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            out.append((k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()))
            return causal_attention(self.net, q, k, v)

        run_layers(self.net, torch.tensor([ids]), torch.arange(len(ids))[None], attend)
        return out

    def _prefill_chunk(self, questions: list[int]) -> Chunk:
        """Run several question suffixes (right-padded) against the shared prefix in one forward."""
        suffixes = [self.plan.suffixes[q] for q in questions]
        lengths = torch.tensor([len(s) for s in suffixes])
        width = int(lengths.max())
        ids = torch.tensor([s + [0] * (width - len(s)) for s in suffixes])
        positions = len(self.plan.shared) + torch.arange(width).expand(len(suffixes), width)
        bias = mask_bias(causal_allowed(lengths, width), self.net.groups, self.net.dtype)
        keys: list[Tensor] = []
        values: list[Tensor] = []

        def attend(i: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            k, v = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()  # [q, Hkv, s, D]
            keys.append(k)
            values.append(v)
            return cascade_attention(q, self._shared(i), k, v, bias, self.net.scale)

        hidden = run_layers(self.net, ids, positions, attend)
        last = hidden[torch.arange(len(suffixes)), lengths - 1]
        return Chunk(keys, values, lengths, final_logits(self.net, last, self.choose.logit_scale))

    def _shared(self, layer: int) -> tuple[Tensor, Tensor] | None:
        """Layer's shared-prefix keys/values [1, Hkv, P, D], if there is a shared prefix."""
        return None if self.shared is None else self.shared[layer]

    # -- batch management --------------------------------------------------------------------

    def _fill(self) -> None:
        """Admit pending samples into free slots (prefilling more questions when needed)."""
        while self.slots.free and (self.pending or self.next_question < len(self.plan.suffixes)):
            if not self.pending:
                self._queue_questions()
            take = [self.pending.popleft() for _ in range(min(self.slots.free, len(self.pending)))]
            first = torch.cat([self.choose(self._first_logits(chunk, group)) for chunk, group in _by_chunk(take)])
            start = len(self.slots.rows)
            self.slots.admit(take, first)
            self._retire([start + j for j, tok in enumerate(first.tolist()) if self._append(start + j, tok)])

    @staticmethod
    def _first_logits(chunk: Chunk, rows: list[Row]) -> Tensor:
        return chunk.logits[torch.tensor([r.group.local for r in rows])]

    def _queue_questions(self) -> None:
        """Prefill enough next questions to fill the free slots (bounded by PREFILL_TOKENS)."""
        want = max(1, math.ceil(self.slots.free / self.m))
        picked: list[int] = []
        tokens = 0
        while self.next_question < len(self.plan.suffixes) and len(picked) < want:
            size = len(self.plan.suffixes[self.next_question])
            if picked and tokens + size > PREFILL_TOKENS:
                break
            picked.append(self.next_question)
            tokens += size
            self.next_question += 1
        chunk = self._prefill_chunk(picked)
        for local, q in enumerate(picked):
            group = Group(q, chunk, local, left=self.m)
            self.pending.extend(Row(group, s) for s in range(self.m))

    def _step_logits(self) -> Tensor:
        """One decode step for all active rows: feed each row's last token, return next-token logits."""
        slots, n = self.slots, len(self.slots.rows)
        lengths = slots.lengths[:n]
        # Attend over the slots' whole width (masked past each row's length), not the longest row's:
        # slicing the width makes the keys strided, and the matmuls then copy them, which cost 3x the
        # attention itself (docs/benchmarks.md, "profile"); the leading rows slice stays contiguous.
        width = slots.keys[0].shape[2]
        bias = mask_bias((torch.arange(width)[None, :] <= lengths[:, None])[:, None, :], 1, self.net.dtype)
        rows = torch.arange(n)

        def attend(i: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            slots.keys[i][rows, :, lengths] = k[:, 0]
            slots.values[i][rows, :, lengths] = v[:, 0]
            return cascade_attention(q, self._shared(i), slots.keys[i][:n], slots.values[i][:n], bias, self.net.scale)

        positions = len(self.plan.shared) + lengths[:, None]
        hidden = run_layers(self.net, slots.last[:n, None], positions, attend)
        slots.lengths[:n] += 1
        return final_logits(self.net, hidden[:, 0], self.choose.logit_scale)

    def _finish(self, chosen: Tensor) -> None:
        self.slots.last[:len(chosen)] = chosen
        done = [i for i, tok in enumerate(chosen.tolist()) if self._append(i, tok)]
        self._retire(done)

    def _append(self, slot: int, token: int) -> bool:
        """Record a chosen token; True if the row is finished (EOS, stop string, length)."""
        row = self.slots.rows[slot]
        if token in self.eos:
            return True
        row.tokens.append(token)
        seen = len(row.text)
        row.text += self.pieces[token]
        if any(s in row.text[max(0, seen - len(s) + 1):] for s in self.stop) and self._really_stopped(row):
            return True
        return len(row.tokens) >= self.max_new

    def _really_stopped(self, row: Row) -> bool:
        # Per-token pieces can differ from a joint decode (e.g. spaces); confirm before stopping.
        return any(s in self.tokenizer.decode(row.tokens, skip_special_tokens=True) for s in self.stop)

    def _retire(self, done: list[int]) -> None:
        finished = 0
        for slot in done:
            row = self.slots.rows[slot]
            text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
            self.results[row.group.question][row.sample] = cut_at_stop(text, self.stop)
            row.group.left -= 1
            finished += row.group.left == 0
        if done:
            self.slots.remove(done)
        if finished and self.progress:
            self.progress(finished)


_PIECES: dict[tuple[int, int], list[str]] = {}


def token_pieces(tokenizer, vocab: int) -> list[str]:
    """Text of every token id on its own (cached per tokenizer), for cheap stop-string checks."""
    key = (id(tokenizer), vocab)
    if key not in _PIECES:
        known = min(vocab, len(tokenizer))
        pieces = tokenizer.batch_decode([[i] for i in range(known)], skip_special_tokens=True)
        _PIECES[key] = pieces + [""] * (vocab - known)
    return _PIECES[key]


def eos_ids(model, tokenizer) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def _fallback(model) -> bool:
    device = next(model.parameters()).device
    if device.type != "cpu":  # its tensors and attention ops are CPU-only; never move the model back silently
        raise ValueError(f"engine iwsi runs on the CPU only and the model is on {device}: "
                         "use engine=vllm (or engine=hf) on a GPU, or device=cpu")
    reason = unsupported_reason(model)
    if reason:
        warnings.warn(f"engine iwsi: {reason}; falling back to engine hf", stacklevel=3)
    return reason is not None


@torch.inference_mode()
def sample(model, tokenizer, prefix: str, questions: list[str], num_samples: int, *, temperature: float,
           max_new_tokens: int, stop: list[str], seed: int, top_p: float = 1.0, top_k: int = 0,
           batch_size: int = 256, progress: Progress = None) -> list[list[str]]:
    """`num_samples` completions of `prefix + q` for each question (temperature 0 = greedy), each cut
    at the first stop string. `batch_size` is the number of rows generated together."""
    if _fallback(model):
        return hf_engine.sample(model, tokenizer, prefix, questions, num_samples, temperature=temperature,
                                max_new_tokens=max_new_tokens, stop=stop, seed=seed, top_p=top_p,
                                top_k=top_k, batch_size=batch_size, progress=progress)
    if not questions or num_samples <= 0:
        return [[] for _ in questions]
    stop = list(stop)
    sampler = Sampler(build_net(model), tokenizer, plan_prompts(tokenizer, prefix, questions), num_samples,
                      Chooser(temperature, top_k, top_p, seed), max_new_tokens, stop,
                      eos_ids(model, tokenizer), batch_size, progress)
    return sampler.run()


# ----------------------------------------------------------------------------------------------
# Scoring


@torch.inference_mode()
def score(model, tokenizer, contexts: list[str], completions: list[str], *, span: str = "full",
          batch_size: int = 64, progress: Progress = None, token_budget: int = 8192) -> list[tuple[float, int]]:
    """Mean token NLL and token count of each `context + completion` (see hf_engine.score)."""
    return [spans[span] for spans in score_spans(model, tokenizer, contexts, completions, batch_size=batch_size,
                                                  progress=progress, token_budget=token_budget)]


@torch.inference_mode()
def score_spans(model, tokenizer, contexts: list[str], completions: list[str], *, batch_size: int = 64,
                progress: Progress = None, token_budget: int = 8192, pool: bool = False) -> list[Scores]:
    """Both spans of each `context + completion` from one forward (see hf_engine.score_spans; `pool`: the
    sentence embedding from the same forward).

    Items run in length-sorted batches of at most `batch_size` rows and `token_budget` padded tokens."""
    if _fallback(model):
        return hf_engine.score_spans(model, tokenizer, contexts, completions, progress=progress, pool=pool)
    net = build_net(model)
    items = [encode_spans(tokenizer, c, x) for c, x in zip(contexts, completions)]
    results: list[Scores] = [{}] * len(items)
    for batch in length_batches([len(ids) for ids, _ in items], batch_size, token_budget):
        for index, value in zip(batch, _score_batch(net, [items[i] for i in batch], pool)):
            results[index] = value
        if progress:
            progress(len(batch))
    return results


def length_batches(lengths: list[int], max_rows: int, token_budget: int) -> list[list[int]]:
    """Indices sorted by length, cut into batches whose padded size fits the budget."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < max_rows and (len(batches[-1]) + 1) * lengths[i] <= token_budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _score_batch(net: Net, items: list[tuple[list[int], dict[str, int]]], pool: bool = False) -> list[Scores]:
    width = max(len(ids) for ids, _ in items)
    ids = torch.tensor([ids + [0] * (width - len(ids)) for ids, _ in items])
    n = len(items)
    hidden = run_layers(net, ids, torch.arange(width).expand(n, width), causal_attend(net))
    # every position but the last of each row: the full span; the completion span is its tail
    rows = torch.cat([torch.full((len(t) - 1,), r) for r, (t, _) in enumerate(items)])
    cols = torch.cat([torch.arange(0, len(t) - 1) for t, _ in items])
    nll = _token_nll(net, hidden[rows, cols], ids[rows, cols + 1])
    per_row = torch.split(nll, [len(t) - 1 for t, _ in items])
    scores = [span_means(row, firsts) for row, (_, firsts) in zip(per_row, items)]
    if pool:  # the final norm's output is what transformers returns as the last hidden state
        normed = rms_norm(hidden, net.norm, net.eps)
        for row, (t, _) in enumerate(items):
            scores[row][EMBEDDING] = mean_pooled(normed[row, :len(t)])
    return scores


def _token_nll(net: Net, hidden: Tensor, targets: Tensor, chunk: int = 1024) -> Tensor:
    """Cross-entropy of each position's next token, in chunks so logits never exceed chunk x V."""
    parts = [F.cross_entropy(final_logits(net, hidden[s:s + chunk]).float(), targets[s:s + chunk], reduction="none")
             for s in range(0, hidden.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.zeros(0)


# -- hooks (iwsi/engines/__init__.py): the torch engines share engine hf's -----------------------------
load, load_trained, release, gpus = hf_engine.load, hf_engine.load_trained, hf_engine.release, hf_engine.gpus


def unusable(device_type: str) -> str | None:
    if device_type != "cpu":
        return (f"engine iwsi runs on the CPU only and device is {device_type}: set engine=vllm (or engine=hf), "
                "or device=cpu")
    return None

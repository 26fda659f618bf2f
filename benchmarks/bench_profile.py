"""`iwsi bench profile`: where the wall time of the iwsi engine goes, per part of a decode step and of
scoring, on the `iwsi bench generate` / `iwsi bench score` workloads.

    iwsi bench profile [--questions 64 --samples 8 --max-new-tokens 96 --batch-size 256] [--json]
    iwsi bench profile --what score [--questions 64 --per-question 8]

How: for the profiled call only, the engine's functions are wrapped in `torch.profiler.record_function`
labels (`GENERATE_PARTS`, `SCORE_PARTS`; the engine's code is untouched). torch.profiler's event tree
then gives each label its exclusive wall time (minus nested labels) and the time of the aten ops run
directly inside it; the difference is Python and dispatch overhead between ops. Ops that run in a
layer outside any labelled function are named by op (`OP_PARTS`: the output projection is the one
`linear` outside q/k/v and the MLP, KV-cache writes are `index_put_`). Wall time outside every label
is the sampler's own loop. Before the profiled call the same workload runs once unprofiled (the
profiler's cost is the difference of the two walls), and the plain transformers forward of
`batch_size` rows × 1 token gives the ceiling a decode step is compared with (`ratio_to_forward`). The
batch is full only while questions are pending (at the end it drains), so the unprofiled run also counts
the active rows of every decode step, and the same ratio is given against the forward at the mean
active rows (`ratio_to_forward_at_mean_rows`); `row_steps` over `tokens` shows the tokens generated but
cut (stop strings) or not counted (EOS).
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from functools import wraps

import torch

from benchmarks.bench import count_tokens, forward_tok_s, load, load_average, score_items, workload

PREFILL = "prefill (shared prefix, question suffixes)"
DECODE = "decode step: other ops (norms, residuals, embedding, mask)"
SCORE_BATCH = "batching, padding, gathering targets"
OUTSIDE = "outside every labelled part (the engine's own loop)"
# label -> [(owner, attribute)]: the functions wrapped for the profiled call
GENERATE_PARTS = {
    PREFILL: [("engine.Sampler", "_prefill_shared"), ("engine.Sampler", "_prefill_chunk")],
    DECODE: [("engine.Sampler", "_step_logits")],
    "QKV projection": [("engine", "_qkv")],
    "rotary embedding": [("engine", "apply_rope")],
    "MLP (gate/up, down)": [("engine", "_mlp")],
    "attention: shared prefix": [("attention", "shared_part")],
    "attention: own part (suffix + generated)": [("attention", "own_part")],
    "attention: log-sum-exp merge, reshapes": [("engine", "cascade_attention")],
    "final norm + lm_head": [("engine", "final_logits")],
    "sampling (softmax, inverse CDF / argmax)": [("engine.Chooser", "__call__")],
    "stop checks, token bookkeeping": [("engine.Sampler", "_finish")],
    "row retirement (decode text, compact slots)": [("engine.Sampler", "_retire")],
    "row admission (copy suffix KV into slots)": [("engine.Sampler", "_fill")],
}
SCORE_PARTS = {
    SCORE_BATCH: [("engine", "_score_batch")],
    "QKV projection": [("engine", "_qkv")],
    "rotary embedding": [("engine", "apply_rope")],
    "MLP (gate/up, down)": [("engine", "_mlp")],
    "attention (causal, flash kernel)": [("engine", "causal_attention")],
    "final norm + lm_head": [("engine", "final_logits")],
    "cross-entropy": [("engine", "_token_nll")],
}
# an op directly inside one of these labels is named by what it is, not by the label
LAYER_LABELS = (DECODE, PREFILL, SCORE_BATCH)
OP_PARTS = {"aten::linear": "output projection", "aten::index_put_": "KV-cache writes"}


def _owner(path: str):
    from iwsi.engines import attention
    from iwsi.engines import native as engine

    obj = {"engine": engine, "attention": attention}[path.split(".")[0]]
    for name in path.split(".")[1:]:
        obj = getattr(obj, name)
    return obj


@contextmanager
def patched(targets: list[tuple[object, str, object]]):
    """Set each owner.attr to wrap(original) while the block runs; restore the originals after."""
    saved = []
    try:
        for owner, attr, wrap in targets:
            saved.append((owner, attr, owner.__dict__[attr]))
            setattr(owner, attr, wrap(owner.__dict__[attr]))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def labelled(parts: dict[str, list[tuple[str, str]]]):
    """Each listed function wrapped in a record_function(label) while the block runs."""
    return patched([(_owner(path), attr, lambda fn, label=label: _wrap(fn, label))
                    for label, targets in parts.items() for path, attr in targets])


def _wrap(fn, label: str):
    @wraps(fn)
    def inner(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)
    return inner


def breakdown(events, labels: set[str], wall_s: float) -> list[dict]:
    """Per part: exclusive wall seconds, seconds inside aten ops, the rest (overhead), share of wall.
    Parts run inside the prefill (its layers' projections, attention) are reported as "… (in prefill)"."""
    wall: dict[str, float] = defaultdict(float)
    ops: dict[str, float] = defaultdict(float)
    for ev in events:
        parent = ev.cpu_parent
        if ev.name in labels:
            nested = sum(c.cpu_time_total for c in ev.cpu_children if c.name in labels)
            wall[_part(ev, ev.name)] += (ev.cpu_time_total - nested) / 1e6
        elif parent is None or parent.name in labels:  # a top-level op (its sub-ops are inside its time)
            owner = _part(parent, parent.name) if parent is not None else OUTSIDE
            part = _part(parent, OP_PARTS[ev.name]) if parent is not None and parent.name in LAYER_LABELS \
                and ev.name in OP_PARTS else owner
            ops[part] += ev.cpu_time_total / 1e6
            if part != owner:  # re-attribute the op's time from the layer label to its own part
                wall[owner] -= ev.cpu_time_total / 1e6
                wall[part] += ev.cpu_time_total / 1e6
    wall[OUTSIDE] = wall_s - sum(v for k, v in wall.items() if k != OUTSIDE)
    rows = [{"part": p, "wall_s": round(w, 3), "share": round(w / wall_s, 4), "in_ops_s": round(ops.get(p, 0.0), 3),
             "overhead_s": round(w - ops.get(p, 0.0), 3)} for p, w in wall.items()]
    return sorted(rows, key=lambda r: -r["wall_s"])


def _part(event, name: str) -> str:
    """`name`, marked "(in prefill)" when `event` runs inside the prefill label (but is not it)."""
    if name == PREFILL:
        return name
    ev = event
    while ev is not None:
        if ev.name == PREFILL:
            return f"{name} (in prefill)"
        ev = ev.cpu_parent
    return name


def profile_generate(questions: int = 64, samples: int = 8, max_new_tokens: int = 96, batch_size: int = 256,
                     temperature: float = 0.8, seed: int = 0, model=None, tokenizer=None) -> dict:
    from iwsi.engines import native as engine

    if model is None:
        model, tokenizer = load()
    prefix, suffixes, _, stop = workload(questions, seed)

    def run():
        return engine.sample(model, tokenizer, prefix, suffixes, samples, temperature=temperature,
                             max_new_tokens=max_new_tokens, stop=stop, seed=seed, batch_size=batch_size)

    engine.sample(model, tokenizer, prefix, suffixes[:2], 2, temperature=temperature, max_new_tokens=4, stop=stop,
                  seed=seed)  # warm-up: token-piece cache, first-call allocations
    return _profiled(run, GENERATE_PARTS, tokenizer, model, batch_size,
                     dict(questions=questions, samples=samples, max_new_tokens=max_new_tokens, batch_size=batch_size,
                          temperature=temperature))


def profile_score(questions: int = 64, per_question: int = 8, span: str = "completion", model=None,
                  tokenizer=None) -> dict:
    from iwsi.engines import native as engine

    if model is None:
        model, tokenizer = load()
    contexts, completions = score_items(questions, per_question)

    def run():
        return engine.score(model, tokenizer, contexts, completions, span=span)

    return _profiled(run, SCORE_PARTS, tokenizer, model, None,
                     dict(questions=questions, per_question=per_question, span=span))


def counting_rows(steps: list[int]):
    """Record the number of active rows of every decode step (appended to `steps`) while the block runs."""
    from iwsi.engines import native as engine

    def count(step):
        def counted(self):
            steps.append(len(self.slots.rows))
            return step(self)
        return counted

    return patched([(engine.Sampler, "_step_logits", count)])


def _profiled(run, parts: dict, tokenizer, model, batch_size: int | None, settings: dict) -> dict:
    load_before = load_average()
    steps: list[int] = []
    with counting_rows(steps):
        start = time.perf_counter()
        out = run()
        plain_s = time.perf_counter() - start
    with labelled(parts), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        profiled_s = time.perf_counter() - start
    res = {"workload": settings, "threads": torch.get_num_threads(), "dtype": str(model.dtype),
           "wall_s": round(plain_s, 2), "profiled_wall_s": round(profiled_s, 2),
           "parts": breakdown(prof.events(), set(parts), profiled_s)}
    if batch_size is not None:  # generation: decode tokens/s against the plain forward at the same batch
        tokens = count_tokens(tokenizer, [t for row in out for t in row])
        res["tokens"] = tokens
        res["tok_s"] = round(tokens / plain_s, 1)
        res["forward_tok_s"] = round(forward_tok_s(model, batch_size), 1)
        res["ratio_to_forward"] = round(res["tok_s"] / res["forward_tok_s"], 3)
        # the batch is full only while questions are pending: the same ratio at the mean active rows
        mean_rows = sum(steps) / len(steps)
        res.update(decode_steps=len(steps), row_steps=sum(steps), mean_active_rows=round(mean_rows, 1))
        res["forward_tok_s_at_mean_rows"] = round(forward_tok_s(model, max(1, round(mean_rows))), 1)
        res["ratio_to_forward_at_mean_rows"] = round(res["tok_s"] / res["forward_tok_s_at_mean_rows"], 3)
    res["load_average_1m"] = [round(load_before, 2), round(load_average(), 2)]
    return res


def human(res: dict) -> str:
    lines = [f"{k}: {v}" for k, v in res.items() if k != "parts"]
    lines.append(f"{'part':<60} {'wall s':>8} {'share':>7} {'in ops s':>9} {'overhead s':>11}")
    for r in res["parts"]:
        lines.append(f"{r['part']:<60} {r['wall_s']:>8.2f} {100 * r['share']:>6.1f}% {r['in_ops_s']:>9.2f} "
                     f"{r['overhead_s']:>11.2f}")
    return "\n".join(lines)

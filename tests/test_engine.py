"""Checks of the fast engine (`iwsi.engines.native`) against transformers and the reference `iwsi.engines.hf`.

Tight numerical checks run the embedded model in float32; greedy equality and scoring are compared
with hf_engine on the same prompts. Run: `PYTHONPATH=. .venv/bin/python -m pytest tests/test_engine.py`.
"""
from __future__ import annotations

import pytest
import torch

from iwsi.engines import attention
from iwsi.engines import hf as hf_engine
from iwsi.engines import native as engine
from iwsi.models import load_model, load_tokenizer

PREFIX = ("Q: Mia has 6 pencils. Her friend gives her 5 more pencils. How many pencils does Mia have now?\n"
          "A: Mia has 6 + 5 = 11 pencils. The answer is 11.\n\n"
          "Q: A shop sells 4 boxes with 3 cakes each. How many cakes is that?\n"
          "A: 4 boxes of 3 cakes is 4 * 3 = 12 cakes. The answer is 12.\n\n")
QUESTIONS = ["Q: Tom has 3 apples and buys 4 more. How many apples does he have?\nA:",
             "Q: A box has 12 eggs and 5 break. How many eggs are left?\nA:",
             "Q: Sam reads 7 pages a day for 3 days. How many pages does he read?\nA:"]
STOP = ["\n\n", "\nQ:"]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("embedded")


@pytest.fixture(scope="module")
def model32():
    return load_model("embedded", dtype=torch.float32)


def test_forward_logits_match_transformers(model32, tok):
    ids = torch.tensor([tok(PREFIX + QUESTIONS[0])["input_ids"]])
    with torch.inference_mode():
        ref = model32(ids).logits
        out = engine.forward_logits(engine.build_net(model32), ids)
    assert torch.allclose(out, ref, atol=2e-3, rtol=0), (out - ref).abs().max()


@pytest.mark.parametrize("t", [1, 3])
def test_cascade_attention_equals_ordinary_attention(t):
    gen = torch.Generator().manual_seed(0)
    n, heads, kv_heads, d, shared_len, own_len = 4, 6, 2, 16, 11, 7
    q = torch.randn(n, t, heads, d, generator=gen)
    shared_k, shared_v = torch.randn(2, 1, kv_heads, shared_len, d, generator=gen)
    own_k, own_v = torch.randn(2, n, kv_heads, own_len, d, generator=gen)
    lengths = torch.tensor([7, 5, 3, 4])
    allowed = (torch.arange(own_len)[None, None, :] <= (lengths - t)[:, None, None] + torch.arange(t)[None, :, None])
    bias = attention.mask_bias(allowed, heads // kv_heads, torch.float32)
    out = attention.cascade_attention(q, (shared_k, shared_v), own_k, own_v, bias, d ** -0.5)
    # Ordinary attention: copy the shared keys into every row in front of its own keys.
    keys = torch.cat([shared_k.expand(n, -1, -1, -1), own_k], dim=2)
    values = torch.cat([shared_v.expand(n, -1, -1, -1), own_v], dim=2)
    full_allowed = torch.cat([torch.ones(n, t, shared_len, dtype=torch.bool), allowed], dim=2)
    ref = attention.reference_attention(q, keys, values, full_allowed, d ** -0.5)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_decode_step_logits_match_plain_forward(model32, tok):
    """Shared prefix + suffix prefill + one cached decode step give the logits of a plain forward."""
    net = engine.build_net(model32)
    plan = engine.plan_prompts(tok, PREFIX, QUESTIONS)
    chooser = engine.Chooser(0.0, 0, 1.0, 0)
    with torch.inference_mode():
        sampler = engine.Sampler(net, tok, plan, 2, chooser, 8, STOP, {tok.eos_token_id}, 64, None)
        sampler._fill()
        rows = list(sampler.slots.rows)
        firsts = sampler.slots.last[:len(rows)].tolist()
        logits = sampler._step_logits()
        for slot, (row, first) in enumerate(zip(rows, firsts)):
            ids = torch.tensor([plan.shared + plan.suffixes[row.group.question] + [first]])
            ref = model32(ids).logits[0, -1]
            assert torch.allclose(logits[slot], ref, atol=2e-3, rtol=0), (logits[slot] - ref).abs().max()


def test_greedy_equals_hf_engine_with_continuous_batching(model32, tok):
    ref = hf_engine.sample(model32, tok, PREFIX, QUESTIONS, 1, temperature=0, max_new_tokens=24, stop=STOP, seed=0)
    # batch_size 2 < 3 questions x 2 samples: rows leave and refill the batch
    out = engine.sample(model32, tok, PREFIX, QUESTIONS, 2, temperature=0, max_new_tokens=24, stop=STOP, seed=0,
                        batch_size=2)
    assert [o[0] for o in out] == [r[0] for r in ref]
    assert all(o[0] == o[1] for o in out)


def test_stop_strings_cut_like_hf_engine(model32, tok):
    stop = [" =", "."]
    ref = hf_engine.sample(model32, tok, PREFIX, QUESTIONS, 1, temperature=0, max_new_tokens=24, stop=stop, seed=0)
    out = engine.sample(model32, tok, PREFIX, QUESTIONS, 1, temperature=0, max_new_tokens=24, stop=stop, seed=0)
    assert out == ref
    assert all(s not in o[0] for o in out for s in stop)


def test_sampling_reproducible_for_fixed_seed(model32, tok):
    kwargs = dict(temperature=1.0, max_new_tokens=12, stop=STOP, top_p=0.95, top_k=40)
    first = engine.sample(model32, tok, PREFIX, QUESTIONS, 3, seed=7, **kwargs)
    again = engine.sample(model32, tok, PREFIX, QUESTIONS, 3, seed=7, **kwargs)
    other = engine.sample(model32, tok, PREFIX, QUESTIONS, 3, seed=8, **kwargs)
    assert first == again
    assert first != other
    assert [len(x) for x in first] == [3, 3, 3]


def test_inverse_cdf_draws_follow_weights():
    gen = torch.Generator().manual_seed(0)
    weights = torch.tensor([[1.0, 2.0, 4.0, 0.0] * 64])  # 256 tokens, a quarter with zero weight
    draws = torch.cat([engine.draw(weights.repeat(512, 1), gen) for _ in range(20)])
    freq = torch.bincount(draws % 4, minlength=4).float() / draws.numel()
    assert torch.allclose(freq, torch.tensor([1 / 7, 2 / 7, 4 / 7, 0.0]), atol=0.01)


def test_top_k_top_p_keep_only_the_nucleus():
    chooser = engine.Chooser(1.0, 3, 0.5, seed=0)
    logits = torch.tensor([[5.0, 4.9, 0.0, 4.8, -1.0]]).repeat(2000, 1)
    picked = set(chooser(logits).tolist())
    assert picked <= {0, 1} and len(picked) == 2  # top-3 = {0, 1, 3}; top-p 0.5 keeps the two largest


@pytest.mark.parametrize("span", ["full", "completion"])
def test_score_equals_hf_engine(model32, tok, span):
    contexts = [PREFIX + q for q in QUESTIONS] + ["Q: 2 + 2?\nA:"]
    completions = [" 3 + 4 = 7. The answer is 7.", " 12 - 5 = 7. The answer is 7.", " 21.", " 4."]
    ref = hf_engine.score(model32, tok, contexts, completions, span=span)
    out = engine.score(model32, tok, contexts, completions, span=span, token_budget=300)
    for (a, n), (b, m) in zip(out, ref):
        assert n == m and abs(a - b) < 1e-4 * max(1.0, abs(b))


def reference_losses(model, tok, question: str, rationale: str) -> dict[str, float]:
    """The score stage's three losses computed straight from transformers' logits (float32)."""
    from iwsi.prompts import question_suffix
    from iwsi.score import alone_context

    def mean_nll(context: str, first_counted: int | None = None) -> float:
        ids = tok(context + " " + rationale, add_special_tokens=False)["input_ids"]
        n_ctx = len(tok(context, add_special_tokens=False)["input_ids"]) if first_counted is None else first_counted
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        nll = -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        return float(nll[n_ctx - 1:].mean())

    return {"loss": mean_nll(question_suffix(question), first_counted=1),
            "loss_answer": mean_nll(question_suffix(question)), "loss_alone": mean_nll(alone_context(tok))}


@pytest.mark.parametrize("name", ["iwsi", "hf"])
def test_the_three_score_losses_agree_with_transformers_logits(model32, tok, name):
    """L (full span), L(r | q) and the IFD denominator L(r) of every engine within 1e-3 nats of transformers."""
    from iwsi.score import loss_table

    questions = ["Tom has 3 apples and buys 4 more. How many apples does he have?",
                 "A box has 12 eggs and 5 break. How many eggs are left?"]
    rationales = ["Tom has 3 + 4 = 7 apples. The answer is 7.", "12 - 5 = 7 eggs are left. The answer is 7."]
    table = loss_table(model32, tok, questions, rationales, engine=name, span="full")
    for row, (q, r) in zip(table.itertuples(), zip(questions, rationales)):
        ref = reference_losses(model32, tok, q, r)
        for column, value in ref.items():
            assert abs(getattr(row, column) - value) <= 1e-3, (name, column, getattr(row, column), value)
        assert row.loss_alone != row.loss_answer  # the question changes the rationale's loss

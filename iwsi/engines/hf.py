"""Reference engine (`engine: hf`): Hugging Face `generate` for sampling, padded forward for scoring.

Same API as `iwsi.engines.native` (the fast engine); kept simple on purpose as the ground truth the fast
engine is checked and benchmarked against. Its hooks (load, load_trained, release, gpus) serve both torch
engines: they run the pipeline's torch model itself, and the trained adapter merged into a copy.
"""
from __future__ import annotations

from typing import Callable

import torch

Progress = Callable[[int], None] | None


def cut_at_stop(text: str, stop: list[str]) -> str:
    """Truncate a completion at the first stop string (the stop string itself is dropped)."""
    ends = [i for s in stop if (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


@torch.inference_mode()
def sample(model, tokenizer, prefix: str, questions: list[str], num_samples: int, *, temperature: float,
           max_new_tokens: int, stop: list[str], seed: int, top_p: float = 1.0, top_k: int = 0,
           batch_size: int = 64, progress: Progress = None) -> list[list[str]]:
    """`num_samples` completions of `prefix + q` for each question (temperature 0 = greedy)."""
    torch.manual_seed(seed)
    prompts = [prefix + q for q in questions for _ in range(num_samples)]
    outs: list[str] = []
    per_batch = max(1, batch_size // num_samples) * num_samples  # whole questions per batch
    for start in range(0, len(prompts), per_batch):
        outs += _generate_batch(model, tokenizer, prompts[start:start + per_batch], temperature,
                                max_new_tokens, stop, top_p, top_k)
        if progress:
            progress(len(prompts[start:start + per_batch]) // num_samples)
    return [outs[i:i + num_samples] for i in range(0, len(outs), num_samples)]


def _generate_batch(model, tokenizer, prompts, temperature, max_new_tokens, stop, top_p, top_k):
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
    kwargs = dict(do_sample=temperature > 0, max_new_tokens=max_new_tokens, stop_strings=stop,
                  tokenizer=tokenizer, pad_token_id=tokenizer.pad_token_id)
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k or None)
    out = model.generate(**enc, **kwargs)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


SPANS = ("full", "completion")  # the token spans a mean NLL can be taken over (config loss_span)
Scores = dict[str, tuple[float, int]]  # span → (mean token NLL, tokens) of one text (+ EMBEDDING when pooled)
EMBEDDING = "embedding"  # the pooled sentence embedding's key in Scores, and its column in score chunks


@torch.inference_mode()
def score(model, tokenizer, contexts: list[str], completions: list[str], *, span: str = "full",
          batch_size: int = 16, progress: Progress = None) -> list[tuple[float, int]]:
    """Mean token NLL and token count of each `context + completion` under `model`.

    span "full": every token after the first; "completion": only the completion's tokens."""
    return [spans[span] for spans in score_spans(model, tokenizer, contexts, completions, batch_size=batch_size,
                                                  progress=progress)]


@torch.inference_mode()
def score_spans(model, tokenizer, contexts: list[str], completions: list[str], *, batch_size: int = 16,
                progress: Progress = None, pool: bool = False) -> list[Scores]:
    """Both spans' (mean NLL, tokens) of each `context + completion`, from one forward pass; with `pool`,
    also its sentence embedding from that forward (key EMBEDDING, see mean_pooled)."""
    items = [encode_spans(tokenizer, c, x) for c, x in zip(contexts, completions)]
    results: list[Scores] = []
    for start in range(0, len(items), batch_size):
        results += _score_batch(model, tokenizer, items[start:start + batch_size], pool)
        if progress:
            progress(len(items[start:start + batch_size]))
    return results


def encode_spans(tokenizer, context: str, completion: str) -> tuple[list[int], dict[str, int]]:
    """Token ids of context+completion and, per span, the index of the first token whose NLL counts."""
    ids = tokenizer(context + completion, add_special_tokens=False)["input_ids"]
    n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    return ids, {"full": 1, "completion": min(max(n_ctx, 1), len(ids) - 1)}


def encode_pair(tokenizer, context: str, completion: str, span: str) -> tuple[list[int], int]:
    """Token ids of context+completion and the index of the first token whose NLL counts."""
    ids, firsts = encode_spans(tokenizer, context, completion)
    return ids, firsts[span]


def span_means(nll, firsts: dict[str, int]) -> Scores:
    """(mean, count) of each span of a text's next-token NLLs (nll[i] is the NLL of token i + 1), summed
    in float64 so every engine reduces alike."""
    nll = torch.as_tensor(nll, dtype=torch.float64)
    return {span: (float(nll[first - 1:].mean()), int(nll.numel() - first + 1)) for span, first in firsts.items()}


def mean_pooled(hidden: torch.Tensor):
    """A text's sentence embedding: the mean of its last hidden states (after the final norm) over its
    tokens [t, E], float32. The one rule of the embed stage, whichever forward pass it comes from."""
    return (hidden.sum(0) / hidden.shape[0]).float().cpu().numpy()


def _score_batch(model, tokenizer, items, pool: bool = False):
    width = max(len(ids) for ids, _ in items)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in items])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in items])
    out = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device), output_hidden_states=pool)
    nll = torch.nn.functional.cross_entropy(out.logits.float()[:, :-1].transpose(1, 2),
                                            input_ids[:, 1:].to(model.device), reduction="none")
    scores = [span_means(nll[row, :len(ids) - 1].cpu(), firsts) for row, (ids, firsts) in enumerate(items)]
    if pool:
        for row, (ids, _) in enumerate(items):
            scores[row][EMBEDDING] = mean_pooled(out.hidden_states[-1][row, :len(ids)])
    return scores


# -- hooks (iwsi/engines/__init__.py) ------------------------------------------------------------------
def load(cfg, *, base=None, threads: int = 0, lora: bool = False, first_core: int = 0):
    """The torch model itself: `base()` (the caller's, loaded once) or a fresh load on `cfg.device`."""
    if base is not None:
        return base()
    from iwsi.device import torch_device
    from iwsi.models import load_model

    return load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, device=torch_device(cfg.device))


def load_trained(cfg, adapter, *, threads: int = 0, first_core: int = 0):
    """The base model with the trained adapter merged in (plain weights: the same engine runs it)."""
    from iwsi.device import torch_device
    from iwsi.evaluate import merged_model

    return merged_model(cfg.model, adapter, cfg.trust_remote_code, torch_device(cfg.device))


def release() -> None:
    """Nothing to free: the torch model is the caller's."""


def gpus(cfg) -> int:
    return 1


def unusable(device_type: str) -> str | None:
    return None

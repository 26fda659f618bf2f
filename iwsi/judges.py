"""Scores for the supervised-by-a-judge baselines: self-evaluation (`self`) and a reward model (`rm`).

`self_scores` asks the base model for a 0–10 rating of each majority sample with a few-shot rating
prompt (written for this project) and parses the first integer (unparseable → 0). `rm_scores` runs
any Hugging Face sequence-classification model over question + rationale. `scores` picks one by
name; the judge stage stores them as `self_score` / `rm_score` in samples.parquet (the probe scores
its variants the same way) and the filter stage keeps the top k %.
"""
from __future__ import annotations

import re

RATING_PREFIX = (
    "Rate each answer to a math or reasoning question from 0 (wrong or nonsense) to 10 (correct, "
    "clear reasoning).\n\n"
    "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\n"
    "Answer: Tom has 3 apples and buys 4 more, so 3 + 4 = 7. The answer is 7.\nRating: 10\n\n"
    "Question: A box holds 12 pens. Sara takes 5 pens out. How many pens are left?\n"
    "Answer: 12 + 5 = 17. The answer is 17.\nRating: 1\n\n"
    "Question: Ben reads 6 pages a day for 3 days. How many pages does he read?\n"
    "Answer: He reads 6 pages. The answer is 18.\nRating: 5\n\n"
)
STOP = ["\n"]


def rating_suffix(question: str, rationale: str) -> str:
    return f"Question: {question}\nAnswer: {rationale}\nRating:"


def parse_rating(text: str) -> float:
    """First integer in the reply, clipped to 0–10; 0 when there is none.

    >>> parse_rating(" 8/10"), parse_rating(" twelve"), parse_rating(" 42")
    (8.0, 0.0, 10.0)
    """
    found = re.search(r"\d+", text)
    return float(min(int(found.group()), 10)) if found else 0.0


def scores(judge: str, model, tokenizer, questions: list[str], rationales: list[str], cfg,
           progress=None) -> list[float]:
    """The `judge`'s score of each (question, rationale): "self" rates with `model` (the base model on
    the run's engine), "rm" with `cfg.reward_model`."""
    if judge == "self":
        return self_scores(model, tokenizer, questions, rationales, engine=cfg.engine, seed=cfg.seed,
                           progress=progress)
    rm, rm_tok = load_reward_model(cfg.reward_model, cfg.trust_remote_code)
    return rm_scores(rm, rm_tok, questions, rationales, progress=progress)


def self_scores(model, tokenizer, questions: list[str], rationales: list[str], *, engine: str, seed: int,
                progress=None) -> list[float]:
    """Greedy 0–10 self-rating of each (question, rationale) by the model itself."""
    from iwsi import engines

    suffixes = [rating_suffix(q, r) for q, r in zip(questions, rationales)]
    outs = engines.get(engine).sample(model, tokenizer, RATING_PREFIX, suffixes, 1, temperature=0.0,
                                        max_new_tokens=4, stop=STOP, seed=seed, progress=progress)
    return [parse_rating(o[0]) for o in outs]


def load_reward_model(path: str, trust_remote_code: bool = False):
    """A local sequence-classification model and its tokenizer (clear error otherwise)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from iwsi.models import ModelError

    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"reward_model {path!r} cannot be loaded as a sequence classifier: "
                         f"{str(err).splitlines()[0]}") from None
    return model.eval(), tok


def rm_scores(model, tokenizer, questions: list[str], rationales: list[str], batch_size: int = 16,
              progress=None) -> list[float]:
    """Reward = the single logit, or (for several labels) the log-odds of the last label ("good")."""
    import torch

    out: list[float] = []
    for start in range(0, len(questions), batch_size):
        enc = tokenizer(questions[start:start + batch_size], rationales[start:start + batch_size],
                        return_tensors="pt", padding=True, truncation=True, max_length=512)
        with torch.inference_mode():
            logits = model(**enc).logits.float()
        logp = logits.log_softmax(-1)
        reward = logits[:, 0] if logits.shape[1] == 1 else logp[:, -1] - logp[:, :-1].logsumexp(-1)
        out += reward.tolist()
        if progress:
            progress(len(reward))
    return out

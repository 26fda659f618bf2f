"""The embed stage's sentence embeddings come from the score stage's forward pass (one forward per
candidate, not two): every engine that can pool gives what a pass of its own (`embed_texts`) gives, to the
float tolerance, and the pipeline's embed stage uses them."""
import numpy as np
import pytest
import torch

from iwsi.embed import embed_texts
from iwsi.engines import hf as hf_engine
from iwsi.engines import native as engine
from iwsi.models import load_model, load_tokenizer
from iwsi.prompts import question_suffix

pytestmark = pytest.mark.slow

QUESTIONS = ["What is 2 + 3?", "Tom has 4 apples and eats one. How many are left?", "A box holds 12 eggs; how many "
             "eggs are in 3 boxes?", "What is 7 times 6?", "Sara reads 10 pages a day for a week. How many pages?"]
RATIONALES = ["2 + 3 = 5. The answer is 5.", "4 - 1 = 3. The answer is 3.", "3 boxes of 12 eggs are 3 * 12 = 36 "
              "eggs. The answer is 36.", "7 * 6 = 42. The answer is 42.", "A week has 7 days, so 10 * 7 = 70. The "
              "answer is 70."]


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def model(request):
    return load_model("embedded", dtype=request.param)


def pooled(module, model, tokenizer) -> np.ndarray:
    scores = module.score_spans(model, tokenizer, [question_suffix(q) for q in QUESTIONS],
                                [" " + r for r in RATIONALES], batch_size=2, pool=True)
    return np.stack([s["embedding"] for s in scores])


@pytest.mark.parametrize("module", [engine, hf_engine], ids=["native", "hf"])
def test_the_score_pass_pools_what_a_pass_of_its_own_gives(module, model):
    tokenizer = load_tokenizer("embedded")
    texts = [f"{question_suffix(q)} {r}" for q, r in zip(QUESTIONS, RATIONALES)]
    own = embed_texts(model, tokenizer, texts, batch_size=3)  # other batches, other padding
    from_score = pooled(module, model, tokenizer)
    assert from_score.shape == own.shape == (len(texts), model.config.hidden_size)
    cosine = (own * from_score).sum(1) / np.linalg.norm(own, axis=1) / np.linalg.norm(from_score, axis=1)
    if model.dtype == torch.float32:
        np.testing.assert_allclose(from_score, own, rtol=0, atol=1e-4 * np.abs(own).max())
    else:  # bf16: batch shapes round differently, in the second pass as much as in the first
        assert cosine.min() > 0.999, cosine
    # not a constant: the texts' embeddings differ from each other
    assert np.abs(own[0] - own[1]).max() > 0.1

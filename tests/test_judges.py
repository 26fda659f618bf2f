"""Self-rating parsing and reward-model scoring with a tiny randomly initialised local classifier."""
import pytest

from iwsi.judges import load_reward_model, parse_rating, rm_scores
from iwsi.models import ModelError


@pytest.mark.parametrize("text, score", [(" 7", 7.0), (" 10/10", 10.0), (" 99", 10.0), (" none", 0.0), ("", 0.0),
                                         (" 0", 0.0), (" Rating 3 of 10", 3.0)])
def test_parse_rating(text, score):
    assert parse_rating(text) == score


def make_tiny_rm(path, num_labels=1):
    """A 1-layer Llama classifier with the embedded model's tokenizer: no download needed."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from iwsi.models import load_tokenizer

    tok = load_tokenizer("embedded")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=num_labels,
                      pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("num_labels", [1, 2])
def test_rm_scores_are_deterministic_floats(tmp_path, num_labels):
    model, tok = load_reward_model(str(make_tiny_rm(tmp_path / "rm", num_labels)))
    qs, rs = ["What is 2 + 2?", "What is 3 + 3?", "Q3"], ["2 + 2 = 4. The answer is 4.", "The answer is 7.", "x"]
    a = rm_scores(model, tok, qs, rs, batch_size=2)
    b = rm_scores(model, tok, qs, rs, batch_size=3)  # padding must not change a score
    assert len(a) == 3 and all(isinstance(x, float) for x in a)
    assert a == pytest.approx(b, abs=1e-4)
    assert len(set(round(x, 6) for x in a)) > 1


def test_reward_model_missing_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="cannot be loaded as a sequence classifier"):
        load_reward_model(str(tmp_path / "nope"))

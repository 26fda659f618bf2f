"""The engine registry (iwsi/engines/): every engine provides the same functions and hooks, the config
offers exactly the registered engines, and the pipeline reaches an engine only through the registry —
so a new engine is one module and one `Engine(...)` line. This module is itself such an engine ("toy"),
registered for the tests below: it answers without a model."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from iwsi import engines
from iwsi.config import ConfigError, RunConfig
from iwsi.device import pick_engine
from iwsi.generate import complete
from iwsi.prompts import question_suffix
from iwsi.records import Question
from iwsi.score import loss_table

ROOT = Path(__file__).resolve().parent.parent
TOY_MODEL = object()  # what the toy engine's load hook gives, and its functions demand


# -- the toy engine: the functions and hooks of iwsi/engines/__init__.py -------------------------------
def sample(model, tokenizer, prefix, questions, num_samples, *, temperature, max_new_tokens, stop, seed, top_p=1.0,
           top_k=0, progress=None):
    assert model is TOY_MODEL
    return [[f"{len(q)} letters. The answer is {len(q)}." for _ in range(num_samples)] for q in questions]


def score_spans(model, tokenizer, contexts, completions, *, progress=None, pool=False):
    assert model is TOY_MODEL
    return [{"full": (1.0, len(c + x)), "completion": (2.0, len(x))} for c, x in zip(contexts, completions)]


def score(model, tokenizer, contexts, completions, *, span="full", progress=None):
    return [s[span] for s in score_spans(model, tokenizer, contexts, completions)]


def load(cfg, *, base=None, threads=0, lora=False, first_core=0):
    return TOY_MODEL


def load_trained(cfg, adapter, *, threads=0, first_core=0):
    return TOY_MODEL


def release():
    pass


def gpus(cfg):
    return 0


def unusable(device_type):
    return None if device_type == "cpu" else f"engine toy runs on the CPU only and device is {device_type}"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "toy", engines.Engine("toy", __name__, "answers without a model"))
    return "toy"


class Tokenizer:
    bos_token = "<s>"


# -- the registry --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(engines.ENGINES))
def test_every_engine_provides_every_function_and_hook(name):
    module = engines.get(name)  # importing the vllm engine does not need vLLM installed
    assert [hook for hook in engines.HOOKS if not callable(getattr(module, hook, None))] == []


def test_the_config_offers_the_registered_engines_and_auto():
    assert RunConfig.__dataclass_fields__["engine"].metadata["choices"] == (*engines.ENGINES, engines.AUTO)
    help_text = RunConfig.__dataclass_fields__["engine"].metadata["help"]
    assert all(f"{name}:" in help_text for name in engines.ENGINES)
    with pytest.raises(ConfigError, match="choose one of iwsi, hf, vllm, auto"):
        RunConfig(engine="tgi")


def test_an_unknown_engine_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown engine 'tgi': choose from iwsi, hf, vllm"):
        engines.get("tgi")


def test_the_torch_engines_share_the_pipelines_model_and_vllm_asks_for_gpus_per_instance():
    base = object()
    cfg = RunConfig(vllm_tensor_parallel=4)
    for name in ("iwsi", "hf"):
        assert engines.get(name).load(cfg, base=lambda: base) is base
        assert engines.get(name).gpus(cfg) == 1
    assert engines.get("vllm").gpus(cfg) == 4


# -- a new engine: one module, one registry line ---------------------------------------------------------
def test_a_registered_engine_samples_scores_and_evaluates_through_the_stages(toy):
    questions = [Question("q1", "What is 2+2?", "number", "4"), Question("q2", "What is 3+3?", "number", "6")]
    model = engines.get(toy).load(SimpleNamespace(engine=toy))
    outs = complete(model, None, questions, 3, engine=toy, temperature=0.8, max_new_tokens=8, seed=0)
    assert outs == [[f"{len(question_suffix(q.question))} letters. The answer is {len(question_suffix(q.question))}."]
                    * 3 for q in questions]
    table = loss_table(model, Tokenizer(), ["What is 2+2?"], ["2 and 2 make 4."], engine=toy, span="completion")
    assert table[["loss", "loss_answer", "loss_alone"]].iloc[0].tolist() == [2.0, 2.0, 2.0]
    assert pick_engine(toy, "cpu") == toy
    with pytest.raises(ConfigError, match="engine toy runs on the CPU only and device is cuda"):
        pick_engine(toy, "cuda")


def test_no_module_outside_the_engines_package_asks_which_engine_runs():
    """The pipeline, the Ray workers and the stages call the hooks; a comparison of `engine` with a
    literal outside iwsi/engines/ (and the `auto` policy in device.py) is an engine written as an `if`."""
    asks = re.compile(r"engine\s*(==|!=|in)\s*[\"'(]")
    found = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "iwsi").rglob("*.py"))
             if "engines" not in path.parts
             for number, line in enumerate(path.read_text().splitlines(), 1) if asks.search(line)]
    assert found == []

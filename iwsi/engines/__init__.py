"""The engines: what turns prompts into completions and (context, completion) pairs into mean NLLs.

One module per engine and one registry, `ENGINES`, which config (the `engine` choices), generate,
score, the judges, evaluate, the Ray workers and the benchmarks read. Every engine module provides

    sample(model, tokenizer, prefix, questions, num_samples, *, temperature, max_new_tokens, stop, seed,
           top_p, top_k, progress) -> list[list[str]]
    score_spans(model, tokenizer, contexts, completions, *, progress, [pool]) -> list[Scores]
    score(model, tokenizer, contexts, completions, *, span, progress) -> list[(mean NLL, tokens)]

and the hooks the pipeline and the Ray workers call instead of asking which engine runs:

    load(cfg, *, base, threads, lora, first_core)  what `sample` / `score_spans` take as `model`
                                                   (`base()` gives the shared torch model, loaded once)
    load_trained(cfg, adapter, *, threads, first_core)  the same with the trained LoRA adapter applied
    release()                                      free what `load` holds (before training)
    gpus(cfg)                                      GPUs one instance takes (a Ray actor's num_gpus)
    unusable(device_type)                          why it cannot run there, or None (device.pick_engine)

Adding an engine: one module with these, one `Engine(...)` line below (docs/architecture.md).
No torch here: the config imports this module.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

HOOKS = ("sample", "score", "score_spans", "load", "load_trained", "release", "gpus", "unusable")


@dataclass(frozen=True)
class Engine:
    name: str    # the config value
    module: str  # the module holding the functions and hooks above
    help: str


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("iwsi", "iwsi.engines.native", "fast: shared prefix, continuous batching, CPU only"),
    Engine("hf", "iwsi.engines.hf", "transformers generate and a padded forward: the reference"),
    Engine("vllm", "iwsi.engines.vllm", "vLLM, CPU or GPU build (`make vllm`)"),
)}
AUTO = "auto"  # device.pick_engine: vllm with a GPU where installed, hf on a GPU without it, else iwsi
CHOICES = (*ENGINES, AUTO)


def get(name: str) -> ModuleType:
    """The engine's module, imported on first use (vLLM only where it runs)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[name].module)


def help_text() -> str:
    return "; ".join(f"{e.name}: {e.help}" for e in ENGINES.values()) + f"; {AUTO}: vllm with a GPU, else iwsi"

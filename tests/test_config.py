"""RunConfig: defaults, --set coercion, validation messages naming valid choices."""
import pytest

from iwsi.config import ConfigError, RunConfig, load_config, parse_sets

REQUIRED_KEYS = ("dataset data_dir model num_questions valid_size test_size num_samples temperature max_new_tokens "
                 "method k loss_span epochs learning_rate lora_r lora_alpha seed").split()


def test_every_contract_key_is_settable():
    for key in REQUIRED_KEYS:
        assert hasattr(RunConfig(), key)


def test_set_coerces_types():
    cfg = load_config(overrides=parse_sets(["k=70", "num_samples=3", "temperature=1.1", "embed=false",
                                            "data_dir=none"]))
    assert (cfg.k, cfg.num_samples, cfg.temperature, cfg.embed, cfg.data_dir) == (70.0, 3, 1.1, False, None)


@pytest.mark.parametrize("pairs, message", [
    (["bogus=1"], "unknown config key 'bogus'"),
    (["k=0"], "k=0.0 is out of range"),
    (["k=101"], "k=101.0 is out of range"),
    (["num_samples=0"], "num_samples=0 is too small"),
    (["temperature=-1"], "temperature=-1.0 is too small"),
    (["valid_size=0"], "valid_size=0 is too small"),
    (["method=magic"], "choose one of iwsi, lmsi"),
    (["dataset=mnist"], "choose one of synthetic-arith"),
    (["loss_span=half"], "choose one of full, completion"),
    (["num_samples=two"], "not a valid int"),
    (["method=rm"], "set reward_model="),
    (["judges=self,rm"], "set reward_model="),
    (["judges=iwsi"], "'iwsi' is not a judge: choose from self, rm"),
    (["dataset=gsm8k"], "needs data_dir"),
    (["k"], "is not KEY=VALUE"),
])
def test_bad_values_name_the_problem(pairs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(overrides=parse_sets(pairs))


def test_judge_names_are_the_methods_own_then_the_judges_key():
    assert load_config(overrides={"method": "iwsi"}).judge_names() == ()
    assert load_config(overrides={"method": "self", "judges": "rm, self", "reward_model": "x"}).judge_names() == (
        "self", "rm")


def test_yaml_round_trip_and_missing_file(tmp_path):
    cfg = load_config(overrides={"k": 60, "seed": 3})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_run_id_changes_with_settings():
    a, b = load_config(overrides={"k": 80}), load_config(overrides={"k": 70})
    assert a.run_id() != b.run_id() and a.run_id().startswith("synthetic-arith-iwsi-k80-s0-")


def test_keys_added_after_runs_existed_keep_old_run_ids_at_their_default():
    """A key in ADDED_KEYS counts in the run hash only when set away from its default, so a run directory made
    before the key existed keeps its id; set, it makes another run."""
    from iwsi.config import ADDED_KEYS, FIELDS

    base = RunConfig()
    for key in ADDED_KEYS:
        assert RunConfig(**{key: FIELDS[key].default}).run_id() == base.run_id()
    assert RunConfig(min_agreement=0.5).run_id() != base.run_id()
    assert RunConfig(valid_center="median").run_id() != base.run_id()

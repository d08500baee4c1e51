import pytest

from deepq.config import PRESETS, Config, base_config, parse_overrides
from deepq.errors import UserError


def test_overrides_are_typed():
    got = parse_overrides(["learning_rate=3e-4", "hidden_sizes=128,64", "double_dqn=true",
                           "batch-size=32", "loss=mse"])
    assert got == {"learning_rate": 3e-4, "hidden_sizes": (128, 64), "double_dqn": True,
                   "batch_size": 32, "loss": "mse"}


@pytest.mark.parametrize("pair", ["gamma", "batch_size=abc", "nope=1", "double_dqn=maybe",
                                  "batch_size=1.5"])
def test_malformed_overrides(pair):
    with pytest.raises(UserError):
        parse_overrides([pair])


@pytest.mark.parametrize("changes", [
    {"batch_size": 0}, {"buffer_size": -1}, {"hidden_sizes": (64, 0)}, {"loss": "l1"},
    {"batch_size": 128, "buffer_size": 64}, {"learning_starts": 50_000, "total_steps": 50_000},
    {"gamma": 1.5}, {"learning_rate": 0.0}, {"num_seeds": 0}, {"weight_init": "xavier"},
    {"algo": "reinforce", "weight_init": "torch"},
])
def test_invalid_configs(changes):
    with pytest.raises(UserError):
        Config().replace(**changes).validated()


def test_presets_validate_and_cite():
    for name, preset in PRESETS.items():
        cfg = preset.config().validated()
        assert cfg.env_id == preset.env_id
        assert len(preset.citation) > 20, name


def test_env_default_preset_and_round_trip():
    cfg = base_config("CartPole-v1", None)
    assert cfg == PRESETS["cartpole"].config()
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert base_config("Acrobot-v1", None) == PRESETS["zoo-acrobot"].config()
    assert base_config("LunarLander-v3", None) == Config(env_id="LunarLander-v3")
    with pytest.raises(UserError):
        base_config(None, "no-such-preset")

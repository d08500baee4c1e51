import pytest

from deepq.agents import validated
from deepq.config import Config, parse_overrides
from deepq.errors import UserError
from deepq.presets import PRESETS, base_config


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
    {"algo": "reinforce", "weight_init": "torch"}, {"algo": "dqn2"},
    {"algo": "qrdqn", "distributional": True}, {"algo": "qrdqn", "network": "per_action"},
])
def test_invalid_configs(changes):
    with pytest.raises(UserError):
        _checked(Config().replace(**changes))


def _checked(cfg: Config) -> Config:
    """The whole check: the fields all algorithms share, then the algorithm's own."""
    return validated(cfg.validated())


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


# Each range check of Config.validated: (field, values just outside the range, the allowed
# values at or next to its ends, other fields the check needs).
RANGES = [
    ("tau", [0.0, 1.0001], [1e-9, 1.0], {}),
    ("epsilon_start", [-0.001, 1.001], [0.0, 1.0], {}),
    ("epsilon_end", [-0.001, 1.001], [0.0, 1.0], {}),
    ("eval_epsilon", [-0.001, 1.001], [0.0, 1.0], {}),
    ("epsilon_fraction", [0.0, 1.001], [1e-9, 1.0], {}),
    ("epsilon_decay", [0.0, -1e-4], [1e-12], {}),
    ("epsilon_decay", [1.0001], [1.0], {"epsilon_schedule": "multiplicative"}),
    ("temperature", [0.0, -1.0], [1e-9], {}),
    ("huber_delta", [0.0, -1.0], [1e-9], {}),
    ("priority_alpha", [-0.001], [0.0], {}),
    ("priority_beta", [-0.001, 1.001], [0.0, 1.0], {}),
    ("noisy_sigma0", [0.0, -0.5], [1e-9], {}),
    ("num_atoms", [1, 0], [2], {"distributional": True}),
    ("num_atoms", [1, 0], [2], {"algo": "qrdqn"}),
    ("gamma", [-0.001, 1.001], [0.0, 1.0], {}),
    ("sticky_actions", [-0.001, 1.0], [0.0, 0.999], {}),
    ("learning_rate", [0.0, -1e-3], [1e-12], {}),
    ("max_grad_norm", [-0.001], [0.0], {}),
    ("n_step", [0], [1], {}),
    ("baseline_coef", [-0.001], [0.0], {"algo": "reinforce"}),
    ("frame_resize", [(7, 84), (84, 7), (84,)], [(8, 8)], {}),
    ("frame_crop_top", [27], [26], {"frame_resize": (110, 84)}),
    *[(name, [0], [1], {}) for name in (
        "num_seeds", "num_envs", "batch_size", "total_episodes", "batch_episodes",
        "train_freq", "gradient_steps", "target_update_interval", "eval_episodes",
        "chunk_steps", "select_episodes", "frame_skip", "frame_stack", "max_episode_frames",
        "eval_max_frames")],
    ("total_steps", [0], [1], {"learning_starts": 0}),
    ("buffer_size", [0], [1], {"batch_size": 1}),
    ("buffer_size", [5], [6], {"batch_size": 2, "num_envs": 2, "n_step": 3}),
    *[(name, [-1], [0], {}) for name in (
        "learning_starts", "checkpoint_every", "seed", "select_every", "epsilon_steps",
        "epsilon_delay", "frame_crop_top", "noop_max", "eval_noop_max", "qtrace_states",
        "env_workers")],
]


@pytest.mark.parametrize("name,outside,allowed,context", RANGES,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(RANGES)])
def test_each_range_is_checked_at_its_ends(name, outside, allowed, context):
    base = Config().replace(**context)
    for value in allowed:
        assert getattr(_checked(base.replace(**{name: value})), name) == value
    for value in outside:
        with pytest.raises(UserError, match=name) as err:
            _checked(base.replace(**{name: value}))
        if not isinstance(value, tuple):
            assert str(value) in str(err.value)  # the message quotes the bad value


@pytest.mark.parametrize("changes,message", [
    ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ({"num_seeds": 1.0}, "num_seeds must be an integer, got 1.0"),
    ({"double_dqn": 1}, "double_dqn must be true or false, got 1"),
    ({"batch_size": True}, "batch_size must be an integer, got True"),
    ({"hidden_sizes": (64, 64.0)}, "hidden_sizes must be integers, e.g. 64,64"),
    ({"loss": 3}, "loss must be a string, got 3"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number, got nan"),
    ({"epsilon_decay": float("inf")}, "epsilon_decay must be a finite number, got inf"),
    ({"stop_at_return": -float("inf")}, "stop_at_return must be a finite number, got -inf"),
    ({"total_steps": 10**30}, "total_steps=" + str(10**30) + " is more than the compiled"),
    ({"seed": -2**31}, "seed=-2147483648 is more than the compiled loops can count"),
    ({"total_steps": 2**31 - 1, "num_envs": 2}, "more than the compiled loops can count"),
])
def test_kinds_finiteness_and_int32_budget(changes, message):
    with pytest.raises(UserError) as info:
        Config().replace(**changes).validated()
    assert message in str(info.value)


def test_the_edges_that_fit_are_accepted():
    Config(stop_at_return=float("inf")).validated()
    Config(total_steps=2**31 - 1 - 1000, learning_starts=1000).validated()
    Config(seed=2**31 - 1).validated()


@pytest.mark.parametrize("pair", ["total_steps=inf", "total_steps=nan", "seed=-inf"])
def test_overrides_refuse_infinite_counts(pair):
    with pytest.raises(UserError):
        parse_overrides([pair])

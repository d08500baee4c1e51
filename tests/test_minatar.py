"""MinAtar through gymnax, the papers' conv nets, sticky actions and plane rendering."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.envs.sticky import sticky
from deepq.networks import make_network
from deepq.presets import base_config
from deepq.report import PLANE_COLOURS, draw_planes
from tests.helpers import run_deepq


@pytest.mark.parametrize("name, obs_shape, flat, hidden", [
    ("minatar_cnn", (10, 10, 4), 8 * 8 * 16, 128),      # 3x3/1 VALID: 10 -> 8
    ("dqn2013_cnn", (84, 84, 4), 9 * 9 * 32, 256),      # 8x8/4: 84 -> 20; 4x4/2: 20 -> 9
    ("nature_cnn", (84, 84, 4), 7 * 7 * 64, 512),       # ... 3x3/1: 9 -> 7
])
def test_conv_nets_match_the_papers_layer_sizes(name, obs_shape, flat, hidden):
    net = make_network(name, num_actions=6)
    obs = jnp.zeros((2,) + obs_shape, jnp.uint8)
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    assert params["Dense_0"]["kernel"].shape == (flat, hidden)
    assert params["Dense_1"]["kernel"].shape == (hidden, 6)
    assert net.apply({"params": params}, obs).shape == (2, 6)


def test_torch_init_draws_weights_and_biases_uniformly_within_one_over_root_fan_in():
    # PyTorch's nn.Conv2d / nn.Linear default (kaiming_uniform, a = sqrt(5)) and torch7's:
    # U(-b, b) with b = 1/sqrt(fan_in) for weights and biases, so variance b^2 / 3.
    net = make_network("minatar_cnn", num_actions=6, weight_init="torch")
    params = net.init(jax.random.PRNGKey(1), jnp.zeros((1, 10, 10, 4)))["params"]
    layers = {"Conv_0": (params["Conv_0"]["Dense_0"], 3 * 3 * 4),
              "Dense_0": (params["Dense_0"], 8 * 8 * 16), "Dense_1": (params["Dense_1"], 128)}
    for name, (layer, fan_in) in layers.items():
        bound = 1 / np.sqrt(fan_in)
        for part in ("kernel", "bias"):
            w = np.asarray(layer[part]).ravel()
            assert np.abs(w).max() <= bound and np.all(w != 0), (name, part)
            assert abs(w.mean()) < 4 * bound / np.sqrt(3 * w.size), (name, part)
        w = np.asarray(layer["kernel"]).ravel()  # 576, 131072 and 768 values
        assert np.abs(w).max() > 0.99 * bound, name  # fills the interval
        assert abs(w.var() / (bound ** 2 / 3) - 1) < 4 * np.sqrt(0.8 / w.size), name
    # flax's default, which the other presets keep: LeCun normal kernels, zero biases.
    flax_params = make_network("minatar_cnn", 6).init(
        jax.random.PRNGKey(1), jnp.zeros((1, 10, 10, 4)))["params"]
    hidden = np.asarray(flax_params["Dense_0"]["kernel"])
    assert not np.asarray(flax_params["Dense_0"]["bias"]).any()
    assert abs(hidden.var() * 1024 - 1) < 0.05  # variance 1 / fan_in


def test_sticky_actions_repeat_the_previous_action_at_their_rate():
    prev, chosen = jnp.zeros(20_000, jnp.int32), jnp.ones(20_000, jnp.int32)
    key = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(sticky(key, prev, chosen, 0.0), chosen)
    repeated = float(jnp.mean(sticky(key, prev, chosen, 0.25) == 0))
    assert abs(repeated - 0.25) < 0.015  # binomial sd ~0.003


def test_sticky_rate_is_exact_at_its_bounds():
    """Each env repeats where its draw u ~ U[0, 1) is below the rate, so P(repeat) = prob:
    rate 0 never repeats, not even where u is exactly 0 (key 43692 draws it for env 44), and
    rate 1 always does."""
    key = jax.random.PRNGKey(43692)
    assert float(jax.random.uniform(key, (1000,))[44]) == 0.0  # the boundary draw is there
    prev, chosen = jnp.arange(1000), jnp.arange(1000) + 1000
    np.testing.assert_array_equal(sticky(key, prev, chosen, 0.0), chosen)
    np.testing.assert_array_equal(sticky(key, prev, chosen, 1.0), prev)


def _first_end(env, params, steps: int, action: int = 0):
    """(first terminated step, first truncated step) of one episode under a fixed action."""
    _, state = env.reset(jax.random.PRNGKey(0), params)

    def body(state, key):
        _, state, _, terminated, truncated, _ = env.step(key, state, action, params)
        return state, (terminated, truncated)

    _, (terminated, truncated) = jax.lax.scan(body, state,
                                              jax.random.split(jax.random.PRNGKey(1), steps))
    terminated, truncated = np.asarray(terminated), np.asarray(truncated)
    return (int(terminated.argmax()) if terminated.any() else None,
            int(truncated.argmax()) if truncated.any() else None)


def test_minatar_games_end_when_the_original_games_do():
    """minatar has no step limit (Freeway: a terminal once its 2,500-step clock runs out);
    gymnax truncates at 1,000 steps, and Freeway only truncates."""
    from deepq.envs import MINATAR_MAX_STEPS, make_gymnax

    env, params = make_gymnax("Freeway-MinAtar", True)
    assert _first_end(env, params, 2_600) == (2_499, 2_499)  # the 2,500th step ends it
    for game in ("Asterix", "Breakout", "Seaquest", "SpaceInvaders"):
        env, params = make_gymnax(f"{game}-MinAtar", True)
        assert params.max_steps_in_episode == MINATAR_MAX_STEPS == 10_000
    # Breakout with a paddle that never moves: over in a few dozen steps, by the game.
    env, params = make_gymnax("Breakout-MinAtar", True)
    terminated, truncated = _first_end(env, params, 200)
    assert terminated is not None and terminated < 200 and truncated is None


def test_draw_planes_colours_each_channel():
    obs = np.zeros((2, 2, 3), bool)
    obs[0, 0, 0] = True
    obs[1, 1, 2] = True
    obs[1, 1, 1] = True  # the last set channel wins
    image = draw_planes(obs, scale=2)
    assert image.shape == (4, 4, 3)
    np.testing.assert_array_equal(image[0, 0], PLANE_COLOURS[0])
    np.testing.assert_array_equal(image[3, 3], PLANE_COLOURS[2])
    np.testing.assert_array_equal(image[0, 3], [0, 0, 0])


def test_minatar_preset_is_the_default_for_every_game():
    cfg = base_config("Asterix-MinAtar", None)
    assert cfg.env_id == "Asterix-MinAtar" and cfg.network == "minatar_cnn"
    assert cfg.sticky_actions == 0.1 and cfg.full_action_set


@pytest.mark.e2e
def test_minatar_breakout_trains_evaluates_and_records(tmp_path):
    run = tmp_path / "breakout"
    run_deepq("train", "--env", "Breakout-MinAtar", "--out", str(run), "--quiet",
              "--total-steps", "3000", "--set", "learning_starts=500", "--set",
              "buffer_size=2000", "--set", "eval_episodes=4", "--set", "gif=false",
              "--set", "checkpoint_every=0", check=True, timeout=600)
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 4 and result["env_id"] == "Breakout-MinAtar"
    assert all(0 <= r <= 1000 for r in result["returns"][0])
    gif = tmp_path / "b.gif"
    run_deepq("record", str(run), "--out", str(gif), check=True)
    import imageio.v3 as iio

    frames = iio.imread(gif)
    assert frames.shape[1:3] == (240, 240) and frames.shape[0] >= 2


def test_patch_conv_equals_lax_convolution():
    from deepq.networks import PatchConv

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 12, 3))
    for kernel, stride in ((3, 1), (4, 2), (8, 4)):
        layer = PatchConv(5, kernel, stride)
        params = layer.init(jax.random.PRNGKey(1), x)["params"]["Dense_0"]
        ours = layer.apply({"params": {"Dense_0": params}}, x)
        w = params["kernel"].reshape(kernel, kernel, 3, 5)  # the patch order is (i, j, c)
        ref = jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
        np.testing.assert_allclose(ours, ref + params["bias"], rtol=1e-5, atol=1e-5)

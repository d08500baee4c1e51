"""deepq.networks' defaults and layer names: `dense` and `q_head` called without an init,
`make_network`'s default init and head options, and the torch init's parameter names."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.networks import dense, make_network, q_head


class _Dense(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        return dense(x, self.features)


class _Head(nn.Module):
    noisy: bool = False
    dueling: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        return q_head(x, 3, 8, noisy=self.noisy, dueling=self.dueling,
                      layer_norm=self.layer_norm)


def test_dense_defaults_to_flax_lecun_normal():
    """Without weight_init, `dense` is flax's nn.Dense: zero biases and weights of variance
    1/fan-in (torch's U(+-1/sqrt(fan-in)) would give non-zero biases and variance 1/(3
    fan-in))."""
    fan_in = 400
    params = _Dense(32).init(jax.random.PRNGKey(0), jnp.ones((2, fan_in)))["params"]
    assert sorted(params) == ["Dense_0"]
    kernel, bias = np.asarray(params["Dense_0"]["kernel"]), np.asarray(params["Dense_0"]["bias"])
    assert kernel.shape == (fan_in, 32)
    np.testing.assert_array_equal(bias, 0.0)
    # 12800 draws: the sample std is within ~1% of 1/sqrt(400) = 0.05; torch's is 0.029
    assert abs(kernel.std() - 1 / np.sqrt(fan_in)) < 0.1 / np.sqrt(fan_in)


def test_q_head_defaults_to_lecun_normal_and_sigma0_one_half():
    """q_head without weight_init: zero biases in both layers. Noisy without noisy_sigma0:
    sigma = 0.5 / sqrt(fan-in) (Fortunato et al. 2018, section 3.2, factorised noise)."""
    x = jnp.ones((2, 9))
    params = _Head().init(jax.random.PRNGKey(0), x)["params"]
    assert sorted(params) == ["Dense_0", "Dense_1"]
    assert params["Dense_0"]["kernel"].shape == (9, 8)
    assert params["Dense_1"]["kernel"].shape == (8, 3)
    for layer in params.values():
        np.testing.assert_array_equal(layer["bias"], 0.0)
    noisy = _Head(noisy=True).init(jax.random.PRNGKey(0), x)["params"]
    for name, fan_in in (("Dense_0", 9), ("Dense_1", 8)):
        np.testing.assert_allclose(noisy[name]["sigma_kernel"], 0.5 / np.sqrt(fan_in), rtol=1e-6)
        np.testing.assert_allclose(noisy[name]["sigma_bias"], 0.5 / np.sqrt(fan_in), rtol=1e-6)


def test_make_network_noisy_head_defaults_to_sigma0_one_half():
    """make_network(..., noisy=True) without noisy_sigma0: sigma = 0.5 / sqrt(fan-in)."""
    params = make_network("mlp", 2, (4, 8), noisy=True).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 9)))["params"]
    # Dense_0 is the torso's plain layer; Dense_1 and Dense_2 are the noisy head
    np.testing.assert_array_equal(params["Dense_0"]["bias"], 0.0)
    for name, fan_in in (("Dense_1", 4), ("Dense_2", 8)):
        np.testing.assert_allclose(params[name]["sigma_kernel"], 0.5 / np.sqrt(fan_in), rtol=1e-6)
        np.testing.assert_allclose(params[name]["sigma_bias"], 0.5 / np.sqrt(fan_in), rtol=1e-6)


@pytest.mark.parametrize("name,obs,count", [("mlp", (1, 6), 3), ("per_action", (1, 6), 9),
                                            ("minatar_cnn", (1, 10, 10, 4), 3)])
def test_make_network_defaults_to_lecun_normal(name, obs, count):
    """Without weight_init every dense layer (the convs' too) starts with zero biases."""
    params = make_network(name, 3, (16, 8)).init(jax.random.PRNGKey(0), jnp.zeros(obs))["params"]
    layers = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, dict) and "bias" in x)
    assert len(layers) == count
    for layer in layers:
        np.testing.assert_array_equal(layer["bias"], 0.0)


def test_conv_network_takes_the_head_options():
    """make_network hands dueling, noisy (sigma0 0.5 by default) and atoms to the conv net's
    head. MinAtar's conv: 16 3x3 filters on 10x10 -> 8x8x16 = 1024 features -> 128 units."""
    obs = jnp.zeros((2, 10, 10, 4))
    dueling = make_network("minatar_cnn", 4, dueling=True).init(jax.random.PRNGKey(0), obs)
    assert sorted(dueling["params"]) == ["Conv_0", "advantage", "advantage_hidden", "value",
                                         "value_hidden"]
    assert dueling["params"]["value"]["kernel"].shape == (128, 1)
    assert dueling["params"]["advantage"]["kernel"].shape == (128, 4)
    noisy = make_network("minatar_cnn", 4, noisy=True).init(jax.random.PRNGKey(0), obs)["params"]
    np.testing.assert_allclose(noisy["Dense_0"]["sigma_kernel"], 0.5 / 32, rtol=1e-6)
    np.testing.assert_allclose(noisy["Dense_1"]["sigma_bias"], 0.5 / np.sqrt(128), rtol=1e-6)
    net = make_network("minatar_cnn", 4, atoms=5)
    logits = net.apply(net.init(jax.random.PRNGKey(0), obs), obs)
    assert logits.shape == (2, 4, 5)


def test_torch_init_keeps_the_layer_names():
    """The torch init names its layers as lecun_normal does (checkpoints and the dueling
    streams are found by name)."""
    duel = make_network("mlp", 3, (6, 5), dueling=True, weight_init="torch").init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4)))["params"]
    assert sorted(duel) == ["Dense_0", "advantage", "advantage_hidden", "value", "value_hidden"]
    assert duel["value"]["kernel"].shape == (5, 1) and duel["advantage"]["kernel"].shape == (5, 3)
    per_action = make_network("per_action", 2, (5, 4), weight_init="torch").init(
        jax.random.PRNGKey(0), jnp.zeros((1, 3)))["params"]
    assert sorted(per_action) == sorted(f"action_{a}_{layer}" for a in range(2)
                                        for layer in ("Dense_0", "Dense_1", "out"))
    assert per_action["action_1_out"]["kernel"].shape == (4, 1)
    # U(+-1/sqrt(fan-in)) biases, not zero: the torch branch named them
    assert np.abs(np.asarray(duel["value"]["bias"])).min() > 0


def _layer_norm(h: np.ndarray, p: dict) -> np.ndarray:
    """LayerNorm over the last axis (Ba et al. 2016; flax's epsilon 1e-6)."""
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6)
    return h * np.asarray(p["scale"]) + np.asarray(p["bias"])


@pytest.mark.parametrize("dueling", [False, True])
def test_q_head_normalises_each_hidden_layer_before_its_activation(dueling):
    """layer_norm=True: every hidden layer of the head (the plain one, or the value and
    advantage streams) is LayerNorm-ed before its ReLU; Q by hand from the params."""
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (4, 9))) * 3
    head = _Head(dueling=dueling, layer_norm=True)
    params = head.init(jax.random.PRNGKey(0), x)["params"]
    p = jax.tree.map(np.asarray, params)

    def stream(hidden: str, out: str, norm: str) -> np.ndarray:
        h = x @ p[hidden]["kernel"] + p[hidden]["bias"]
        h = np.maximum(_layer_norm(h, p[norm]), 0)
        return h @ p[out]["kernel"] + p[out]["bias"]

    if dueling:
        assert sorted(params) == ["LayerNorm_0", "LayerNorm_1", "advantage", "advantage_hidden",
                                  "value", "value_hidden"]
        value = stream("value_hidden", "value", "LayerNorm_0")
        advantage = stream("advantage_hidden", "advantage", "LayerNorm_1")
        want = value + advantage - advantage.mean(-1, keepdims=True)
    else:
        assert sorted(params) == ["Dense_0", "Dense_1", "LayerNorm_0"]
        want = stream("Dense_0", "Dense_1", "LayerNorm_0")
    np.testing.assert_allclose(np.asarray(head.apply({"params": params}, x)), want,
                               rtol=1e-4, atol=1e-5)
    plain = _Head(dueling=dueling).init(jax.random.PRNGKey(0), x)["params"]
    assert not any(name.startswith("LayerNorm") for name in plain)

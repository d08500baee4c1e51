"""The DQN agent's wiring against values computed in numpy: the network make_agent builds
(init, dueling, noisy sigma0), the noise of a noisy update's three passes, target_update
"none", the q_mean metric, the update counter, epsilon_mix and the run's update horizon."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.agents.base import epsilon_mix, make_optimizer
from deepq.agents.dqn import elementwise_loss, expected_updates, make_agent
from deepq.config import Config
from deepq.drivers.common import trains_at
from deepq.networks import make_network
from deepq.replay import Batch

SMALL = dict(hidden_sizes=(8,), optimizer="sgd", max_grad_norm=0.0, loss="mse",
             learning_rate=0.1, target_update="hard", target_update_interval=1000)


_COMPILED: dict = {}


def compiled(cfg: Config, num_actions: int):
    """The agent of `cfg` and its jitted init and update, compiled once per config. Every
    call builds the agent, so that each test that uses it calls make_agent (mutation
    testing runs, for a mutant of make_agent, the tests that call it)."""
    agent = make_agent(cfg, num_actions)
    if (cfg, num_actions) not in _COMPILED:
        _COMPILED[cfg, num_actions] = agent, jax.jit(agent.init), jax.jit(agent.update)
    return _COMPILED[cfg, num_actions]


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def mlp_q(params, obs):
    """Q(s, .) = relu(x W0 + b0) W1 + b1 of the one-hidden-layer MLP."""
    p = _np(params)["params"]
    h = np.maximum(np.asarray(obs, np.float64) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
    return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]


def _rows(n=16, seed=0, scale=2.0):
    """obs, next_obs, actions 0-2, rewards from -1 to 1.5, every fourth row terminal."""
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n, 4)))
    next_obs = np.asarray(jax.random.normal(jax.random.PRNGKey(seed + 1), (n, 4))) * scale
    action = np.arange(n) % 3
    reward = np.linspace(-1.0, 1.5, n)
    discount = np.where(np.arange(n) % 4 == 3, 0.0, 0.9)
    return obs, next_obs, action, reward, discount


def _batch(obs, next_obs, action, reward, discount, weight=None):
    weight = np.ones(len(obs)) if weight is None else weight
    return Batch(jnp.asarray(obs, jnp.float32), jnp.asarray(action, jnp.int32),
                 jnp.asarray(reward, jnp.float32), jnp.asarray(next_obs, jnp.float32),
                 jnp.asarray(discount, jnp.float32), jnp.asarray(weight, jnp.float32))


def _disagreeing(init, obs_example):
    state = init(jax.random.PRNGKey(0), obs_example)
    return state._replace(target_params=init(jax.random.PRNGKey(1), obs_example).params)


# --- the network make_agent builds -----------------------------------------------------------


def _dense_layers(params):
    return jax.tree.leaves(params["params"], is_leaf=lambda x: isinstance(x, dict) and "bias" in x)


def test_make_agent_initialises_with_the_configured_weight_init():
    """lecun_normal: flax's zero biases; torch: weights and biases U(+-1/sqrt(fan-in))."""
    lecun = make_agent(Config(hidden_sizes=(16, 8)), 3).init(jax.random.PRNGKey(0), jnp.zeros(5))
    layers = _dense_layers(lecun.params)
    assert len(layers) == 3
    for layer in layers:
        np.testing.assert_array_equal(layer["bias"], 0.0)
    torch = make_agent(Config(hidden_sizes=(16, 8), weight_init="torch"), 3).init(
        jax.random.PRNGKey(0), jnp.zeros(5))
    layers = _dense_layers(torch.params)
    assert len(layers) == 3
    for layer in layers:
        bound = 1 / np.sqrt(layer["kernel"].shape[0])
        for leaf in (np.asarray(layer["kernel"]), np.asarray(layer["bias"])):
            assert np.abs(leaf).max() <= bound + 1e-7
            assert np.abs(leaf).min() > 0  # no zero biases
        # U(-b, b) has standard deviation b / sqrt(3); lecun_normal's would be ~sqrt(3) b
        assert np.std(np.asarray(layer["kernel"])) < 0.75 * bound


def test_make_agent_dueling_q_is_value_plus_centred_advantage():
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al. 2016, eq. 9), each stream
    with its own hidden layer, from the params make_agent's network holds."""
    agent = make_agent(Config(hidden_sizes=(8,), dueling=True), 3)
    params = agent.init(jax.random.PRNGKey(0), jnp.zeros(4)).params
    p = _np(params)["params"]
    assert sorted(p) == ["advantage", "advantage_hidden", "value", "value_hidden"]
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (6, 4)))

    def stream(name):
        h = np.maximum(obs @ p[f"{name}_hidden"]["kernel"] + p[f"{name}_hidden"]["bias"], 0)
        return h @ p[name]["kernel"] + p[name]["bias"]

    v, a = stream("value"), stream("advantage")
    assert v.shape == (6, 1) and a.shape == (6, 3)
    np.testing.assert_allclose(agent.q_values(params, obs), v + a - a.mean(1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_make_agent_noisy_layers_take_the_configured_sigma0():
    """sigma = sigma0 / sqrt(fan-in) at init (Fortunato et al. 2018, section 3.2), sigma0
    = 0.3 here (not the 0.5 default)."""
    agent = make_agent(Config(hidden_sizes=(8,), noisy=True, noisy_sigma0=0.3), 2)
    p = _np(agent.init(jax.random.PRNGKey(0), jnp.zeros(4)).params)["params"]
    for name, fan_in in (("Dense_0", 4), ("Dense_1", 8)):
        np.testing.assert_allclose(p[name]["sigma_kernel"], 0.3 / np.sqrt(fan_in), rtol=1e-6)
        np.testing.assert_allclose(p[name]["sigma_bias"], 0.3 / np.sqrt(fan_in), rtol=1e-6)


def test_update_counter_is_int32_from_init_on():
    _, init, update = compiled(Config(**SMALL), 3)
    state = init(jax.random.PRNGKey(0), jnp.zeros(4))
    assert state.updates.dtype == jnp.int32 and int(state.updates) == 0
    state, _ = update(state, _batch(*_rows()), jax.random.PRNGKey(2))
    assert state.updates.dtype == jnp.int32 and int(state.updates) == 1


# --- the update: target_update="none" and the q_mean metric -------------------------------


def test_target_update_none_bootstraps_from_the_online_network():
    """Without a target network y = r + discount max_a Q_online(s', a), whatever the state's
    target_params hold, and the target stays the online params after the update."""
    cfg = Config(**{**SMALL, "target_update": "none"})
    _, init, update = compiled(cfg, 3)
    state = _disagreeing(init, jnp.zeros(4))
    obs, next_obs, action, reward, discount = _rows()
    q = mlp_q(state.params, obs)[np.arange(16), action]
    loss = np.mean((q - reward - discount * mlp_q(state.params, next_obs).max(1)) ** 2)
    with_target = np.mean((q - reward - discount * mlp_q(state.target_params, next_obs).max(1))
                          ** 2)
    assert not np.isclose(loss, with_target, rtol=1e-2)
    new_state, metrics = update(state, _batch(obs, next_obs, action, reward, discount),
                                jax.random.PRNGKey(3))
    assert float(metrics["loss"]) == pytest.approx(loss, rel=1e-5)
    for got, want in zip(jax.tree.leaves(new_state.target_params),
                         jax.tree.leaves(new_state.params)):
        np.testing.assert_array_equal(got, want)


def test_q_mean_is_the_batch_mean_of_the_greedy_q():
    """q_mean = mean_i max_a Q(s_i, a): not the largest Q of the batch, nor the mean over
    actions of each action's largest Q."""
    _, init, update = compiled(Config(**SMALL), 3)
    state = _disagreeing(init, jnp.zeros(4))
    obs, next_obs, action, reward, discount = _rows(seed=5)
    obs = obs * np.linspace(0.2, 3.0, 16)[:, None]  # spread the rows' Q-values apart
    q = mlp_q(state.params, obs)
    want = q.max(1).mean()
    for wrong in (q.max(), q.max(0).mean()):
        assert not np.isclose(want, wrong, rtol=1e-2)
    _, metrics = update(state, _batch(obs, next_obs, action, reward, discount),
                        jax.random.PRNGKey(6))
    assert float(metrics["q_mean"]) == pytest.approx(want, rel=1e-5)


# --- noisy nets: independent noise for the online, target and selection passes ----------


def _noisy_q(params, obs, noise):
    """The noisy MLP in numpy: each layer's w = mu + sigma * f_in f_out^T, b = mu_b + sigma_b
    f_out (Fortunato et al. 2018, eq. 10-11). Returns Q and the hidden activations."""
    p = _np(params)["params"]

    def layer(x, name):
        f_in, f_out = noise[name]
        w = p[name]["mu_kernel"] + p[name]["sigma_kernel"] * np.outer(f_in, f_out)
        return x @ w + p[name]["mu_bias"] + p[name]["sigma_bias"] * f_out

    h = np.maximum(layer(np.asarray(obs, np.float64), "Dense_0"), 0.0)
    return layer(h, "Dense_1"), h


def _noise_of(key, params):
    """The factorised noise vectors (f(e_in), f(e_out)) each noisy layer draws from `key`,
    read from the layers' own record of them."""
    net = make_network("mlp", 3, (8,), noisy=True)
    _, seen = net.apply(params, jnp.zeros((1, 4)), rngs={"noise": key},
                        mutable=["intermediates"])
    return {name: tuple(np.asarray(v, np.float64) for v in seen["intermediates"][name]["noise"][0])
            for name in ("Dense_0", "Dense_1")}


def test_noisy_double_dqn_update_draws_three_independent_noises():
    """A noisy Double DQN update: the online pass at s, the target pass at s' and the online
    selection pass at s' each draw their own noise, from split(key, 3) in that order. The
    loss mean_i (Q(s_i, a_i) - y_i)^2, y = r + discount Q_target(s', argmax_a Q_select(s', a)),
    and the SGD step on the last layer's mu and sigma follow from the three noises."""
    cfg = Config(**SMALL, noisy=True, double_dqn=True)
    _, init, update = compiled(cfg, 3)
    state = _disagreeing(init, jnp.zeros(4))
    rows = _rows(n=32, seed=7, scale=1.0)
    obs, next_obs, action, reward, discount = rows
    key = jax.random.PRNGKey(11)
    noise = [_noise_of(k, state.params) for k in jax.random.split(key, 3)]
    mean = {name: (np.zeros(f_in.size), np.zeros(f_out.size))
            for name, (f_in, f_out) in noise[0].items()}

    def loss(online, target, select):
        q = _noisy_q(state.params, obs, online)[0][np.arange(32), action]
        best = _noisy_q(state.params, next_obs, select)[0].argmax(1)
        y = reward + discount * _noisy_q(state.target_params, next_obs, target)[0][
            np.arange(32), best]
        return np.mean((q - y) ** 2), q - y

    want, delta = loss(*noise)
    # each pass without its noise, or all three sharing one, gives another loss
    for wrong in ((mean, noise[1], noise[2]), (noise[0], mean, noise[2]),
                  (noise[0], noise[1], mean), (noise[0],) * 3, (mean,) * 3):
        assert abs(loss(*wrong)[0] - want) > 1e-3 * want

    new_state, metrics = update(state, _batch(*rows), key)
    assert float(metrics["loss"]) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(metrics["errors"], np.abs(delta), rtol=1e-4, atol=1e-5)
    # dL/dQ(s_i, a_i) = 2 delta_i / B; the output layer's w = mu + sigma f_in f_out^T
    _, h = _noisy_q(state.params, obs, noise[0])
    dq = np.zeros((32, 3))
    dq[np.arange(32), action] = 2 * delta / 32
    f_in, f_out = noise[0]["Dense_1"]
    grads = {"mu_kernel": h.T @ dq, "sigma_kernel": (h.T @ dq) * np.outer(f_in, f_out),
             "mu_bias": dq.sum(0), "sigma_bias": dq.sum(0) * f_out}
    old, new = _np(state.params)["params"]["Dense_1"], new_state.params["params"]["Dense_1"]
    for name, grad in grads.items():
        np.testing.assert_allclose(new[name], old[name] - 0.1 * grad, rtol=2e-5, atol=1e-6)


# --- epsilon_mix ----------------------------------------------------------------------------


def test_epsilon_mix_flips_a_coin_per_action():
    """Each action is replaced by a uniform one with probability epsilon, independently: at
    epsilon 0.5 with 4 actions about 0.5 * 3/4 of 4000 greedy actions change, not all or
    none of them."""
    greedy = jnp.zeros(4000, jnp.int32)
    for seed in range(3):
        k_explore, k_random = jax.random.split(jax.random.PRNGKey(seed))
        out = np.asarray(epsilon_mix(k_explore, k_random, greedy, jnp.float32(0.5), 4))
        assert 0.34 < np.mean(out != 0) < 0.41
        assert np.bincount(out[out != 0], minlength=4)[1:].min() > 400  # uniform over 1..3


def test_epsilon_zero_keeps_every_action_even_on_a_zero_draw():
    """Explore when u < epsilon, u ~ U[0, 1): the probability is epsilon exactly, so epsilon 0
    never explores. PRNGKey(43692) draws u = 0.0 exactly at position 44 of 64 (found by a
    search over keys), where u <= epsilon would explore."""
    k_explore = jax.random.PRNGKey(43692)
    assert float(jax.random.uniform(k_explore, (64,))[44]) == 0.0
    greedy = jnp.full(64, 7, jnp.int32)
    for seed in range(4):
        out = epsilon_mix(k_explore, jax.random.PRNGKey(seed), greedy, jnp.float32(0.0), 1000)
        np.testing.assert_array_equal(out, greedy)


# --- the loss and optimizer choices ----------------------------------------------------------


def test_huber_and_pseudo_huber_default_to_k_one():
    """Without huber_delta the losses are the Nature DQN's k = 1: 0.5 d^2 inside, |d| - 0.5
    outside; pseudo-Huber sqrt(1 + d^2) - 1."""
    delta = jnp.array([0.5, -3.0, 1.5])
    np.testing.assert_allclose(elementwise_loss(delta, "huber"), [0.125, 2.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(elementwise_loss(delta, "pseudo_huber"),
                               np.sqrt(1 + np.array([0.25, 9.0, 2.25])) - 1, rtol=1e-6)


def test_an_unknown_loss_or_optimizer_is_named_in_the_error():
    with pytest.raises(ValueError, match="quartic"):
        elementwise_loss(jnp.ones(2), "quartic")
    with pytest.raises(ValueError, match="lion"):
        make_optimizer(Config(optimizer="lion"), 10)


# --- the run's update horizon ----------------------------------------------------------------


@pytest.mark.parametrize("envs,starts,batch,freq,total,steps,rounds", [
    # 2 envs: j vector steps give 2j >= 5 from j = 3; j = 3..10 train
    (2, 5, 2, 1, 20, 1, 8),
    # 4 envs: 4j >= 10 (the batch) from j = 3; every 2nd j: 4, 6, 8, 10
    (4, 0, 10, 2, 40, 3, 4),
    # 4 envs: 4j >= 4 and >= 3 from j = 1; j = 1, 2, 3
    (4, 3, 4, 1, 12, 1, 3),
    # 3 envs, nothing to wait for past the first step: j = 1..5 (ceil(14 / 3) = 5)
    (3, 0, 2, 1, 14, 2, 5),
])
def test_expected_updates_with_several_envs(envs, starts, batch, freq, total, steps, rounds):
    """The horizon of the lr and beta schedules: the training rounds j (vector steps) that are
    multiples of train_freq with j * num_envs reaching learning_starts and a batch, times
    gradient_steps, counted by hand; the driver's clock agrees."""
    cfg = Config(num_envs=envs, learning_starts=starts, batch_size=batch, train_freq=freq,
                 total_steps=total, gradient_steps=steps)
    assert sum(bool(trains_at(cfg, it)) for it in range(cfg.iterations)) == rounds
    got = expected_updates(cfg)
    assert type(got) is int and got == rounds * steps


def test_a_linear_learning_rate_reaches_zero_after_the_runs_updates():
    """lr_schedule=linear anneals the step size to 0 over expected_updates(cfg) updates (3
    here): the 3rd update still moves the params (lr / 3), a 4th leaves them where they are."""
    cfg = Config(**{**SMALL, "lr_schedule": "linear"}, total_steps=4, learning_starts=2,
                 batch_size=1, num_envs=1, train_freq=1)
    assert expected_updates(cfg) == 3
    _, init, update = compiled(cfg, 3)
    state = init(jax.random.PRNGKey(0), jnp.zeros(4))
    batch = _batch(*_rows(n=4, seed=2))
    params = [state.params]
    for i in range(4):
        state, _ = update(state, batch, jax.random.PRNGKey(i))
        params.append(state.params)

    def moved(a, b):
        return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    assert moved(params[0], params[1]) > 1e-4 and moved(params[2], params[3]) > 1e-5
    assert moved(params[3], params[4]) < 1e-7  # lr 0, to float rounding


def test_make_agent_puts_layer_norm_where_the_config_asks():
    """layer_norm=True: (h - mean) / sqrt(var + 1e-6) * scale + bias before the hidden
    activation (Ba et al. 2016); Q by hand from the agent's own params."""
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (5, 4))) * 3.0
    for layer_norm in (True, False):
        agent, init, _ = compiled(Config(**SMALL, layer_norm=layer_norm), 3)
        state = init(jax.random.PRNGKey(0), jnp.zeros(4))
        p = _np(state.params)["params"]
        assert ("LayerNorm_0" in p) is layer_norm
        h = obs @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
        if layer_norm:
            h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6)
            h = h * p["LayerNorm_0"]["scale"] + p["LayerNorm_0"]["bias"]
        want = np.maximum(h, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
        got = np.asarray(agent.q_values(state.params, jnp.asarray(obs, jnp.float32)))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

"""Rainbow's parts (issue 4) against hand-computed values and independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import replay
from deepq.agents.dqn import categorical_projection, make_agent
from deepq.config import Config
from deepq.networks import NoisyDense, make_network
from deepq.replay import Transition
from tests.helpers import algorithm_1, softmax

# --- C51 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reward,discount,expected", [
    # Tz = 0.5 + 0.5 z = [0, 0.5, 1]: atom 0's 0.2 lands on z=0, atom 1's 0.3 splits evenly
    # between z=0 and z=1, atom 2's 0.5 lands on z=1.
    (0.5, 0.5, [0.0, 0.35, 0.65]),
    # Tz = 0.25 + z = [-0.75, 0.25, 1.25 -> 1]: 0.2 splits 0.75/0.25 over z=-1, 0;
    # 0.3 splits 0.75/0.25 over z=0, 1; 0.5 is clipped onto z=1.
    (0.25, 1.0, [0.15, 0.275, 0.575]),
    # terminal (discount 0) with reward -3: every atom clips onto v_min.
    (-3.0, 0.0, [1.0, 0.0, 0.0]),
])
def test_categorical_projection_by_hand(reward, discount, expected):
    support = jnp.array([-1.0, 0.0, 1.0])
    probs = jnp.array([[0.2, 0.3, 0.5]])
    got = categorical_projection(jnp.array([reward]), jnp.array([discount]), probs, support)
    np.testing.assert_allclose(got[0], expected, atol=1e-6)


def test_categorical_projection_matchesalgorithm_1():
    rng = np.random.default_rng(0)
    support = np.linspace(-10.0, 10.0, 51)
    rewards = rng.normal(0, 3, 64).round(2)
    discounts = rng.choice([0.0, 0.99, 0.99**3], 64)
    probs = rng.dirichlet(np.ones(51), 64)
    got = categorical_projection(jnp.asarray(rewards, jnp.float32),
                                 jnp.asarray(discounts, jnp.float32),
                                 jnp.asarray(probs, jnp.float32), jnp.asarray(support,
                                                                              jnp.float32))
    want = np.stack([algorithm_1(r, d, p, support) for r, d, p in
                     zip(rewards, discounts, probs)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got).sum(axis=1), 1.0, atol=1e-5)


def test_c51_loss_is_the_cross_entropy_to_the_projected_target():
    cfg = Config(hidden_sizes=(8,), distributional=True, num_atoms=5, v_min=-2.0, v_max=2.0,
                 gamma=0.9)
    agent = make_agent(cfg, 2)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(4))
    obs = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    batch = replay.Batch(obs, jnp.array([0, 1, 1]), jnp.array([1.0, -0.5, 0.0]), obs[::-1],
                         jnp.array([0.9, 0.0, 0.81]))
    net = make_network("mlp", 2, (8,), atoms=5)
    support = np.linspace(-2.0, 2.0, 5)

    logits = np.asarray(net.apply(state.params, obs), np.float64)
    next_logits = np.asarray(net.apply(state.target_params, obs[::-1]), np.float64)
    losses = []
    for i in range(3):
        next_p = softmax(next_logits[i])  # [A, atoms]
        best = np.argmax((next_p * support).sum(-1))
        target = algorithm_1(float(batch.reward[i]), float(batch.discount[i]), next_p[best],
                              support)
        log_p = np.log(softmax(logits[i, int(batch.action[i])]))
        losses.append(-(target * log_p).sum())
    _, metrics = agent.update(state, batch, jax.random.PRNGKey(2))
    assert float(metrics["loss"]) == pytest.approx(np.mean(losses), rel=1e-5)
    # Q is the mean of the distribution: sum_i z_i p_i
    q = np.asarray(agent.q_values(state.params, obs))
    np.testing.assert_allclose(q, (softmax(logits) * support).sum(-1), rtol=1e-5, atol=1e-6)


# --- dueling ------------------------------------------------------------------------------

def test_dueling_head_is_value_plus_centred_advantage():
    net = make_network("mlp", 3, (6, 5), dueling=True)
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
    params = net.init(jax.random.PRNGKey(1), obs)["params"]
    x = np.asarray(obs, np.float64)

    def dense(name, h):
        return h @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])

    torso = np.maximum(dense("Dense_0", x), 0.0)
    v = dense("value", np.maximum(dense("value_hidden", torso), 0.0))  # [4, 1]
    a = dense("advantage", np.maximum(dense("advantage_hidden", torso), 0.0))  # [4, 3]
    want = v + a - a.mean(axis=1, keepdims=True)
    got = np.asarray(net.apply({"params": params}, obs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.mean(axis=1), v[:, 0], rtol=1e-5, atol=1e-6)


def test_plain_networks_keep_their_parameter_names():
    """Checkpoints from before the head options still load: same names as before."""
    mlp = make_network("mlp", 2, (64, 64)).init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    assert sorted(mlp["params"]) == ["Dense_0", "Dense_1", "Dense_2"]
    cnn = make_network("minatar_cnn", 6).init(jax.random.PRNGKey(0), jnp.zeros((1, 10, 10, 4)))
    assert sorted(cnn["params"]) == ["Conv_0", "Dense_0", "Dense_1"]


@pytest.mark.parametrize("name,obs", [("mlp", (1, 6)), ("per_action", (1, 6)),
                                      ("minatar_cnn", (1, 10, 10, 4))])
def test_make_network_hands_the_init_to_every_layer(name, obs):
    """weight_init=torch: weights and biases U(+-1/sqrt(fan-in)) in every dense layer (no
    zero biases, which flax's default would leave)."""
    params = make_network(name, 3, (8,), weight_init="torch").init(
        jax.random.PRNGKey(0), jnp.zeros(obs))["params"]
    layers = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, dict) and "bias" in x)
    assert len(layers) == {"mlp": 2, "per_action": 6, "minatar_cnn": 3}[name]
    for layer in layers:
        fan_in = layer["kernel"].shape[0]
        for leaf in (layer["kernel"], layer["bias"]):
            assert np.abs(np.asarray(leaf)).max() <= 1 / np.sqrt(fan_in) + 1e-7
        assert np.abs(np.asarray(layer["bias"])).min() > 0


def test_noisy_head_takes_its_sigma0():
    """sigma = sigma0 / sqrt(fan-in) at init, with the sigma0 given (0.3 here, not 0.5)."""
    params = make_network("mlp", 2, (8,), noisy=True, noisy_sigma0=0.3).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4)))["params"]
    np.testing.assert_allclose(params["Dense_0"]["sigma_kernel"], 0.3 / 2.0, rtol=1e-6)
    np.testing.assert_allclose(params["Dense_1"]["sigma_bias"], 0.3 / np.sqrt(8), rtol=1e-6)


def test_per_action_networks_by_hand():
    net = make_network("per_action", 3, (5, 4), activation="tanh")
    obs = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
    params = net.init(jax.random.PRNGKey(1), obs)["params"]
    x = np.asarray(obs, np.float64)
    got = np.asarray(net.apply({"params": params}, obs))
    for a in range(3):
        h = x
        for i in range(2):
            layer = params[f"action_{a}_Dense_{i}"]
            h = np.tanh(h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]))
        out = params[f"action_{a}_out"]
        q = h @ np.asarray(out["kernel"]) + np.asarray(out["bias"])
        np.testing.assert_allclose(got[:, a], q[:, 0], rtol=1e-5, atol=1e-6)
    # each action's net is its own: a gradient of Q[:, 0] touches only network 0
    grads = jax.grad(lambda p: net.apply({"params": p}, obs)[:, 0].sum())(params)
    for name, leaf in grads.items():
        touched = any(np.abs(np.asarray(v)).sum() > 0 for v in leaf.values())
        assert touched == name.startswith("action_0_"), name


# --- noisy nets ---------------------------------------------------------------------------

def test_noisy_dense_factorised_noise_by_hand():
    layer = NoisyDense(3, sigma0=0.5)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    variables = layer.init(jax.random.PRNGKey(1), x)
    p = {k: np.asarray(v, np.float64) for k, v in variables["params"].items()}
    # init: sigma = sigma0 / sqrt(fan-in), mu within +-1/sqrt(fan-in)
    np.testing.assert_allclose(p["sigma_kernel"], 0.25)
    np.testing.assert_allclose(p["sigma_bias"], 0.25)
    assert np.abs(p["mu_kernel"]).max() <= 0.5
    # no noise rng: the mean layer
    mean = np.asarray(layer.apply(variables, x))
    np.testing.assert_allclose(mean, np.asarray(x) @ p["mu_kernel"] + p["mu_bias"], rtol=1e-5,
                               atol=1e-6)
    # with noise: w = mu + sigma * f(e_in) f(e_out)^T, b = mu_b + sigma_b f(e_out)
    key = jax.random.PRNGKey(7)
    noisy, seen = layer.apply(variables, x, rngs={"noise": key}, mutable=["intermediates"])
    noisy = np.asarray(noisy)
    f_in, f_out = (np.asarray(v, np.float64) for v in seen["intermediates"]["noise"][0])
    # the noise is f(e) = sign(e) sqrt(|e|): its square is |e|, a half-normal draw
    assert f_in.shape == (4,) and f_out.shape == (3,)
    w = p["mu_kernel"] + p["sigma_kernel"] * np.outer(f_in, f_out)
    b = p["mu_bias"] + p["sigma_bias"] * f_out
    np.testing.assert_allclose(noisy, np.asarray(x) @ w + b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(noisy, mean)


def test_noisy_agent_explores_through_its_weights():
    cfg = Config(hidden_sizes=(16,), noisy=True)
    agent = make_agent(cfg, 4)
    params = agent.init(jax.random.PRNGKey(0), jnp.zeros(3)).params
    obs = jnp.ones((1, 3))
    actions = {int(agent.act(params, obs, jax.random.PRNGKey(k), 0.0)[0]) for k in range(200)}
    assert len(actions) > 1  # epsilon 0, yet the noise changes the greedy action
    # Q-values for evaluation and traces come from the mean weights mu (no noise)
    layers = [params["params"][name] for name in ("Dense_0", "Dense_1")]
    h = np.maximum(np.asarray(obs) @ np.asarray(layers[0]["mu_kernel"])
                   + np.asarray(layers[0]["mu_bias"]), 0.0)
    mean_q = h @ np.asarray(layers[1]["mu_kernel"]) + np.asarray(layers[1]["mu_bias"])
    np.testing.assert_allclose(agent.q_values(params, obs), mean_q, rtol=1e-5, atol=1e-6)


# --- n-step returns -----------------------------------------------------------------------

def _episode_store(capacity):
    """Six transitions of one env: rewards 1..6, a true terminal at t=2, a time-limit
    truncation at t=4. obs = t, next_obs = t + 0.5."""
    t = jnp.arange(6, dtype=jnp.float32)
    items = Transition(t, jnp.zeros(6, jnp.int32), t + 1, t + 0.5,
                       jnp.array([0, 0, 1, 0, 0, 0], jnp.float32),
                       jnp.array([0, 0, 1, 0, 1, 0], jnp.float32))
    state = replay.init(capacity, jax.tree.map(lambda x: x[0], items))
    for i in range(6):
        state = replay.add_batch(state, Transition(*(x[i:i + 1] for x in items)))
    return state


# obs -> (return, discount, next_obs) for n = 3, gamma = 0.5, worked out by hand:
# t=0: 1 + .5*2 + .25*3 = 2.75, stops at the terminal t=2: discount 0, next_obs 2.5
# t=1: 2 + .5*3 = 3.5, terminal at t=2: discount 0
# t=2: 3, terminal: discount 0
# t=3: 4 + .5*5 = 6.5, truncated at t=4: bootstrap from next_obs 4.5 with .5^2 = 0.25
N_STEP_BY_HAND = {0.0: (2.75, 0.0, 2.5), 1.0: (3.5, 0.0, 2.5), 2.0: (3.0, 0.0, 2.5),
                  3.0: (6.5, 0.25, 4.5)}


@pytest.mark.parametrize("capacity,sampleable", [(8, {0.0, 1.0, 2.0, 3.0}),
                                                 (4, {2.0, 3.0})])  # 4: the ring wrapped
def test_n_step_returns_by_hand(capacity, sampleable):
    state = _episode_store(capacity)
    batch = replay.sample_n_step(state, jax.random.PRNGKey(0), 512, n=3, gamma=0.5,
                                 num_envs=1)
    seen = set()
    for obs, ret, disc, nxt in zip(*(np.asarray(x) for x in (batch.obs, batch.reward,
                                                             batch.discount, batch.next_obs))):
        seen.add(float(obs))
        np.testing.assert_allclose((ret, disc, nxt), N_STEP_BY_HAND[float(obs)], rtol=1e-6)
    assert seen == sampleable  # never the newest n-1, never overwritten ones


def test_n_step_follows_each_env_in_an_interleaved_ring():
    # Two envs add side by side: env 0 gets rewards 1, 2, 3, ..., env 1 gets 10, 20, 30, ...
    E, steps = 2, 5
    state = replay.init(10, Transition(0.0, 0, 0.0, 0.0, 0.0, 0.0))
    for t in range(steps):
        items = Transition(jnp.array([t, 100 + t], jnp.float32), jnp.zeros(2, jnp.int32),
                           jnp.array([t + 1, 10 * (t + 1)], jnp.float32),
                           jnp.array([t + 1, 101 + t], jnp.float32), jnp.zeros(2), jnp.zeros(2))
        state = replay.add_batch(state, items)
    batch = replay.sample_n_step(state, jax.random.PRNGKey(1), 256, n=2, gamma=0.9,
                                 num_envs=E)
    for obs, ret, disc, nxt in zip(*(np.asarray(x) for x in (batch.obs, batch.reward,
                                                             batch.discount, batch.next_obs))):
        env, t = (1, obs - 100) if obs >= 100 else (0, obs)
        scale = 10 if env else 1
        assert ret == pytest.approx(scale * ((t + 1) + 0.9 * (t + 2)))
        assert disc == pytest.approx(0.81)
        assert nxt == pytest.approx(obs + 2)
        assert t <= steps - 2  # the newest add is not sampled


# --- whole runs ---------------------------------------------------------------------------

ALL_PARTS = dict(double_dqn=True, dueling=True, noisy=True, distributional=True, num_atoms=11,
                 v_min=-20.0, v_max=20.0, n_step=3, epsilon_start=0.0, epsilon_end=0.0,
                 prioritized=True)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["gymnax", "gymnasium"])
def test_every_part_together_runs_in_both_drivers(tmp_path, backend):
    import deepq

    cfg = Config(env_id="CartPole-v1", backend=backend, hidden_sizes=(32,), num_envs=2,
                 buffer_size=2000, batch_size=32, learning_starts=200, total_steps=1200,
                 chunk_steps=400, eval_episodes=3, gif=False, **ALL_PARTS)
    run = deepq.train(cfg, tmp_path / "run", progress=False, artifacts=False)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[6]) for r in rows if r.split(",")[6] not in ("", "nan")]
    assert losses and np.all(np.isfinite(losses))
    assert run.evaluate(episodes=3)["episodes"] == 3


# --- prioritized replay -------------------------------------------------------------------

def test_sum_tree_sums_and_finds_by_hand():
    from deepq import prioritized

    tree = prioritized.init(4)
    tree = prioritized.set_priorities(tree, jnp.array([0, 1, 2, 3]),
                                      jnp.array([1.0, 2.0, 3.0, 4.0]))
    assert float(prioritized.total(tree)) == 10.0
    np.testing.assert_allclose(tree.nodes[1:4], [10.0, 3.0, 7.0])  # root, then its children
    # cumulative sums 1, 3, 6, 10: mass m falls in the first leaf whose cumsum exceeds it
    masses = jnp.array([0.0, 0.5, 1.0, 2.99, 3.0, 5.9, 6.0, 9.99])
    np.testing.assert_array_equal(prioritized.find(tree, masses), [0, 0, 1, 1, 2, 2, 3, 3])
    # a repeated slot: the last value wins and every sum above it follows
    tree = prioritized.set_priorities(tree, jnp.array([2, 2]), jnp.array([0.5, 0.5]))
    assert float(prioritized.total(tree)) == 7.5
    assert float(tree.max_priority) == 4.0
    # capacity 5 rounds up to 8 leaves; the 3 spare ones stay empty and are never found
    small = prioritized.set_priorities(prioritized.init(5), jnp.arange(5), jnp.ones(5))
    assert small.nodes.shape == (16,)
    assert set(np.asarray(prioritized.find(small, jnp.linspace(0, 4.999, 50))).tolist()) == set(
        range(5))


def test_sum_tree_never_finds_an_empty_leaf_at_the_total():
    """A mass at the total (float rounding can put one there) stays among the leaves that
    hold priority: with leaves [1, 0] and [2, 3, 0, 0] it finds the last non-empty one."""
    from deepq import prioritized

    two = prioritized.set_priorities(prioritized.init(2), jnp.array([0]), jnp.array([1.0]))
    assert int(prioritized.find(two, jnp.array(1.0))) == 0
    four = prioritized.set_priorities(prioritized.init(4), jnp.array([0, 1]),
                                      jnp.array([2.0, 3.0]))
    np.testing.assert_array_equal(prioritized.find(four, jnp.array([4.99, 5.0])), [1, 1])


def test_sum_tree_leaves_are_the_next_power_of_two():
    from deepq import prioritized

    assert [prioritized.leaves(c) for c in (1, 2, 3, 4, 5, 8, 9)] == [1, 2, 4, 4, 8, 8, 16]


def test_each_stratum_draws_its_own_uniform():
    """Stratified sampling (Schaul et al. 2016, Appendix B.2.1): one independent uniform draw
    in each of the batch's equal ranges of mass, not one offset shared by all of them."""
    from deepq import prioritized

    tree = prioritized.set_priorities(prioritized.init(128), jnp.arange(128), jnp.ones(128))
    slots, _ = prioritized.sample(tree, jax.random.PRNGKey(3), 32, jnp.int32(128), 0.4)
    offsets = np.asarray(slots) - 4 * np.arange(32)  # 4 equal slots per stratum
    assert offsets.min() >= 0 and offsets.max() <= 3  # one draw inside each stratum
    assert len(set(offsets.tolist())) > 1  # a shared offset would repeat 32 times


def test_prioritized_sampling_follows_the_priorities():
    """Chi-square: slot frequencies over many stratified draws match p_i / sum p."""
    from scipy import stats

    from deepq import prioritized

    p = jnp.array([1.0, 2.0, 3.0, 4.0, 0.5, 0.0, 6.0, 3.5])  # slot 5: priority 0, never drawn
    tree = prioritized.set_priorities(prioritized.init(8), jnp.arange(8), p)
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    slots = jax.vmap(lambda k: prioritized.sample(tree, k, 32, jnp.int32(8), 0.4)[0])(keys)
    counts = np.bincount(np.asarray(slots).ravel(), minlength=8)
    assert counts[5] == 0
    expected = np.asarray(p, np.float64) / float(np.sum(np.asarray(p, np.float64))) * counts.sum()
    keep = expected > 0
    _, pvalue = stats.chisquare(counts[keep], expected[keep])
    assert pvalue > 0.001, (counts, expected)


def test_importance_weights_by_hand():
    """w_i = (N P(i))^-beta / max_j w_j over the batch (Schaul et al. 2016, Algorithm 1,
    line 10), on distinct priorities and a batch that draws several distinct slots."""
    from deepq import prioritized

    p = np.array([2.0, 3.0, 0.5, 2.5, 1.0, 3.5])  # 6 of 8 leaves; total 12.5
    tree = prioritized.set_priorities(prioritized.init(8), jnp.arange(6), jnp.asarray(p))
    slots, weight = prioritized.sample(tree, jax.random.PRNGKey(0), 6, jnp.int32(6), 0.6)
    slots = np.asarray(slots)
    assert len(set(slots.tolist())) >= 4, slots
    # stratified: sample j comes from the mass range [12.5 j / 6, 12.5 (j + 1) / 6), and
    # the cumulative sums 2, 5, 5.5, 8, 9, 12.5 say which slots each range can hold
    cum = np.cumsum(p)
    for j, s in enumerate(slots):
        assert cum[s] > 12.5 * j / 6 and cum[s] - p[s] < 12.5 * (j + 1) / 6
    w = (6 * p[slots] / 12.5) ** -0.6
    np.testing.assert_allclose(weight, w / w.max(), rtol=1e-5)
    assert np.ptp(np.asarray(weight)) > 0.2  # far from all-equal weights
    # priority p = (|delta| + eps)^alpha, here alpha = 0.6
    np.testing.assert_allclose(prioritized.priority(jnp.array([-0.5, 0.0, 2.0]), 0.6, 0.01),
                               [0.51**0.6, 0.01**0.6, 2.01**0.6], rtol=1e-6)


def test_weighted_loss_and_refreshed_priorities():
    """The loss is mean(w * loss_i); after an update each sampled slot's priority is
    (|delta| + eps)^alpha of the TD error it was trained on; new slots get the max."""
    from deepq.drivers.common import init_learner, observe, train_round

    cfg = Config(hidden_sizes=(8,), prioritized=True, priority_alpha=0.5, priority_eps=0.01,
                 loss="mse", optimizer="sgd", learning_rate=0.05, max_grad_norm=0.0,
                 buffer_size=16, batch_size=4, gamma=0.9, total_steps=1000)
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0), jnp.zeros(4))
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    for i in range(6):
        t = Transition(obs[i:i + 1], jnp.array([i % 2]), jnp.array([float(i)]),
                       obs[(i + 1) % 6][None], jnp.array([float(i == 5)]), jnp.array([0.0]))
        learner = observe(cfg, learner, t)
    leaves = np.asarray(learner.priorities.nodes[16:])
    np.testing.assert_array_equal(leaves, [1.0] * 6 + [0.0] * 10)  # new at the max (1)
    params = learner.agent.params
    after = train_round(cfg, agent, learner)
    q = np.asarray(agent.q_values(params, obs))
    q_next = np.asarray(agent.q_values(learner.agent.target_params, jnp.roll(obs, -1, 0)))
    delta = q[np.arange(6), np.arange(6) % 2] - (np.arange(6) + 0.9 * np.array(
        [1, 1, 1, 1, 1, 0]) * q_next.max(1))
    got = np.asarray(after.priorities.nodes[16:22])
    changed = got != 1.0
    assert changed.any()
    np.testing.assert_allclose(got[changed], ((np.abs(delta) + 0.01) ** 0.5)[changed],
                               rtol=1e-5)
    # the weighted loss, on a hand-made batch
    batch = replay.Batch(obs[:2], jnp.array([0, 1]), jnp.array([1.0, 0.0]), obs[1:3],
                         jnp.array([0.9, 0.0]), jnp.array([1.0, 0.25]))
    _, metrics = agent.update(learner.agent, batch, jax.random.PRNGKey(0))
    errors = np.asarray(metrics["errors"])
    assert float(metrics["loss"]) == pytest.approx(np.mean([1.0, 0.25] * errors**2), rel=1e-5)


def test_n_step_slots_wait_for_their_window():
    from deepq.drivers.common import init_learner, observe

    cfg = Config(hidden_sizes=(8,), prioritized=True, n_step=3, buffer_size=8, batch_size=2,
                 total_steps=1000)
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0), jnp.zeros(4))
    for _ in range(5):
        t = Transition(jnp.zeros((1, 4)), jnp.array([0]), jnp.array([0.0]), jnp.zeros((1, 4)),
                       jnp.array([0.0]), jnp.array([0.0]))
        learner = observe(cfg, learner, t)
    # 5 adds, n = 3: slots 0-2 have their 3 steps, 3-4 (the newest 2) wait at 0
    np.testing.assert_array_equal(learner.priorities.nodes[8:], [1, 1, 1, 0, 0, 0, 0, 0])

"""REINFORCE maths (agents/reinforce.py) against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.agents import reinforce
from deepq.config import Config
from deepq.errors import UserError


def test_discounting_restarts_at_each_pong_point():
    # Karpathy's discount_rewards: the running sum restarts where r != 0.
    rewards = jnp.array([0.0, 0.0, 1.0, 0.0, 0.0, -1.0])
    boundary = reinforce.point_boundaries(rewards, jnp.zeros(6, bool))
    got = reinforce.discounted_returns(rewards, boundary, 0.5)
    np.testing.assert_allclose(got, [0.25, 0.5, 1.0, -0.25, -0.5, -1.0])


def test_discounting_across_an_episode_end_only():
    # Without the Pong reset, returns run on until the episode's end (step 2 here).
    rewards = jnp.array([1.0, 1.0, 1.0, 1.0, 1.0])
    ends = jnp.array([False, False, True, False, True])
    got = reinforce.discounted_returns(rewards, ends, 0.9)
    np.testing.assert_allclose(got, [1 + 0.9 + 0.81, 1.9, 1.0, 1.9, 1.0], rtol=1e-6)
    # Columns are independent episodes streams: [T, N] in, [T, N] out.
    both = reinforce.discounted_returns(jnp.stack([rewards, 2 * rewards], 1),
                                        jnp.stack([ends, ends], 1), 0.9)
    np.testing.assert_allclose(both[:, 1], 2 * np.asarray(got), rtol=1e-6)


def test_standardize_over_real_steps():
    x = jnp.array([1.0, 2.0, 3.0, 100.0])
    mask = jnp.array([True, True, True, False])
    got = reinforce.standardize(x, mask)
    s = np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(got, [-1 / s, 0.0, 1 / s, 0.0], rtol=1e-6)


def test_bernoulli_policy_gradient_by_hand():
    """A linear policy logit = w . x over two steps; d(-A log pi)/dw = -A (y - p) x."""
    w = jnp.array([0.3, -0.2])
    xs = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    actions = jnp.array([1, 0])  # UP, then DOWN
    adv = jnp.array([2.0, -1.0])

    def loss(w):
        return reinforce.policy_loss(xs @ w, actions, adv, jnp.ones(2, bool), bernoulli=True)

    p = 1 / (1 + np.exp(-np.asarray(xs @ w)))  # [sigmoid(-0.1), sigmoid(0.35)]
    y = np.array([1.0, 0.0])
    expected = -(np.asarray(adv) * (y - p)) @ np.asarray(xs)
    np.testing.assert_allclose(jax.grad(loss)(w), expected, rtol=1e-5)
    # The loss itself: -sum A log pi.
    logpi = np.array([np.log(p[0]), np.log(1 - p[1])])
    assert float(loss(w)) == pytest.approx(-(np.asarray(adv) * logpi).sum(), rel=1e-6)


def test_softmax_policy_gradient_by_hand():
    # d(-A log softmax(z)[a])/dz = -A (onehot(a) - softmax(z))
    z = jnp.array([[0.1, 0.5, -0.3]])
    grad = jax.grad(lambda z: reinforce.policy_loss(z, jnp.array([2]), jnp.array([1.5]),
                                                    jnp.ones(1, bool), bernoulli=False))(z)
    soft = np.exp(np.asarray(z[0])) / np.exp(np.asarray(z[0])).sum()
    np.testing.assert_allclose(grad[0], -1.5 * (np.eye(3)[2] - soft), rtol=1e-6)
    # Masked-out steps contribute nothing.
    zero = jax.grad(lambda z: reinforce.policy_loss(z, jnp.array([2]), jnp.array([1.5]),
                                                    jnp.zeros(1, bool), bernoulli=False))(z)
    assert not np.any(np.asarray(zero))


def test_sampled_actions_follow_the_policy():
    key = jax.random.PRNGKey(0)
    ups = reinforce.sample_actions(key, jnp.full(20_000, np.log(3.0)), bernoulli=True)
    assert float(ups.mean()) == pytest.approx(0.75, abs=0.01)  # sigmoid(log 3) = 3/4
    idx = reinforce.sample_actions(key, jnp.log(jnp.array([[0.2, 0.3, 0.5]] * 20_000)),
                                   bernoulli=False)
    np.testing.assert_allclose(np.bincount(np.asarray(idx)) / 20_000, [0.2, 0.3, 0.5],
                               atol=0.015)


def test_sampled_actions_are_indices_drawn_over_the_last_axis():
    """Each row samples from its own distribution, whatever the leading axes: [A] -> a
    scalar, [N, B, A] -> [N, B]; actions are int32 indices for both policies."""
    key = jax.random.PRNGKey(1)
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.05, 0.15, 0.1, 0.7], [0.25] * 4])  # [B=3, A]
    logits = jnp.log(jnp.asarray(np.broadcast_to(probs, (8000, 3, 4)), jnp.float32))
    idx = reinforce.sample_actions(key, logits, bernoulli=False)
    assert idx.shape == (8000, 3) and idx.dtype == jnp.int32
    for b in range(3):  # binomial sd <= 0.006
        freq = np.bincount(np.asarray(idx[:, b]), minlength=4) / 8000
        np.testing.assert_allclose(freq, probs[b], atol=0.025)
    one = reinforce.sample_actions(key, jnp.log(jnp.asarray(probs[1])), bernoulli=False)
    assert one.shape == () and one.dtype == jnp.int32 and 0 <= int(one) < 4
    ups = reinforce.sample_actions(key, jnp.array([[-2.0, 0.0, 3.0]] * 8000), bernoulli=True)
    assert ups.dtype == jnp.int32 and set(np.unique(np.asarray(ups))) <= {0, 1}
    np.testing.assert_allclose(np.asarray(ups).mean(axis=0), 1 / (1 + np.exp([2.0, 0.0, -3.0])),
                               atol=0.025)


def test_bernoulli_policy_over_more_than_two_actions_is_refused():
    cfg = Config(algo="reinforce", policy="bernoulli")
    with pytest.raises(UserError, match="has 3: use policy=softmax"):
        reinforce.make_agent(cfg, 3)


# pg-pong.py's network (no biases, one ReLU layer) and its RMSProp: decay 0.99, eps 1e-5
# outside the root.
W1 = np.array([[1.0, -0.5, 0.8], [0.3, 1.2, -1.0]], np.float32)  # [D=2, H=3]
W2 = np.array([0.9, -1.1, 0.6], np.float32)  # one logit: P(UP) = sigmoid(h . W2)
X = np.array([[1.0, 0.5], [-0.8, 1.5]], np.float32)  # two states: P(UP) 0.75 and 0.08


def test_bernoulli_agent_acts_and_learns_from_its_one_logit():
    """Karpathy's policy: P(UP | x) = sigmoid(W2 . relu(W1 x)), one output; act samples
    from it; one update is RMSProp's first step, -lr g / (sqrt(0.01 g^2) + 1e-5), on the
    hand-computed policy gradient (pg-pong.py's policy_backward)."""
    lr = 1e-3
    cfg = Config(algo="reinforce", policy="bernoulli", hidden_sizes=(3,), use_bias=False,
                 optimizer="rmsprop", learning_rate=lr, rmsprop_decay=0.99, rmsprop_eps=1e-5,
                 rmsprop_eps_in_sqrt=False, rmsprop_centered=False, max_grad_norm=0.0,
                 gamma=1.0, standardize_returns="none")
    agent = reinforce.make_agent(cfg, 2)
    state = agent.init(jax.random.PRNGKey(0), jnp.asarray(X[0]))
    p = state.params["params"]
    assert p["policy_0"]["kernel"].shape == (2, 3) and p["policy_out"]["kernel"].shape == (3, 1)
    assert state.updates.dtype == jnp.int32 and int(state.updates) == 0
    params = {"params": {"policy_0": {"kernel": jnp.asarray(W1)},
                         "policy_out": {"kernel": jnp.asarray(W2[:, None])}}}
    state = state._replace(params=params)

    h = np.maximum(X @ W1, 0.0)
    up = 1 / (1 + np.exp(-(h @ W2)))
    assert up[0] > 0.7 and up[1] < 0.1
    np.testing.assert_allclose(agent.log_policy(params, jnp.asarray(X)),
                               np.log(np.stack([1 - up, up], axis=1)), rtol=1e-5)
    obs = jnp.asarray(np.repeat(X, 5000, axis=0))  # 5000 of each state
    actions = np.asarray(jax.jit(agent.act)(params, obs, jax.random.PRNGKey(2), jnp.float32(0.0)))
    assert actions.dtype == np.int32
    np.testing.assert_allclose([actions[:5000].mean(), actions[5000:].mean()], up, atol=0.025)

    # Steps: x1 then x2 ([T=2, B=1]), actions UP then DOWN, rewards 0 then 1: G = [1, 1].
    batch = reinforce.EpisodeBatch(jnp.asarray(X[:, None]), jnp.array([[1], [0]]),
                                   jnp.array([[0.0], [1.0]]), jnp.ones((2, 1), bool))
    dlogit = -np.array([1.0, 1.0]) * (np.array([1.0, 0.0]) - up)  # d loss / d logit
    g_w2 = h.T @ dlogit
    g_w1 = X.T @ ((dlogit[:, None] * W2[None, :]) * (h > 0))
    new, _ = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(1))
    q = new.params["params"]
    for got, w, g in ((q["policy_out"]["kernel"][:, 0], W2, g_w2),
                      (q["policy_0"]["kernel"], W1, g_w1)):
        np.testing.assert_allclose(got, w - lr * g / (0.1 * np.abs(g) + 1e-5), rtol=1e-5,
                                   atol=1e-7)
    assert new.updates.dtype == jnp.int32 and int(new.updates) == 1


def test_standardize_without_a_mask_over_one_entry_and_at_a_tiny_spread():
    """(x - mean) / (std + eps) over every entry when no mask is given; a single real entry
    is 0 (its own mean); eps is added to the std, so a spread of 1e-8 still gives +-0.5."""
    x = jnp.array([1.0, 2.0, 3.0, 6.0])
    np.testing.assert_allclose(reinforce.standardize(x), (x - 3.0) / np.sqrt(3.5), rtol=1e-6)
    one = reinforce.standardize(jnp.array([5.0, 9.0]), jnp.array([True, False]))
    np.testing.assert_array_equal(one, [0.0, 0.0])
    tiny = reinforce.standardize(jnp.array([0.0, 2e-8]))
    np.testing.assert_allclose(tiny, [-0.5, 0.5], rtol=1e-5)


def test_softmax_agents_log_probs_are_each_rows_log_softmax():
    """The agent's `log_policy` is log pi(a | s) [B, A]: a log-softmax per row."""
    cfg = Config(algo="reinforce", policy="softmax", hidden_sizes=(4,), use_bias=False)
    agent = reinforce.make_agent(cfg, 3)
    obs = jnp.array([[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0], [0.0, 0.0]])
    params = agent.init(jax.random.PRNGKey(0), obs[0]).params
    p = params["params"]
    logits = np.maximum(np.asarray(obs) @ np.asarray(p["policy_0"]["kernel"]), 0.0) @ \
        np.asarray(p["policy_out"]["kernel"])
    want = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(agent.log_policy(params, obs), want, rtol=1e-5, atol=1e-6)


def test_consecutive_updates_carry_the_optimizer_state():
    """Two RMSProp steps on the same batch: the second uses the first's running average
    (an update that dropped the optimizer state would fail or restart it)."""
    cfg = Config(algo="reinforce", policy="softmax", hidden_sizes=(4,), optimizer="rmsprop",
                 learning_rate=0.01, max_grad_norm=0.0, standardize_returns="none")
    agent = reinforce.make_agent(cfg, 3)
    batch = reinforce.EpisodeBatch(jnp.array([[[1.0, 0.5]], [[0.3, -1.0]]]),
                                   jnp.array([[2], [0]]), jnp.array([[1.0], [2.0]]),
                                   jnp.ones((2, 1), bool))
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(2))
    one, _ = agent.update(state, batch)
    two, _ = agent.update(one, batch)
    nu = jax.tree.leaves(one.opt_state)
    assert int(two.updates) == 2 and any(np.abs(np.asarray(v)).sum() > 0 for v in nu)
    # the second step differs from a first step taken again from the moved params
    fresh, _ = agent.update(state._replace(params=one.params), batch)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(two.params),
                                                     jax.tree.leaves(fresh.params)))


def test_a_linear_learning_rate_reaches_zero_after_the_runs_batches():
    """lr_schedule=linear anneals over cfg.batches updates (30 episodes in batches of 10:
    3): the 3rd update moves the params, a 4th does not."""
    cfg = Config(algo="reinforce", policy="softmax", hidden_sizes=(4,), optimizer="sgd",
                 learning_rate=0.5, lr_schedule="linear", max_grad_norm=0.0,
                 standardize_returns="none", total_episodes=30, batch_episodes=10)
    agent = reinforce.make_agent(cfg, 3)
    batch = reinforce.EpisodeBatch(jnp.array([[[1.0, 0.5]], [[0.3, -1.0]]]),
                                   jnp.array([[2], [0]]), jnp.array([[1.0], [2.0]]),
                                   jnp.ones((2, 1), bool))
    states = [agent.init(jax.random.PRNGKey(0), jnp.zeros(2))]
    for _ in range(4):
        states.append(agent.update(states[-1], batch)[0])
    moved = [max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                 zip(jax.tree.leaves(x.params), jax.tree.leaves(y.params)))
             for x, y in zip(states, states[1:])]
    assert moved[0] > 1e-3 and moved[2] > 1e-4 and moved[3] < 1e-7  # lr 0, to rounding


def test_the_logged_loss_of_a_one_step_batch_is_that_steps_loss():
    """The logged loss is the policy loss per real step: with one real step (the rest
    padding) it is -G log pi(a | s) of that step, G = its reward."""
    cfg = Config(algo="reinforce", policy="softmax", hidden_sizes=(4,), optimizer="sgd",
                 learning_rate=0.1, max_grad_norm=0.0, standardize_returns="none")
    agent = reinforce.make_agent(cfg, 3)
    state = agent.init(jax.random.PRNGKey(1), jnp.zeros(2))
    obs = jnp.array([[[1.0, -0.5]], [[0.0, 0.0]]])
    batch = reinforce.EpisodeBatch(obs, jnp.array([[1], [0]]), jnp.array([[2.0], [0.0]]),
                                   jnp.array([[True], [False]]))
    log_pi = np.asarray(agent.log_policy(state.params, obs[0]))[0, 1]
    _, metrics = agent.update(state, batch)
    assert float(metrics["loss"]) == pytest.approx(-2.0 * log_pi, rel=1e-5)

"""REINFORCE maths (agents/reinforce.py) against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.agents import reinforce


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

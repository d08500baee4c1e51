"""The agent's update and the driver's sampling against values computed in numpy.

Each expected value is written out from the paper's equation (numpy matmuls on the
params, the optimisers' update rules, the importance weights' formula), on inputs where
the plausible wrong versions give different numbers.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from deepq import prioritized
from deepq.agents.base import make_optimizer
from deepq.agents.dqn import expected_updates, make_agent
from deepq.config import Config
from deepq.drivers.common import (
    explore_rate,
    init_learner,
    observe,
    priority_beta,
    sample_replay,
    train_round,
    trains_at,
)
from deepq.frame_replay import FrameStep
from deepq.networks import NoisyDense
from deepq.presets import base_config
from deepq.replay import Batch, Transition
from tests.helpers import algorithm_1, softmax

# --- a numpy copy of the one-hidden-layer MLP (hidden_sizes=(8,)) --------------------------


def _layers(params):
    p = params["params"]
    return [(np.asarray(p[name]["kernel"], np.float64), np.asarray(p[name]["bias"], np.float64))
            for name in ("Dense_0", "Dense_1")]


def mlp_q(params, obs):
    """Q(s, .) = relu(x W0 + b0) W1 + b1, x the flattened observation."""
    (w0, b0), (w1, b1) = _layers(params)
    x = np.asarray(obs, np.float64).reshape(len(obs), -1)
    return np.maximum(x @ w0 + b0, 0.0) @ w1 + b1


def mlp_grads(params, obs, dq):
    """Backpropagation of dL/dQ [B, A] through the MLP: dL/d(W0, b0, W1, b1)."""
    (w0, b0), (w1, _) = _layers(params)
    x = np.asarray(obs, np.float64).reshape(len(obs), -1)
    pre = x @ w0 + b0
    h = np.maximum(pre, 0.0)
    dpre = (dq @ w1.T) * (pre > 0)
    return {"Dense_0": {"kernel": x.T @ dpre, "bias": dpre.sum(0)},
            "Dense_1": {"kernel": h.T @ dq, "bias": dq.sum(0)}}


def assert_sgd_step(old, new, grads, lr):
    for layer in ("Dense_0", "Dense_1"):
        for leaf in ("kernel", "bias"):
            want = np.asarray(old["params"][layer][leaf], np.float64) - lr * grads[layer][leaf]
            np.testing.assert_allclose(new["params"][layer][leaf], want, rtol=2e-5, atol=1e-6)


def loss_and_slope(delta, kind, k):
    """l(delta) and dl/ddelta, written from their definitions."""
    if kind == "mse":
        return delta**2, 2 * delta
    if kind == "huber":
        inside = np.abs(delta) <= k
        return (np.where(inside, 0.5 * delta**2, k * (np.abs(delta) - 0.5 * k)),
                np.clip(delta, -k, k))
    root = np.sqrt(1 + (delta / k) ** 2)  # pseudo-Huber: k^2 (sqrt(1 + (d/k)^2) - 1)
    return k**2 * (root - 1), delta / root


SMALL = dict(hidden_sizes=(8,), optimizer="sgd", max_grad_norm=0.0, target_update="hard",
             target_update_interval=1000)


class Compiled(NamedTuple):
    """A config's agent, and its functions compiled whole (one compile each, shared by the
    tests that use the same config, instead of one per primitive)."""

    agent_cfg: Config
    agent: Any
    init: Any  # agent.init
    update: Any  # agent.update
    observe: Any  # observe(cfg, learner, transitions)
    sample: Any  # sample_replay(cfg, learner, key)
    learner: Any  # init_learner(cfg, agent, key, obs_example, pixel_replay)


@functools.cache
def compiled(cfg: Config, num_actions: int = 2) -> Compiled:
    agent = make_agent(cfg, num_actions)
    return Compiled(
        cfg, agent, jax.jit(agent.init), jax.jit(agent.update),
        jax.jit(lambda learner, t: observe(cfg, learner, t)),
        jax.jit(lambda learner, key: sample_replay(cfg, learner, key)),
        jax.jit(lambda key, example, pixels: init_learner(cfg, agent, key, example, pixels),
                static_argnums=2))


def _disagreeing_state(c: Compiled, obs_example=None):
    """An agent state whose target params are a different network from its online ones."""
    obs_example = jnp.zeros(4) if obs_example is None else obs_example
    state = c.init(jax.random.PRNGKey(0), obs_example)
    return state._replace(target_params=c.init(jax.random.PRNGKey(1), obs_example).params)


# --- Double DQN and the losses, through agent.update --------------------------------------


def _double_dqn_rows(next_scale: float):
    """16 rows: obs, next_obs (spread by next_scale, so the two nets disagree on argmaxes),
    actions 0-2, rewards from -1 to 1.5, and every fourth row terminal (discount 0)."""
    obs = jax.random.normal(jax.random.PRNGKey(2), (16, 4))
    next_obs = jax.random.normal(jax.random.PRNGKey(3), (16, 4)) * next_scale
    action = np.arange(16) % 3
    reward = np.linspace(-1.0, 1.5, 16)
    discount = np.where(np.arange(16) % 4 == 3, 0.0, 0.9)
    return obs, next_obs, action, reward, discount


def test_double_dqn_update_by_hand():
    """y = r + discount Q_target(s', argmax_a Q_online(s', a)) (van Hasselt et al. 2016,
    eq. 4); the loss mean_i w_i (Q(s_i, a_i) - y_i)^2 and one SGD step on it."""
    cfg = Config(double_dqn=True, loss="mse", learning_rate=0.1, **SMALL)
    c = compiled(cfg, 3)
    state = _disagreeing_state(c)
    obs, next_obs, action, reward, discount = _double_dqn_rows(next_scale=2.0)
    weight = np.linspace(0.3, 1.0, 16)
    batch = Batch(obs, jnp.asarray(action), jnp.asarray(reward, jnp.float32), next_obs,
                  jnp.asarray(discount, jnp.float32), jnp.asarray(weight, jnp.float32))

    q_online_next = mlp_q(state.params, next_obs)
    q_target_next = mlp_q(state.target_params, next_obs)
    a_star = q_online_next.argmax(1)
    disagree = (a_star != q_target_next.argmax(1)) & (discount > 0)
    assert disagree.sum() >= 3  # rows where Double DQN and DQN bootstrap differently
    y = reward + discount * q_target_next[np.arange(16), a_star]
    y_dqn = reward + discount * q_target_next.max(1)
    q = mlp_q(state.params, obs)
    delta = q[np.arange(16), action] - y
    loss = np.mean(weight * delta**2)
    assert not np.isclose(loss, np.mean(weight * (q[np.arange(16), action] - y_dqn) ** 2),
                          rtol=1e-3)

    new_state, metrics = c.update(state, batch, jax.random.PRNGKey(4))
    assert float(metrics["loss"]) == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(metrics["errors"], np.abs(delta), rtol=1e-5, atol=1e-6)
    dq = np.zeros((16, 3))
    dq[np.arange(16), action] = 2 * weight * delta / 16
    assert_sgd_step(state.params, new_state.params, mlp_grads(state.params, obs, dq), 0.1)
    # no copy before target_update_interval updates
    for got, want in zip(jax.tree.leaves(new_state.target_params),
                         jax.tree.leaves(state.target_params)):
        np.testing.assert_array_equal(got, want)


def test_double_dqn_with_c51_by_hand():
    """C51 with Double DQN (Hessel et al. 2017, section 3): a* = argmax_a sum_i z_i
    p_i^online(s', a), the target distribution p^target(s', a*) projected, and the loss the
    cross-entropy -sum_i m_i log p_i(s, a)."""
    cfg = Config(double_dqn=True, distributional=True, num_atoms=5, v_min=-2.0, v_max=2.0,
                 learning_rate=0.1, **SMALL)
    c = compiled(cfg, 3)
    state = _disagreeing_state(c)
    obs, next_obs, action, reward, discount = _double_dqn_rows(next_scale=3.0)
    batch = Batch(obs, jnp.asarray(action), jnp.asarray(reward, jnp.float32), next_obs,
                  jnp.asarray(discount, jnp.float32))
    support = np.linspace(-2.0, 2.0, 5)
    p_online_next = softmax(mlp_q(state.params, next_obs).reshape(16, 3, 5))
    p_target_next = softmax(mlp_q(state.target_params, next_obs).reshape(16, 3, 5))
    a_star = (p_online_next * support).sum(-1).argmax(1)
    a_dqn = (p_target_next * support).sum(-1).argmax(1)
    assert ((a_star != a_dqn) & (discount > 0)).sum() >= 2
    log_p = np.log(softmax(mlp_q(state.params, obs).reshape(16, 3, 5)))[np.arange(16), action]

    def loss(best):
        targets = [algorithm_1(reward[i], discount[i], p_target_next[i, best[i]], support)
                   for i in range(16)]
        return np.mean(-(np.array(targets) * log_p).sum(-1))

    assert not np.isclose(loss(a_star), loss(a_dqn), rtol=1e-3)
    _, metrics = c.update(state, batch, jax.random.PRNGKey(4))
    assert float(metrics["loss"]) == pytest.approx(loss(a_star), rel=1e-5)


@pytest.mark.parametrize("kind,k", [("mse", 1.0), ("huber", 2.0), ("huber", 0.5),
                                    ("pseudo_huber", 2.0), ("pseudo_huber", 0.5)])
def test_agent_loss_and_gradient_at_huber_delta(kind, k):
    """The agent's loss is mean_i l(delta_i) with the configured k (Huber: Mnih et al. 2015's
    error clipping; pseudo-Huber k^2 (sqrt(1 + (delta/k)^2) - 1)), TD errors on both sides of
    k, and its SGD step follows dl/ddelta."""
    cfg = Config(loss=kind, huber_delta=k, learning_rate=0.05, gamma=0.9, **SMALL)
    c = compiled(cfg)
    state = _disagreeing_state(c)
    obs = jax.random.normal(jax.random.PRNGKey(5), (12, 4))
    next_obs = jax.random.normal(jax.random.PRNGKey(6), (12, 4))
    action = np.array([0, 1] * 6)
    reward = np.linspace(-6.0, 6.0, 12)
    discount = np.where(np.arange(12) % 3 == 0, 0.0, 0.9)
    batch = Batch(obs, jnp.asarray(action), jnp.asarray(reward, jnp.float32), next_obs,
                  jnp.asarray(discount, jnp.float32))
    y = reward + discount * mlp_q(state.target_params, next_obs).max(1)
    delta = mlp_q(state.params, obs)[np.arange(12), action] - y
    assert (np.abs(delta) < k).sum() >= 2 and (np.abs(delta) > k).sum() >= 2
    values, slope = loss_and_slope(delta, kind, k)
    new_state, metrics = c.update(state, batch, jax.random.PRNGKey(7))
    assert float(metrics["loss"]) == pytest.approx(values.mean(), rel=1e-5)
    dq = np.zeros((12, 2))
    dq[np.arange(12), action] = slope / 12
    assert_sgd_step(state.params, new_state.params, mlp_grads(state.params, obs, dq), 0.05)


# --- uniform replay through the driver: the one-step target's (1 - terminated) ------------

GAMMA = 0.9
RING = Config(num_envs=2, buffer_size=32, gamma=GAMMA, frame_stack=2, loss="mse",
              learning_rate=0.01, **SMALL)
TERMINAL_IDS = {2, 5, 6, 11}  # transitions (of 16) that end in a true terminal state


def _ring_learner(c: Compiled, steps=8):
    """Transition id = 2 t + env, obs [id, 1, -id/10], terminal at TERMINAL_IDS."""
    learner = c.learner(jax.random.PRNGKey(0), jnp.zeros(3), False)
    for t in range(steps):
        ids = np.array([2 * t, 2 * t + 1], np.float32)
        obs = np.stack([ids, np.ones(2), -ids / 10], 1)
        learner = c.observe(learner, Transition(
            jnp.asarray(obs, jnp.float32), jnp.asarray(ids % 2, jnp.int32),
            jnp.asarray(ids / 4 - 1, jnp.float32), jnp.asarray(obs + [[0.5, 0, 0]], jnp.float32),
            jnp.asarray([float(i in TERMINAL_IDS) for i in ids], jnp.float32),
            jnp.asarray([float(i in TERMINAL_IDS) for i in ids], jnp.float32)))
    return learner


def _ring_ids(batch):
    return np.asarray(batch.obs)[:, 0].astype(int)


def _ring_expected(ids):
    """(action, reward, discount, next_obs[:, 0]) of transitions `ids`."""
    term = np.array([i in TERMINAL_IDS for i in ids], np.float64)
    return ids % 2, ids / 4 - 1, GAMMA * (1 - term), ids + 0.5


def _frame_learner(c: Compiled, rows=9):
    """Two envs, 2x2 frames, stack 2. The frame of (row t, env e) is filled with
    id + 1, id = 2 t + e; terminal (a life loss: the episode goes on) at TERMINAL_IDS."""
    learner = c.learner(jax.random.PRNGKey(0), jnp.zeros((2, 2, 2), jnp.uint8), True)
    for t in range(rows):
        ids = np.array([2 * t, 2 * t + 1])
        learner = c.observe(learner, FrameStep(
            jnp.asarray(np.broadcast_to((ids + 1)[:, None, None], (2, 2, 2)), jnp.uint8),
            jnp.asarray(ids % 2, jnp.int32), jnp.asarray(ids / 4 - 1, jnp.float32),
            jnp.asarray([float(i in TERMINAL_IDS) for i in ids], jnp.float32),
            jnp.full(2, t == 0)))
    return learner


def _frame_ids(batch):
    return np.asarray(batch.obs)[:, 0, 0, -1].astype(int) - 1


def _check_rows(batch, pixels):
    """Every sampled row carries its own transition's action, reward, discount and next
    observation; returns the ids drawn."""
    ids = _frame_ids(batch) if pixels else _ring_ids(batch)
    action, reward, discount, next_id = _ring_expected(ids)
    np.testing.assert_array_equal(batch.action, action)
    np.testing.assert_allclose(batch.reward, reward, rtol=1e-6)
    np.testing.assert_allclose(batch.discount, discount, rtol=1e-6)
    if pixels:  # the next frame stack: this frame, then the next row's (id + 2)
        nxt = np.asarray(batch.next_obs)[:, 0, 0]
        np.testing.assert_array_equal(nxt[:, 0], ids + 1)
        np.testing.assert_array_equal(nxt[:, 1], ids + 3)
        prev = np.asarray(batch.obs)[:, 0, 0, 0]  # zero before the episode's first frame
        np.testing.assert_array_equal(prev, np.where(ids < 2, 0, ids - 1))
    else:
        np.testing.assert_allclose(np.asarray(batch.next_obs)[:, 0], next_id)
    return ids


@pytest.mark.parametrize("pixels", [False, True])
def test_uniform_replay_rows_and_the_agents_one_step_loss(pixels):
    """Every row drawn by sample_replay has discount gamma (1 - terminated) (Mnih et al.
    2015, eq. 2: no bootstrap past a terminal state), and the agent's loss on that batch
    is mean (Q(s, a) - r - discount max_a' Q_target(s', a'))^2 over the same rows."""
    c = compiled(RING.replace(batch_size=48))
    learner = (_frame_learner if pixels else _ring_learner)(c)
    example = jnp.zeros((2, 2, 2), jnp.uint8) if pixels else jnp.zeros(3)
    learner = learner._replace(agent=_disagreeing_state(c, example))
    seen = set()
    for k in range(3):
        batch, slots = c.sample(learner, jax.random.PRNGKey(10 + k))
        assert slots is None
        ids = _check_rows(batch, pixels)
        seen |= set(ids.tolist())
        _, reward, discount, _ = _ring_expected(ids)
        y = reward + discount * mlp_q(learner.agent.target_params, batch.next_obs).max(1)
        q_sa = mlp_q(learner.agent.params, batch.obs)[np.arange(len(ids)), ids % 2]
        _, metrics = c.update(learner.agent, batch, jax.random.PRNGKey(k))
        assert float(metrics["loss"]) == pytest.approx(np.mean((q_sa - y) ** 2), rel=1e-5)
    assert seen & TERMINAL_IDS and seen - TERMINAL_IDS  # both kinds of row were drawn
    assert seen <= set(range(16))  # ring: all 16; frames: not row 8, which has no next frame


# --- prioritized replay through the driver ------------------------------------------------

PER_CFG = dict(prioritized=True, priority_beta=0.4, priority_alpha=0.6, priority_eps=0.01,
               total_steps=1000, learning_starts=100, train_freq=1)


def _updates_in_run(cfg):
    """The run's gradient updates: one round per train_freq vector steps from the one whose
    steps reach both learning_starts and a batch."""
    rounds = sum(1 for it in range(cfg.total_steps // cfg.num_envs)
                 if (it + 1) * cfg.num_envs >= max(cfg.learning_starts, cfg.batch_size)
                 and (it + 1) % cfg.train_freq == 0)
    return rounds * cfg.gradient_steps


def test_priority_beta_anneals_linearly_to_one():
    """beta_u = beta_0 + (1 - beta_0) min(u / U, 1), U the run's updates (Schaul et al.
    2016, section 3.4)."""
    cfg = Config(num_envs=2, gradient_steps=2, **PER_CFG)
    total = _updates_in_run(cfg)
    assert total == 2 * 451
    for u in (0, 1, total // 4, total // 2, total - 1, total, 2 * total):
        want = 0.4 + 0.6 * min(u / total, 1.0)
        assert float(priority_beta(cfg, jnp.int32(u))) == pytest.approx(want, rel=1e-6)


PRIORITIES = [0.2, 1.0, 2.5, 0.5, 4.0, 1.5, 3.0, 0.8, 6.0, 1.2, 2.0, 0.6, 5.0, 0.3]


def _per_setup(pixels):
    c = compiled(RING.replace(batch_size=16, **PER_CFG))
    learner = (_frame_learner if pixels else _ring_learner)(c)
    # the sampleable slots: ring, all 16; frames, rows 0-7 of 9 (the newest has no next
    # frame yet), slot = 2 row + env
    leaves = np.asarray(learner.priorities.nodes[32:])
    np.testing.assert_array_equal(leaves[:16], 1.0)  # new transitions at the max so far (1)
    np.testing.assert_array_equal(leaves[16:], 0.0)
    p = np.array(PRIORITIES + [0.9, 1.8])
    tree = prioritized.set_priorities(learner.priorities, jnp.arange(16), jnp.asarray(p))
    return c, learner._replace(priorities=tree), p


@pytest.mark.parametrize("pixels", [False, True])
@pytest.mark.parametrize("at", ["start", "middle", "end"])
def test_prioritized_batch_carries_the_importance_weights(pixels, at):
    """sample_replay's batch: slot i drawn with P(i) = p_i / sum p, weight
    w_i = (N P(i))^-beta / max_batch w (Schaul et al. 2016, Algorithm 1, line 10), beta
    annealed (0.4 at the start, 0.7 half way, 1 at the run's last update)."""
    c, learner, p = _per_setup(pixels)
    total = _updates_in_run(c.agent_cfg)
    updates, beta = {"start": (0, 0.4), "middle": (total // 2, 0.4 + 0.6 * (total // 2) / total),
                     "end": (total, 1.0)}[at]
    learner = learner._replace(agent=learner.agent._replace(updates=jnp.int32(updates)))
    batch, slots = c.sample(learner, jax.random.PRNGKey(3))
    slots = np.asarray(slots)
    assert len(set(slots.tolist())) >= 8
    ids = _check_rows(batch, pixels)
    np.testing.assert_array_equal(ids, slots)  # slot = 2 row + env = the transition's id
    prob = p / p.sum()
    w = (len(p) * prob[slots]) ** -beta
    np.testing.assert_allclose(batch.weight, w / w.max(), rtol=1e-5)
    assert np.ptp(w / w.max()) > 0.2


@pytest.mark.parametrize("pixels", [False, True])
def test_new_transitions_get_the_largest_priority_so_far(pixels):
    """A transition enters prioritized replay at max_i p_i (Schaul et al. 2016, Algorithm
    1, line 6), here 6.0 after priorities above the initial 1 were set."""
    c, learner, p = _per_setup(pixels)
    if pixels:  # row 9: row 8's transitions (slots 16, 17) now have their next frame
        step = FrameStep(jnp.full((2, 2, 2), 50, jnp.uint8), jnp.zeros(2, jnp.int32),
                         jnp.zeros(2), jnp.zeros(2), jnp.zeros(2, bool))
    else:  # written to slots 16, 17
        obs = jnp.asarray([[16.0, 1.0, -1.6], [17.0, 1.0, -1.7]])
        step = Transition(obs, jnp.zeros(2, jnp.int32), jnp.zeros(2), obs, jnp.zeros(2),
                          jnp.zeros(2))
    learner = c.observe(learner, step)
    leaves = np.asarray(learner.priorities.nodes[32:])
    np.testing.assert_allclose(leaves[16:18], [6.0, 6.0])
    np.testing.assert_allclose(leaves[:16], p, rtol=1e-6)


def test_train_round_refreshes_priorities_with_alpha():
    """After an update each sampled slot's priority is (|delta| + eps)^alpha at alpha 0.6,
    delta the TD error of the params before the update."""
    c, learner, p = _per_setup(False)
    learner = learner._replace(agent=_disagreeing_state(c, jnp.zeros(3)))
    after = train_round(c.agent_cfg, c.agent, learner)
    ids = np.arange(16)
    obs = np.stack([ids, np.ones(16), -ids / 10], 1)
    _, reward, discount, _ = _ring_expected(ids)
    y = reward + discount * mlp_q(learner.agent.target_params, obs + [0.5, 0, 0]).max(1)
    delta = mlp_q(learner.agent.params, obs)[ids, ids % 2] - y
    leaves = np.asarray(after.priorities.nodes[32:48])
    refreshed = ~np.isclose(leaves, p, rtol=1e-6)
    assert 4 <= refreshed.sum() < 16  # the batch's distinct slots, and only those
    np.testing.assert_allclose(leaves[refreshed], (np.abs(delta) + 0.01)[refreshed] ** 0.6,
                               rtol=1e-5)


# --- training rounds and optimisers -------------------------------------------------------


@pytest.mark.parametrize("per", [False, True])
def test_gradient_steps_take_that_many_updates_on_fresh_batches(per):
    """train_round with gradient_steps = 3: three updates, each on its own batch, the same
    as sampling and updating by hand with the round's keys."""
    cfg = RING.replace(batch_size=8, learning_rate=0.05, gradient_steps=3, prioritized=per,
                       priority_alpha=0.6)
    c = compiled(cfg)
    learner = _ring_learner(c)
    after = train_round(cfg, c.agent, learner)
    assert int(after.agent.updates) == 3

    _, sub = jax.random.split(learner.key)
    state, tree, batches = learner.agent, learner.priorities, []
    for key in jax.random.split(sub, 3):
        k_sample, k_update = jax.random.split(key)
        batch, slots = c.sample(learner._replace(agent=state, priorities=tree), k_sample)
        ids = _ring_ids(batch)
        batches.append(ids)
        # the update by hand: SGD on mean (Q(s, a) - y)^2
        _, reward, discount, _ = _ring_expected(ids)
        y = reward + discount * mlp_q(state.target_params, batch.next_obs).max(1)
        delta = mlp_q(state.params, batch.obs)[np.arange(8), ids % 2] - y
        dq = np.zeros((8, 2))
        dq[np.arange(8), ids % 2] = 2 * np.asarray(batch.weight) * delta / 8
        new_state, metrics = c.update(state, batch, k_update)
        assert_sgd_step(state.params, new_state.params, mlp_grads(state.params, batch.obs, dq),
                        0.05)
        state = new_state
        if per:
            tree = prioritized.set_priorities(
                tree, slots, jnp.asarray((np.abs(delta) + cfg.priority_eps) ** 0.6))
    assert len({tuple(b) for b in batches}) == 3  # fresh batches
    for got, want in zip(jax.tree.leaves(after.agent.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert float(after.last_loss) == pytest.approx(float(metrics["loss"]), rel=1e-5)
    if per:
        np.testing.assert_allclose(after.priorities.nodes, tree.nodes, rtol=1e-5)


def _run_optimizer(cfg, grads):
    """Params (a two-leaf tree, zeros) after each of `grads` through make_optimizer(cfg)."""
    opt = make_optimizer(cfg, expected_updates(cfg))
    params = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
    state = opt.init(params)
    out = []
    for g in grads:
        tree = {"a": jnp.asarray(g[:2], jnp.float32), "b": jnp.asarray(g[2:], jnp.float32)}
        updates, state = opt.update(tree, state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        out.append(np.concatenate([params["a"], params["b"]]))
    return np.array(out)


GRADS = np.array([[1.0, 0.01, -0.3], [0.5, 0.02, 0.3], [-0.2, 0.015, 0.05]])


@pytest.mark.parametrize("preset", ["nature", "dqn2013"])
def test_deepmind_rmsprop_of_the_nature_and_2013_presets(preset):
    """DeepMind's RMSProp (Graves 2013, eq. 38-40, as in the DQN code): n = a n + (1-a) g^2,
    g_ = a g_ + (1-a) g, step -lr g / sqrt(n - g_^2 + eps) with eps = 0.01 inside the root."""
    cfg = base_config(None, preset)
    assert (cfg.optimizer, cfg.learning_rate, cfg.max_grad_norm) == ("rmsprop", 2.5e-4, 0.0)
    got = _run_optimizer(cfg, GRADS)
    n = g_bar = p = np.zeros(3)
    want, torch_form = [], []
    for g in GRADS:
        n = 0.95 * n + 0.05 * g**2
        g_bar = 0.95 * g_bar + 0.05 * g
        p = p - 2.5e-4 * g / np.sqrt(n - g_bar**2 + 0.01)
        want.append(p)
        torch_form.append(-2.5e-4 * g / (np.sqrt(n - g_bar**2) + 0.01))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # eps outside the root (PyTorch's form) moves the small gradient's parameter ~8x further
    assert abs(torch_form[0][1]) > 5 * abs(want[0][1])


def test_adam_with_its_eps():
    """Adam (Kingma & Ba 2015, Algorithm 1), eps = 1e-3 comparable to the gradients."""
    cfg = Config(optimizer="adam", learning_rate=1e-2, adam_eps=1e-3, max_grad_norm=0.0)
    grads = GRADS * 1e-3
    got = _run_optimizer(cfg, grads)
    m = v = p = np.zeros(3)
    want = []
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        p = p - 1e-2 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-3)
        want.append(p)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_radam_rectifies_adam_once_the_variance_is_tractable():
    """RAdam (Liu et al. 2020, Algorithm 2): rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf -
    2 t b2^t / (1 - b2^t); while rho_t <= 5 (optax's threshold) the step is -lr m_hat, after it
    -lr r_t m_hat / (sqrt(v_hat) + eps) with r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf /
    ((rho_inf - 4)(rho_inf - 2) rho_t)); eps 1e-3 comparable to the gradients. rho_t is a
    difference of two numbers near 2,000, so float32 moves the first rectified steps by ~1%;
    the parameters are compared after 60 steps, where those early steps weigh little."""
    grads = np.tile(GRADS, (20, 1)) * 1e-3
    got = _run_optimizer(Config(optimizer="radam", learning_rate=1e-2, adam_eps=1e-3,
                                max_grad_norm=0.0), grads)
    m = v = p = np.zeros(3)
    rho_inf = 2 / (1 - 0.999) - 1
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        m_hat = m / (1 - 0.9**t)
        rho = rho_inf - 2 * t * 0.999**t / (1 - 0.999**t)
        if rho > 5:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            p = p - 1e-2 * r * m_hat / (np.sqrt(v / (1 - 0.999**t)) + 1e-3)
        else:
            p = p - 1e-2 * m_hat
        if t == 5:
            np.testing.assert_allclose(got[4], p, rtol=1e-5)  # five plain momentum steps
    np.testing.assert_allclose(got[-1], p, rtol=2e-3)
    adam = _run_optimizer(Config(optimizer="adam", learning_rate=1e-2, adam_eps=1e-3,
                                 max_grad_norm=0.0), grads)
    assert np.abs(adam[-1] - p).max() > 0.1 * np.abs(p).max()  # not Adam's steps


def test_sgd_and_rmsprop_with_momentum():
    """Heavy-ball momentum: t = m t + u, p += t, u the plain step (-lr g for SGD, -lr g /
    sqrt(n + eps) for RMSProp)."""
    got = _run_optimizer(Config(optimizer="sgd", learning_rate=0.1, momentum=0.9,
                                max_grad_norm=0.0), GRADS)
    t = p = np.zeros(3)
    want = []
    for g in GRADS:
        t = 0.9 * t - 0.1 * g
        p = p + t
        want.append(p)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    got = _run_optimizer(Config(optimizer="rmsprop", learning_rate=0.01, momentum=0.5,
                                rmsprop_decay=0.9, rmsprop_eps=0.01, max_grad_norm=0.0), GRADS)
    t = n = p = np.zeros(3)
    want = []
    for g in GRADS:
        n = 0.9 * n + 0.1 * g**2
        t = 0.5 * t - 0.01 * g / np.sqrt(n + 0.01)
        p = p + t
        want.append(p)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_gradient_clipping_by_global_norm():
    """g * min(1, c / ||g||), ||g|| the norm of all leaves together (c = 1)."""
    grads = np.array([[3.0, 0.0, 4.0], [0.3, -0.4, 0.0], [-6.0, 8.0, 0.0]])
    got = _run_optimizer(Config(optimizer="sgd", learning_rate=0.5, max_grad_norm=1.0), grads)
    steps = [g * min(1.0, 1.0 / np.linalg.norm(g)) for g in grads]
    np.testing.assert_allclose(got, -0.5 * np.cumsum(steps, axis=0), rtol=1e-6, atol=1e-7)


def test_linear_learning_rate_reaches_zero_at_the_runs_last_update():
    """lr_k = lr (1 - k / U) at update k (0-based), U the run's gradient updates."""
    cfg = Config(optimizer="sgd", learning_rate=0.1, lr_schedule="linear", max_grad_norm=0.0,
                 total_steps=40, num_envs=2, learning_starts=10, train_freq=3, gradient_steps=2,
                 batch_size=4)
    total = _updates_in_run(cfg)
    assert total == 10
    g = np.array([1.0, -2.0, 0.5])
    got = _run_optimizer(cfg, [g] * (total + 2))
    lrs = [0.1 * max(1 - k / total, 0.0) for k in range(total + 2)]
    want = -np.cumsum([lr * g for lr in lrs], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


# --- noisy nets ---------------------------------------------------------------------------


def test_noisy_layer_noise_is_signed_root_of_a_gaussian():
    """f(e) = sign(e) sqrt(|e|), e ~ N(0, 1) (Fortunato et al. 2018, section 3): f^2 = |e|
    is half-normal (mean sqrt(2/pi)), f symmetric about 0; and the output is
    x (mu_w + sigma_w f_in f_out^T) + mu_b + sigma_b f_out."""
    layer = NoisyDense(5, sigma0=0.5)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
    variables = layer.init(jax.random.PRNGKey(1), x)

    def noisy(key):
        out, seen = layer.apply(variables, x, rngs={"noise": key}, mutable=["intermediates"])
        return (out, *seen["intermediates"]["noise"][0])

    out, f_in, f_out = jax.jit(jax.vmap(noisy))(jax.random.split(jax.random.PRNGKey(2), 800))
    f = np.concatenate([np.asarray(f_in).ravel(), np.asarray(f_out).ravel()]).astype(np.float64)
    assert stats.kstest(f**2, stats.halfnorm.cdf).pvalue > 1e-3
    assert np.mean(f**2) == pytest.approx(np.sqrt(2 / np.pi), abs=0.03)  # e: 1, not 0.80
    assert abs(np.mean(np.sign(f))) < 0.05
    p = {k: np.asarray(v, np.float64) for k, v in variables["params"].items()}
    xs = np.asarray(x, np.float64)
    for i in (0, 1, 799):
        w = p["mu_kernel"] + p["sigma_kernel"] * np.outer(f_in[i], f_out[i])
        b = p["mu_bias"] + p["sigma_bias"] * np.asarray(f_out[i])
        np.testing.assert_allclose(out[i], xs @ w + b, rtol=1e-5, atol=1e-6)


# --- exploration: prefill and the random agent --------------------------------------------


def test_prefill_random_acts_uniformly_until_learning_starts():
    """epsilon = 1 while it * num_envs < learning_starts, then the schedule at that step."""
    cfg = Config(num_envs=4, learning_starts=10, epsilon_start=0.6, epsilon_end=0.1,
                 epsilon_steps=40, prefill_random=True)
    got = [float(explore_rate(cfg, jnp.int32(it), jnp.int32(0))) for it in range(6)]
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0, 0.6 - 0.5 * 12 / 40, 0.6 - 0.5 * 16 / 40,
                                     0.6 - 0.5 * 20 / 40], rtol=1e-6)
    off = cfg.replace(prefill_random=False)
    got = [float(explore_rate(off, jnp.int32(it), jnp.int32(0))) for it in range(4)]
    np.testing.assert_allclose(got, [0.6 - 0.5 * 4 * it / 40 for it in range(4)], rtol=1e-6)
    boltzmann = cfg.replace(exploration="boltzmann")
    got = [float(explore_rate(boltzmann, jnp.int32(it), jnp.int32(0))) for it in (0, 2, 3, 9)]
    assert got == [1.0, 1.0, 0.0, 0.0]


def test_random_agent_never_trains_and_acts_uniformly():
    cfg = Config(algo="random", hidden_sizes=(8,), num_envs=2, learning_starts=0,
                 total_steps=100, prefill_random=False, epsilon_start=0.0, epsilon_end=0.0)
    assert [float(explore_rate(cfg, jnp.int32(it), jnp.int32(5))) for it in (0, 10, 49)] == [
        1.0, 1.0, 1.0]
    assert not any(trains_at(cfg, it) for it in range(cfg.iterations))
    assert not bool(jnp.any(trains_at(cfg, jnp.arange(cfg.iterations))))
    agent = make_agent(cfg, 3)
    params = jax.jit(agent.init)(jax.random.PRNGKey(0), jnp.zeros(4)).params
    obs = jnp.zeros((3000, 4))  # one greedy action everywhere
    acts = np.asarray(jax.jit(agent.act)(params, obs, jax.random.PRNGKey(1),
                                explore_rate(cfg, jnp.int32(0), jnp.int32(0))))
    counts = np.bincount(acts, minlength=3)
    assert stats.chisquare(counts).pvalue > 1e-3, counts

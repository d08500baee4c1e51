"""The DQN drivers' shared step (drivers/common.py, drivers/base.py) against values worked out
by hand: the training clock, exploration, the replay the learner keeps and samples (n-step
windows, Hessel et al. 2017, eq. 2; prioritized slots, Schaul et al. 2016), a training
round's reports, and model selection's stop rule.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import replay
from deepq.agents.dqn import make_agent
from deepq.config import Config
from deepq.drivers.base import Best, init_best, reached_stop
from deepq.drivers.common import (
    act,
    chunk_iterations,
    explore_rate,
    init_learner,
    learn,
    map_seeds,
    observe,
    sample_replay,
    train_round,
    trains_at,
)
from deepq.frame_replay import FrameStep
from deepq.replay import Transition

SMALL = dict(hidden_sizes=(8,), optimizer="sgd", max_grad_norm=0.0, loss="mse",
             target_update="hard", target_update_interval=1000)

# --- the clock: chunks, training rounds, stopping ------------------------------------------


def test_chunk_iterations_per_chunk_and_per_selection():
    """chunk_steps / num_envs vector steps per chunk, select_every / num_envs with model
    selection on, at least 1 and at most the run's iterations."""
    cfg = Config(total_steps=1000, num_envs=4, chunk_steps=100)
    assert chunk_iterations(cfg) == 25
    assert chunk_iterations(cfg.replace(select_every=60)) == 15
    assert chunk_iterations(cfg.replace(chunk_steps=3)) == 1  # fewer steps than envs
    assert chunk_iterations(cfg.replace(total_steps=3)) == 1  # a one-iteration run


def test_trains_at_the_first_iteration_with_enough_steps_and_a_batch():
    """Iteration it trains when (it + 1) E >= learning_starts, (it + 1) % train_freq == 0
    and (it + 1 - fill_start) E >= batch_size; here E = 2, learning_starts = 8."""
    cfg = Config(num_envs=2, learning_starts=8, batch_size=4, train_freq=1)
    cases = [
        (cfg, 0, [False, False, False, True, True, True, True, True, True]),  # 8 >= 8 at it 3
        (cfg, 5, [False] * 6 + [True] * 3),  # (it + 1 - 5) * 2 >= 4 from it 6
        (cfg.replace(train_freq=3), 0, [False] * 5 + [True, False, False, True]),
        (cfg.replace(learning_starts=0, batch_size=6), 0, [False, False, True, True, True,
                                                           True, True, True, True]),
    ]
    for c, fill_start, want in cases:
        assert [trains_at(c, it, fill_start) for it in range(9)] == want
        got = trains_at(c, jnp.arange(9, dtype=jnp.int32), jnp.int32(fill_start))
        assert np.asarray(got).tolist() == want


def test_reached_stop_needs_selection_and_every_seed_at_the_threshold():
    """Stop once every seed's best selection score is >= stop_at_return; never without
    model selection, before the first evaluation, or with the threshold at inf."""
    cfg = Config(select_every=100, stop_at_return=195.0)
    best = init_best({"w": jnp.zeros((2, 3))}, jax.random.split(jax.random.PRNGKey(0), 2))
    assert reached_stop(cfg, best._replace(score=jnp.array([200.0, 195.0])))  # >= counts
    assert not reached_stop(cfg, best._replace(score=jnp.array([200.0, 194.5])))
    assert not reached_stop(cfg, best)  # -inf before any evaluation
    assert not reached_stop(cfg.replace(select_every=0),
                            best._replace(score=jnp.array([300.0, 300.0])))
    assert not reached_stop(cfg, None)
    assert not reached_stop(cfg.replace(stop_at_return=math.inf),
                            best._replace(score=jnp.array([1e30, 1e30])))


def test_init_best_scores_minus_inf_and_keeps_the_selection_key():
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    key = jax.random.PRNGKey(7)
    best = init_best(params, key)
    assert isinstance(best, Best)
    assert float(best.score) == -np.inf and best.score.dtype == jnp.float32
    np.testing.assert_array_equal(best.params["w"], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(jax.random.key_data(best.key), jax.random.key_data(key))


# --- map_seeds ------------------------------------------------------------------------------


def _dot_batch_dims(fn, *args):
    """The batch dimensions of every dot_general in fn's jaxpr."""
    eqns = list(jax.make_jaxpr(fn)(*args).jaxpr.eqns)
    dims = []
    while eqns:
        eqn = eqns.pop()
        if eqn.primitive.name == "dot_general":
            dims.append(eqn.params["dimension_numbers"][1])
        if "jaxpr" in eqn.params:  # a nested jit
            inner = eqn.params["jaxpr"]
            eqns.extend(getattr(inner, "jaxpr", inner).eqns)
    return dims


def test_map_seeds_runs_one_seed_unbatched_and_stacks_many():
    """One seed: fn on the unbatched arrays (its matmul has no batch dimension), output with
    a leading axis 1; several: fn per seed, outputs stacked."""
    def fn(x, w):
        return jnp.tanh(x @ w)

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4, 2)) \
        .astype(np.float32)
    mapped = map_seeds(fn)
    one = mapped(x[:1], w[:1])
    np.testing.assert_allclose(one, np.tanh(x[:1, None] @ w[:1])[:, 0], rtol=1e-5)
    assert one.shape == (1, 2)
    assert _dot_batch_dims(mapped, x[:1], w[:1]) == [((), ())]
    many = mapped(x, w)
    np.testing.assert_allclose(many, np.tanh(np.einsum("si,sij->sj", x, w)), rtol=1e-5)
    assert _dot_batch_dims(mapped, x, w) == [((0,), (0,))]
    # an unmapped argument (None) is passed whole
    shared = map_seeds(fn, (0, None))
    np.testing.assert_allclose(shared(x[:1], w[0]), np.tanh(x[:1] @ w[0]), rtol=1e-5)
    assert _dot_batch_dims(shared, x[:1], w[0]) == [((), ())]


# --- exploration ----------------------------------------------------------------------------


def test_prefill_ends_at_the_step_that_reaches_learning_starts():
    """prefill_random: epsilon 1 while step = it E < learning_starts; at step ==
    learning_starts the linear schedule's 0.6 - 0.5 * 8 / 40."""
    cfg = Config(num_envs=2, learning_starts=8, epsilon_start=0.6, epsilon_end=0.1,
                 epsilon_steps=40, prefill_random=True)
    got = [float(explore_rate(cfg, jnp.int32(it), jnp.int32(0))) for it in (3, 4, 5)]
    np.testing.assert_allclose(got, [1.0, 0.6 - 0.5 * 8 / 40, 0.6 - 0.5 * 10 / 40], rtol=1e-6)


MULT = Config(num_envs=2, epsilon_schedule="multiplicative", epsilon_start=0.8,
              epsilon_end=0.05, epsilon_decay=0.9, prefill_random=False, learning_starts=0,
              **SMALL)


def test_multiplicative_epsilon_follows_the_update_count():
    """epsilon = max(end, start decay^updates): it counts updates, not steps."""
    for it, updates in ((3, 7), (50, 7), (3, 40)):
        got = float(explore_rate(MULT, jnp.int32(it), jnp.int32(updates)))
        assert got == pytest.approx(max(0.05, 0.8 * 0.9**updates), rel=1e-6)


def test_act_reports_the_epsilon_of_the_learners_update_count():
    agent = make_agent(MULT, 2)
    learner = init_learner(MULT, agent, jax.random.PRNGKey(0), jnp.zeros(3))
    learner = learner._replace(agent=learner.agent._replace(updates=jnp.int32(7)))
    actions, eps, after = act(MULT, agent, learner, jnp.zeros((2, 3)), jnp.int32(5))
    assert float(eps) == pytest.approx(0.8 * 0.9**7, rel=1e-6)
    assert actions.shape == (2,)
    assert not np.array_equal(jax.random.key_data(after.key), jax.random.key_data(learner.key))


# --- the replay the learner keeps -----------------------------------------------------------

def test_the_replay_capacity_is_whole_steps_of_every_env_for_n_step():
    """With n > 1, env e's transitions n apart sit num_envs slots apart, so the capacity is
    buffer_size rounded down to a multiple of num_envs (n = 2: 10 slots of 4 envs keep 8);
    one-step replay keeps every slot asked for."""
    def capacity(**fields):
        cfg = Config(num_envs=4, buffer_size=10, batch_size=4, **SMALL, **fields)
        learner = init_learner(cfg, make_agent(cfg, 2), jax.random.PRNGKey(0), jnp.zeros(3))
        return replay.capacity(learner.replay)

    assert capacity(n_step=2) == 8
    assert capacity(n_step=1) == 10


E = 3
GAMMA = 0.5
TERMINAL = {10, 17}  # true terminal states
TRUNCATED = {13}  # time limits: the episode ends, the bootstrap stays


def _reward(ids):
    return (-1.0) ** ids * (1 + ids / 8)


def _ring(cfg, steps):
    """A learner after `steps` vector steps of E envs; transition id = E t + e has obs
    [id, 1], next_obs [id + 0.5, 1], action id % 2 and reward (-1)^id (1 + id / 8)."""
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0), jnp.zeros(2))
    add = jax.jit(lambda learner, t: observe(cfg, learner, t))
    for t in range(steps):
        ids = np.arange(E * t, E * t + E)
        obs = np.stack([ids, np.ones(E)], 1).astype(np.float32)
        term = np.array([i in TERMINAL for i in ids], np.float32)
        last = np.array([i in TERMINAL | TRUNCATED for i in ids], np.float32)
        learner = add(learner, Transition(
            jnp.asarray(obs), jnp.asarray(ids % 2, jnp.int32),
            jnp.asarray(_reward(ids), jnp.float32), jnp.asarray(obs + [0.5, 0]),
            jnp.asarray(term), jnp.asarray(last)))
    return agent, learner


def _n_step_by_hand(i, n):
    """(return, discount, next_obs id) of the n-step transition from id i (env i % E):
    sum_k gamma^k r_{i + kE}, cut after the first transition that ends the episode."""
    ret, m = 0.0, n
    for k in range(n):
        j = i + E * k
        ret += GAMMA**k * _reward(j)
        if j in TERMINAL | TRUNCATED:
            m = k + 1
            break
    end = i + E * (m - 1)
    return ret, GAMMA**m * (end not in TERMINAL), end + 0.5


def test_one_step_replay_keeps_buffer_size_transitions():
    """n = 1: the ring holds buffer_size = 10 transitions, the newest ones (ids 2..11 after
    12 adds), even when 10 is not a multiple of num_envs = 3."""
    cfg = Config(num_envs=E, buffer_size=10, batch_size=4, gamma=GAMMA, **SMALL)
    _, learner = _ring(cfg, 4)
    assert replay.capacity(learner.replay) == 10 and int(learner.replay.size) == 10
    assert sorted(np.asarray(learner.replay.data.obs[:, 0]).astype(int)) == list(range(2, 12))


@pytest.mark.parametrize("per,n", [(False, 2), (True, 2), (True, 3)])
def test_sampled_n_step_batches_by_hand(per, n):
    """Every row of a sampled batch is the n-step transition of its first id: the return,
    gamma^m (1 - terminal) and next_obs of the m-th step, across a ring that has wrapped
    (24 adds, 18 slots). With prioritized replay: the slots the rows came from, all at the
    initial priority, so every importance weight is 1; the ids sampled are those still held
    whose n steps are all in (up to 23 - (n - 1) E)."""
    cfg = Config(num_envs=E, buffer_size=20, batch_size=32, gamma=GAMMA, n_step=n,
                 prioritized=per, **SMALL)
    _, learner = _ring(cfg, 8)
    batch, slots = sample_replay(cfg, learner, jax.random.PRNGKey(3))
    ids = np.asarray(batch.obs[:, 0]).astype(int)
    cap = replay.capacity(learner.replay)
    assert set(ids) <= set(range(24 - cap, 24 - (n - 1) * E))  # held, with all n steps in
    assert len(set(ids)) >= 6
    want = np.array([_n_step_by_hand(i, n) for i in ids])
    np.testing.assert_allclose(batch.reward, want[:, 0], rtol=1e-6)
    np.testing.assert_allclose(batch.discount, want[:, 1], rtol=1e-6)
    np.testing.assert_allclose(batch.next_obs[:, 0], want[:, 2])
    np.testing.assert_array_equal(batch.action, ids % 2)
    if per:
        np.testing.assert_array_equal(slots, ids % cap)
        np.testing.assert_allclose(batch.weight, np.ones(32), rtol=1e-6)
    else:
        assert slots is None


def test_prioritized_pixel_replay_has_a_leaf_for_every_slot():
    """Frame replay with 9 envs of 8x8 frames, 36 slots (4 rows); slot = row * 9 + env.
    After 5 adds the sampleable rows are 2 and 3 (the newest row has no next frame, the
    next stack - 1 = 1 row lost its first frame): their 18 slots hold priority 1."""
    cfg = Config(num_envs=9, buffer_size=36, batch_size=8, prioritized=True, **SMALL)
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0),
                           jnp.zeros((8, 8, 2), jnp.uint8), True)
    add = jax.jit(lambda learner, step: observe(cfg, learner, step))
    for t in range(5):
        learner = add(learner, FrameStep(
            jnp.full((9, 8, 8), t + 1, jnp.uint8), jnp.zeros(9, jnp.int32),
            jnp.ones(9, jnp.float32), jnp.zeros(9, jnp.float32), jnp.full(9, t == 0)))
    nodes = np.asarray(learner.priorities.nodes)
    assert nodes.shape == (128,)  # 64 leaves: the power of two above 36
    want = np.zeros(64)
    want[18:36] = 1.0
    np.testing.assert_array_equal(nodes[64:], want)
    assert nodes[1] == 18.0
    batch, slots = sample_replay(cfg, learner, jax.random.PRNGKey(1))
    assert set(np.asarray(slots)) <= set(range(18, 36))


# --- training rounds ------------------------------------------------------------------------

S = np.array([0.5, -1.0, 2.0])  # every stored transition: s, a = 1, r = 0.7, s', not terminal
S_NEXT = np.array([1.0, 0.3, -0.4])


def _same_transitions(cfg):
    """A learner whose replay holds 4 copies of one transition (so every batch is that
    transition, whatever the draw)."""
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0), jnp.zeros(3))
    for _ in range(2):
        learner = observe(cfg, learner, Transition(
            jnp.tile(jnp.asarray(S, jnp.float32), (2, 1)), jnp.ones(2, jnp.int32),
            jnp.full(2, 0.7), jnp.tile(jnp.asarray(S_NEXT, jnp.float32), (2, 1)),
            jnp.zeros(2), jnp.zeros(2)))
    return agent, learner


def _mlp(params, x):
    """Q(s, .) = relu(x W0 + b0) W1 + b1, and the hidden layer's pre-activation."""
    p = {k: {n: np.asarray(v, np.float64) for n, v in d.items()}
         for k, d in params["params"].items()}
    pre = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    return np.maximum(pre, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], pre, p


def test_train_round_reports_the_last_updates_loss_and_q():
    """gradient_steps = 3 SGD updates on mean (Q(s, a) - y)^2, y = r + gamma max Q_0(s')
    (target params fixed): last_loss and last_q (mean of max_a Q(s, a)) are those of the
    third update, taken at the params after two; the learner's key moves on."""
    cfg = Config(num_envs=2, buffer_size=8, batch_size=4, gamma=0.9, gradient_steps=3,
                 learning_rate=0.1, **SMALL)
    agent, learner = _same_transitions(cfg)
    after = train_round(cfg, agent, learner)

    params = learner.agent.params
    y = 0.7 + 0.9 * _mlp(params, S_NEXT)[0].max()
    q_means, losses = [], []
    for _ in range(3):
        q, pre, p = _mlp(params, S)
        delta = q[1] - y
        q_means.append(q.max())
        losses.append(delta**2)
        dq = np.array([0.0, 2 * delta])
        dpre = (p["Dense_1"]["kernel"] @ dq) * (pre > 0)
        grads = {"Dense_0": {"kernel": np.outer(S, dpre), "bias": dpre},
                 "Dense_1": {"kernel": np.outer(np.maximum(pre, 0), dq), "bias": dq}}
        params = {"params": {k: {n: p[k][n] - 0.1 * grads[k][n] for n in p[k]} for k in p}}
    assert min(abs(q_means[2] - q_means[1]), abs(q_means[2] - q_means[0])) > 1e-3
    assert float(after.last_q) == pytest.approx(q_means[2], rel=1e-5)
    assert float(after.last_loss) == pytest.approx(losses[2], rel=1e-4)
    assert int(after.agent.updates) == 3
    assert not np.array_equal(jax.random.key_data(after.key), jax.random.key_data(learner.key))


def test_noisy_train_round_draws_its_noise_from_the_learners_key():
    """Noisy nets: the same batch (every slot holds one transition) under two learner keys
    gives two different updates, the noise of each drawn from the key."""
    cfg = Config(num_envs=2, buffer_size=8, batch_size=4, gamma=0.9, learning_rate=0.1,
                 noisy=True, **SMALL)
    agent, learner = _same_transitions(cfg)
    round_ = jax.jit(lambda learner: train_round(cfg, agent, learner))
    a = round_(learner._replace(key=jax.random.PRNGKey(11)))
    b = round_(learner._replace(key=jax.random.PRNGKey(12)))
    again = round_(learner._replace(key=jax.random.PRNGKey(11)))
    diffs = [float(np.max(np.abs(x - z))) for x, z in
             zip(jax.tree.leaves(a.agent.params), jax.tree.leaves(b.agent.params))]
    assert max(diffs) > 1e-4
    for x, z in zip(jax.tree.leaves(a.agent.params), jax.tree.leaves(again.agent.params)):
        np.testing.assert_array_equal(x, z)


def test_learn_trains_when_the_clock_says_or_when_told():
    """learn trains on trains_at(it, fill_start) (E = 2, learning_starts = 6, batch 4:
    it = 2 trains, it = 1 does not, nor it = 2 after a refill from iteration 2), or on
    train_now when the host passes it."""
    cfg = Config(num_envs=2, buffer_size=8, batch_size=4, learning_starts=6, gamma=0.9,
                 learning_rate=0.1, **SMALL)
    agent, learner = _same_transitions(cfg)

    def trained(out):
        changed = any(not np.array_equal(x, z) for x, z in
                      zip(jax.tree.leaves(out.agent.params), jax.tree.leaves(learner.agent.params)))
        assert changed == (int(out.agent.updates) == 1)
        return changed

    assert trained(learn(cfg, agent, learner, jnp.int32(2), jnp.int32(0)))
    assert not trained(learn(cfg, agent, learner, jnp.int32(1), jnp.int32(0)))
    assert not trained(learn(cfg, agent, learner, jnp.int32(2), jnp.int32(2)))
    assert trained(learn(cfg, agent, learner, jnp.int32(1), jnp.int32(0), train_now=True))
    assert not trained(learn(cfg, agent, learner, jnp.int32(2), jnp.int32(0), train_now=False))

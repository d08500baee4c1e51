"""Loss, targets, schedules, replay and target updates against hand-computed values."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import prioritized, replay, schedules
from deepq.agents.base import make_optimizer
from deepq.agents.dqn import (
    elementwise_loss,
    expected_updates,
    make_agent,
    td_targets,
)
from deepq.config import Config
from deepq.drivers.base import init_best, keep_better, saved_params
from deepq.drivers.common import mark_new, trains_at
from deepq.drivers.jitted import JittedDriver
from deepq.presets import base_config
from deepq.replay import Transition


def test_td_target_dqn_and_terminal():
    q_next = jnp.array([[1.0, 3.0], [2.0, -1.0]])
    y = td_targets(jnp.array([1.0, 0.5]), jnp.array([0.9, 0.0]), q_next)
    # 1 + 0.9 * max(1, 3) = 3.7 ; terminal (discount 0): 0.5
    np.testing.assert_allclose(y, [3.7, 0.5], rtol=1e-6)


def test_td_target_double_dqn_uses_online_argmax():
    q_next_target = jnp.array([[1.0, 3.0]])
    q_next_online = jnp.array([[5.0, 0.0]])  # online prefers action 0
    y = td_targets(jnp.array([1.0]), jnp.array([0.9]), q_next_target, q_next_online)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    "kind,delta,expected",
    [
        ("mse", [0.5, -3.0], [0.25, 9.0]),
        ("huber", [0.5, -3.0], [0.125, 2.5]),  # 0.5*0.25 ; 1*(3-0.5)
        ("pseudo_huber", [0.5, -3.0], [np.sqrt(1.25) - 1, np.sqrt(10.0) - 1]),
    ],
)
def test_elementwise_losses(kind, delta, expected):
    np.testing.assert_allclose(elementwise_loss(jnp.array(delta), kind, 1.0), expected, rtol=1e-6)


def test_huber_delta_two():
    # k = 2: inside 0.5 d^2 ; outside k(|d| - k/2) = 2 * (5 - 1) = 8
    np.testing.assert_allclose(elementwise_loss(jnp.array([1.0, 5.0]), "huber", 2.0), [0.5, 8.0])
    # k = 0.5: inside 0.5 * 0.25^2 = 0.03125 ; outside 0.5 * (3 - 0.25) = 1.375
    np.testing.assert_allclose(elementwise_loss(jnp.array([0.25, -3.0]), "huber", 0.5),
                               [0.03125, 1.375], rtol=1e-6)


@pytest.mark.parametrize("k,delta,expected", [
    # k^2 (sqrt(1 + (d/k)^2) - 1): 4 (sqrt(1.25) - 1), 4 (sqrt(5) - 1), 4 (sqrt(1.16) - 1)
    (2.0, [1.0, -4.0, 0.8], [0.47213595, 4.94427191, 0.30813185]),
    # 0.25 (sqrt(5) - 1), 0.25 (sqrt(1.25) - 1), 0.25 (sqrt(37) - 1)
    (0.5, [1.0, -0.25, 3.0], [0.30901699, 0.02950850, 1.27069063]),
])
def test_pseudo_huber_at_k_other_than_one(k, delta, expected):
    np.testing.assert_allclose(elementwise_loss(jnp.array(delta), "pseudo_huber", k), expected,
                               rtol=1e-6)


def test_linear_epsilon_schedule():
    cfg = Config(total_steps=1000, epsilon_start=1.0, epsilon_end=0.1, epsilon_fraction=0.5)
    eps = [float(schedules.epsilon(cfg, jnp.float32(t), jnp.int32(0))) for t in (0, 250, 500, 900)]
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    cfg = cfg.replace(epsilon_steps=100)  # an absolute duration wins over the fraction
    eps = [float(schedules.epsilon(cfg, jnp.float32(t), jnp.int32(0))) for t in (0, 50, 100)]
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1], rtol=1e-6)


def test_linear_epsilon_over_a_single_step():
    """epsilon_steps=1: the whole decay happens in the first step (no floor of 2 steps)."""
    cfg = Config(epsilon_start=1.0, epsilon_end=0.2, epsilon_steps=1)
    eps = [float(schedules.epsilon(cfg, jnp.float32(t), jnp.int32(0))) for t in (0, 0.5, 1)]
    np.testing.assert_allclose(eps, [1.0, 0.6, 0.2], rtol=1e-6)


def test_an_unknown_schedule_is_named_in_the_error():
    with pytest.raises(ValueError, match="cosine"):
        schedules.epsilon(Config(epsilon_schedule="cosine"), jnp.float32(0), jnp.int32(0))


def test_linear_epsilon_schedule_after_a_delay():
    # MinAtar's dqn.py: eps = 1 until frame 5000, then 1 + (0.1 - 1) (t - 5000) / 1e5
    cfg = Config(epsilon_start=1.0, epsilon_end=0.1, epsilon_steps=100_000, epsilon_delay=5_000)
    steps = (0, 5_000, 55_000, 105_000, 200_000)
    eps = [float(schedules.epsilon(cfg, jnp.float32(t), jnp.int32(0))) for t in steps]
    np.testing.assert_allclose(eps, [1.0, 1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_minatar_rmsprop_is_pytorchs_centered_rmsprop():
    """The paper's code steps with torch.optim.RMSprop(lr, alpha=0.95, centered=True,
    eps=0.01): v = a v + (1-a) g^2, m = a m + (1-a) g, p -= lr g / (sqrt(v - m^2) + eps)."""
    cfg = base_config("Breakout-MinAtar", "minatar")
    opt = make_optimizer(cfg, expected_updates(cfg))
    params = jnp.zeros(3)
    state = opt.init(params)
    grads = [np.array([1.0, 0.01, -0.3]), np.array([0.5, 0.02, 0.3])]
    v = m = np.zeros(3)
    expected = np.zeros(3)
    for g in grads:
        updates, state = opt.update(jnp.asarray(g, jnp.float32), state, params)
        params = params + updates
        v = 0.95 * v + 0.05 * g**2
        m = 0.95 * m + 0.05 * g
        expected = expected - 2.5e-4 * g / (np.sqrt(v - m**2) + 0.01)
    np.testing.assert_allclose(params, expected, rtol=1e-5)
    # With eps inside the square root (DeepMind's form) the small gradient's step is ~8x
    # shorter: 2.5e-4 * 0.01 / sqrt(0.0475e-4 + 0.01) against / (0.0021794 + 0.01).
    assert float(params[1]) < -3e-4


def test_exponential_epsilon_schedule():
    cfg = Config(epsilon_schedule="exponential", epsilon_start=1.0, epsilon_end=0.1,
                 epsilon_decay=0.01)
    got = float(schedules.epsilon(cfg, jnp.float32(100), jnp.int32(0)))
    assert got == pytest.approx(0.1 + 0.9 * np.exp(-1.0), rel=1e-6)


def test_multiplicative_epsilon_schedule_counts_updates():
    cfg = Config(epsilon_schedule="multiplicative", epsilon_start=1.0, epsilon_end=0.2,
                 epsilon_decay=0.5)
    got = [float(schedules.epsilon(cfg, jnp.float32(10_000), jnp.int32(u))) for u in (0, 1, 2, 5)]
    np.testing.assert_allclose(got, [1.0, 0.5, 0.25, 0.2], rtol=1e-6)


def _items(values):
    v = jnp.asarray(values, jnp.float32)
    return Transition(v, v.astype(jnp.int32), v, v, v, v)


def test_replay_wraps_around_and_samples_only_filled_slots():
    state = replay.init(4, _items(0.0))
    state = replay.add_batch(state, _items([1.0, 2.0, 3.0]))
    assert int(state.size) == 3 and int(state.index) == 3
    sampled = replay.sample(state, jax.random.PRNGKey(0), 256)
    assert set(np.asarray(sampled.obs).tolist()) == {1.0, 2.0, 3.0}
    state = replay.add_batch(state, _items([4.0, 5.0, 6.0]))  # 5 and 6 overwrite 1 and 2
    np.testing.assert_array_equal(state.data.obs, [5.0, 6.0, 3.0, 4.0])
    assert int(state.size) == 4 and int(state.index) == 2


def test_replay_holding_one_item_samples_only_it():
    state = replay.add_batch(replay.init(4, _items(0.0)), _items([7.0]))
    sampled = replay.sample(state, jax.random.PRNGKey(0), 64)
    np.testing.assert_array_equal(sampled.obs, np.full(64, 7.0))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_new_slots_wait_for_their_n_steps_before_taking_the_largest_priority(n):
    """mark_new (Schaul et al. 2016, Algorithm 1, line 6, with n-step windows): an add of
    E = 2 transitions zeroes the slots it writes (their n steps are not in yet) and gives
    the slots written n - 1 adds before it the largest priority so far."""
    E, cap = 2, 8
    cfg = Config(num_envs=E, n_step=n, buffer_size=cap, batch_size=2, prioritized=True)
    state, tree = replay.init(cap, _items(0.0)), prioritized.init(cap)
    expected, largest = np.zeros(cap), 1.0
    for k in range(7):  # the ring holds 4 adds: slots are overwritten from add 4 on
        if k == 3:  # a learned priority above the initial 1 becomes the largest so far
            tree = prioritized.set_priorities(tree, jnp.array([1]), jnp.array([5.0]))
            expected[1], largest = 5.0, 5.0
        after = replay.add_batch(state, _items([10.0 * k, 10.0 * k + 1]))
        tree = mark_new(cfg, tree, state, after)
        state = after
        expected[[2 * k % cap, (2 * k + 1) % cap]] = 0.0
        ready = k - (n - 1)  # the add whose n steps this one completes
        if ready >= 0:
            expected[[2 * ready % cap, (2 * ready + 1) % cap]] = largest
        np.testing.assert_allclose(tree.nodes[cap:], expected, err_msg=f"after add {k}")
        assert float(tree.nodes[1]) == pytest.approx(expected.sum())


def test_replay_keeps_each_fields_dtype_and_counts_in_int32():
    """Observations stay in the env's dtype (bool planes, uint8 pixels, float32), actions in
    int32: nothing is widened to float32 on the way into the ring."""
    example = Transition(jnp.zeros((2, 2), bool), jnp.int32(0), jnp.float32(0),
                         jnp.zeros(3, jnp.uint8), jnp.float32(0), jnp.float32(0))
    state = replay.init(5, example)
    dtypes = [leaf.dtype for leaf in state.data]
    assert dtypes == [jnp.bool_, jnp.int32, jnp.float32, jnp.uint8, jnp.float32, jnp.float32]
    assert [leaf.shape for leaf in state.data][:4] == [(5, 2, 2), (5,), (5,), (5, 3)]
    assert state.index.dtype == jnp.int32 and state.size.dtype == jnp.int32


@pytest.mark.parametrize("size,n,envs,count", [(4, 3, 2, 1), (5, 3, 2, 1), (6, 3, 2, 2),
                                               (7, 1, 3, 7)])
def test_sampleable_count_leaves_out_the_newest_windows_but_never_drops_below_one(
        size, n, envs, count):
    """count = max(size - (n - 1) * num_envs, 1): the newest n - 1 adds of each env wait."""
    state = replay.init(12, _items(0.0))
    state = replay.add_batch(state, _items(np.arange(size, dtype=np.float32)))
    assert int(replay.sampleable(state, n, envs)[1]) == count


def test_training_clock():
    cfg = Config(num_envs=2, learning_starts=10, train_freq=3, batch_size=4, total_steps=40)
    its = [it for it in range(cfg.iterations) if trains_at(cfg, it)]
    # steps after iteration it: 2(it+1) >= 10 -> it >= 4 ; (it+1) % 3 == 0 -> it in 5, 8, ...
    assert its == [5, 8, 11, 14, 17]
    assert [bool(trains_at(cfg, jnp.int32(it))) for it in range(20)] == [
        it in its for it in range(20)
    ]
    assert expected_updates(cfg.replace(gradient_steps=2)) == 10


@pytest.mark.parametrize("envs,starts,freq,batch,total", [
    (2, 100, 4, 32, 1000), (1, 0, 1, 32, 300), (4, 10, 3, 64, 999), (3, 1000, 2, 8, 900),
    (8, 0, 7, 4, 2000)])
def test_expected_updates_counts_the_rounds_the_clock_trains(envs, starts, freq, batch, total):
    """The horizon of the lr and beta schedules is every round that `trains_at` says runs."""
    cfg = Config(num_envs=envs, learning_starts=starts, train_freq=freq, batch_size=batch,
                 total_steps=total, gradient_steps=3)
    rounds = sum(trains_at(cfg, it) for it in range(cfg.iterations))
    assert expected_updates(cfg) == max(3 * rounds, 1)


def _tiny_batch():
    obs = jnp.array([[0.1, -0.2, 0.3, 0.0], [0.0, 0.5, -0.1, 0.2]])
    # the second transition is terminal: discount 0
    return replay.Batch(obs, jnp.array([0, 1]), jnp.array([1.0, 0.0]), obs[::-1],
                        jnp.array([0.9, 0.0]))


@pytest.mark.parametrize("mode", ["hard", "polyak", "none"])
def test_target_network_updates(mode):
    cfg = Config(hidden_sizes=(8,), target_update=mode, target_update_interval=3, tau=0.25,
                 optimizer="sgd", learning_rate=0.1, max_grad_norm=0.0)
    agent = make_agent(cfg, 2)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(4))
    initial = state.params
    for n in range(1, 4):
        prev_target = state.target_params
        state, _ = agent.update(state, _tiny_batch(), jax.random.PRNGKey(n))
        leaf = lambda t: np.asarray(t["params"]["Dense_0"]["kernel"])  # noqa: E731
        if mode == "hard":
            expected = leaf(state.params) if n == 3 else leaf(initial)
        elif mode == "polyak":
            expected = 0.25 * leaf(state.params) + 0.75 * leaf(prev_target)
        else:
            expected = leaf(state.params)
        np.testing.assert_allclose(leaf(state.target_params), expected, rtol=1e-6, atol=1e-7)
    assert int(state.updates) == 3


def test_sgd_update_follows_the_td_gradient():
    """One SGD step equals params - lr * d/dparams mean((Q(s,a) - y)^2), y held fixed."""
    cfg = Config(hidden_sizes=(8,), optimizer="sgd", learning_rate=0.05, loss="mse",
                 max_grad_norm=0.0, gamma=0.9)
    agent = make_agent(cfg, 2)
    state = agent.init(jax.random.PRNGKey(1), jnp.zeros(4))
    batch = _tiny_batch()

    def by_hand(params):
        q = agent.q_values(params, batch.obs)
        q_sa = q[jnp.arange(2), batch.action]
        q_next = agent.q_values(state.target_params, batch.next_obs).max(axis=1)
        y = batch.reward + jnp.array([0.9, 0.0]) * q_next
        return jnp.mean((q_sa - y) ** 2)

    grads = jax.grad(by_hand)(state.params)
    new_state, metrics = agent.update(state, batch, jax.random.PRNGKey(0))
    expected = jax.tree.map(lambda p, g: p - 0.05 * g, state.params, grads)
    for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert float(metrics["loss"]) == pytest.approx(float(by_hand(state.params)), rel=1e-6)


def test_epsilon_greedy_and_boltzmann_actions():
    cfg = Config(hidden_sizes=(8,))
    agent = make_agent(cfg, 3)
    params = agent.init(jax.random.PRNGKey(0), jnp.zeros(4)).params
    obs = jax.random.normal(jax.random.PRNGKey(1), (2000, 4))
    greedy = np.asarray(agent.q_values(params, obs).argmax(axis=1))
    np.testing.assert_array_equal(agent.act(params, obs, jax.random.PRNGKey(2), 0.0), greedy)
    random = np.asarray(agent.act(params, obs, jax.random.PRNGKey(3), 1.0))
    assert np.bincount(random, minlength=3).min() > 550  # ~uniform over 3 actions
    hot = make_agent(cfg.replace(exploration="boltzmann", temperature=1e6), 3)
    soft = np.asarray(hot.act(params, obs, jax.random.PRNGKey(4), 0.0))
    assert np.bincount(soft, minlength=3).min() > 550  # huge temperature: ~uniform


def test_selection_keeps_the_best_params_per_seed():
    params = {"w": jnp.array([[1.0, 1.0], [2.0, 2.0]])}  # two seeds
    best = jax.vmap(init_best)(params, jax.random.split(jax.random.PRNGKey(0), 2))
    assert np.all(np.isneginf(best.score))
    keep = jax.vmap(keep_better)
    best = keep(best, params, jnp.array([10.0, 20.0]))  # the first evaluation always wins
    newer = {"w": jnp.array([[3.0, 3.0], [4.0, 4.0]])}
    best = keep(best, newer, jnp.array([10.0, 15.0]))  # a tie goes to the newer params
    np.testing.assert_array_equal(best.params["w"], [[3.0, 3.0], [2.0, 2.0]])
    np.testing.assert_array_equal(best.score, [10.0, 20.0])


@pytest.mark.parametrize("clip", [False, True])
def test_reward_clipping_applies_to_replay_only(clip):
    from deepq.drivers.common import init_learner, observe_and_learn

    cfg = Config(hidden_sizes=(4,), buffer_size=8, batch_size=2, learning_starts=100,
                 total_steps=1000, clip_rewards=clip)
    agent = make_agent(cfg, 2)
    learner = init_learner(cfg, agent, jax.random.PRNGKey(0), jnp.zeros(3))
    rewards = jnp.array([5.0, -0.5, -3.0])
    batch = Transition(jnp.zeros((3, 3)), jnp.zeros(3, jnp.int32), rewards, jnp.zeros((3, 3)),
                       jnp.zeros(3), jnp.zeros(3))
    learner = observe_and_learn(cfg, agent, learner, batch, jnp.int32(0), 0)
    stored = np.asarray(learner.replay.data.reward[:3])
    np.testing.assert_allclose(stored, [1.0, -0.5, -1.0] if clip else [5.0, -0.5, -3.0])


def test_result_is_the_selected_params_only_with_selection():
    carry = SimpleNamespace(best=SimpleNamespace(params={"w": 1.0}),
                            learner=SimpleNamespace(agent=SimpleNamespace(params={"w": 2.0})))
    assert saved_params(Config(select_every=1000), carry) == {"w": 1.0}
    assert saved_params(Config(select_every=0), carry) == {"w": 2.0}


def test_step_clock_counts_env_steps_per_seed_and_reports_each_finished_episode():
    clock = JittedDriver.__new__(JittedDriver)  # the clock needs only the config
    clock.cfg = Config(num_envs=3, num_seeds=2, seed=5)
    assert clock.clock(SimpleNamespace(iteration=7)) == 21
    assert clock.env_steps(SimpleNamespace(iteration=7)) == [21, 21]
    # A chunk of 3 iterations from iteration 10 ([seeds, iterations, envs]).
    done = np.zeros((2, 3, 3), bool)
    done[0, 1, 2] = done[0, 2, 0] = done[1, 0, 0] = done[1, 2, 1] = True
    ret = np.arange(18, dtype=np.float32).reshape(2, 3, 3) * 1.5
    per_it = np.arange(6, dtype=np.float32).reshape(2, 3)
    logs = {"done": done, "episode_return": ret, "episode_length": ret.astype(np.int32) + 1,
            "epsilon": per_it / 10, "loss": per_it + 0.5, "q_mean": -per_it}
    episodes = [4, 0]  # episodes each seed finished before this chunk
    rows = clock.rows(logs, SimpleNamespace(iteration=10), episodes, 123.5)
    # (seed index, iteration in the chunk, env, env step, episode number), by env step then seed
    want = [(1, 0, 0, 33, 1), (0, 1, 2, 36, 5), (0, 2, 0, 39, 6), (1, 2, 1, 39, 2)]
    assert len(rows) == 4
    for row, (s, k, e, step, episode) in zip(rows, want):
        assert row == {"seed": 5 + s, "env_step": step, "episode": episode,
                       "return": pytest.approx(1.5 * (9 * s + 3 * k + e)),
                       "length": int(1.5 * (9 * s + 3 * k + e)) + 1,
                       "epsilon": pytest.approx((3 * s + k) / 10), "loss": 3 * s + k + 0.5,
                       "q_mean": -(3 * s + k), "steps_per_sec": 123.5}
    assert episodes == [6, 2]

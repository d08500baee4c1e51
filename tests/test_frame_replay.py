"""Pixel replay (frame_replay.py): one frame per step, stacks rebuilt at sampling time.

The reference is the env itself: every transition rebuilt from the replay must equal the
observations the env returned, across life losses, game overs and the ring's wrap-around.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import frame_replay
from deepq.drivers.host import PixelEnvs
from deepq.envs import resolve
from deepq.presets import base_config

pytest.importorskip("ale_py")


def play(num_envs: int, steps: int, seed: int = 0):
    """Random play of Breakout through the host driver's env adapter: the records it hands
    to replay, the observations acted on ([steps + 1]), and which steps were resets."""
    cfg = base_config("ALE/Breakout-v5", "nature").replace(num_envs=num_envs)
    envs = PixelEnvs(cfg, resolve(cfg.env_id, cfg=cfg))
    rng = np.random.default_rng(seed)
    obs = envs.reset(list(range(num_envs)))
    history, records, ignored = [obs], [], []
    for _ in range(steps):
        out = envs.step(obs, rng.integers(0, 4, num_envs))
        records.append(out.record)
        ignored.append(~out.counted)
        obs = out.next_obs
        history.append(obs)
    envs.close()
    return records, np.stack(history), np.stack(ignored)


def fill(records, capacity: int, num_envs: int) -> frame_replay.FrameReplayState:
    state = frame_replay.init(capacity, num_envs, (84, 84), 4)
    add = jax.jit(frame_replay.add, donate_argnums=0)
    for rec in records:
        state = add(state, jax.tree.map(jnp.asarray, rec))
    return state


@pytest.mark.parametrize("capacity", [2 * 1000, 2 * 150])  # no wrap; wrapped many times
def test_every_sampleable_transition_equals_what_the_env_returned(capacity):
    E, steps = 2, 900
    records, obs, ignored = play(E, steps)
    assert ignored.any(axis=0).all(), "each env should reach a game over in 900 steps"
    state = fill(records, capacity, E)
    T = capacity // E
    start, count = (int(x) for x in frame_replay.sampleable(state, 1))
    rows = (start + np.arange(count)) % T
    # Ring row r holds step s = r + T * (number of wraps): map rows back to steps.
    steps_of = {int(r): s for s in range(steps) for r in [s % T] if s >= steps - T}
    pairs = []
    for e in range(E):
        valid = np.asarray(state.valid[rows, e])
        for r, ok in zip(rows, valid):
            s = steps_of[int(r)]
            # Invalid exactly where the step acted on a game's final observation (the env
            # ignored its action and reset).
            assert ok == (not ignored[s, e]), (s, e)
            if ok:
                pairs.append((int(r), e, s))
    r, e, s = (np.array(x) for x in zip(*pairs))
    got = jax.jit(frame_replay.gather)(state, jnp.asarray(r), jnp.asarray(e))
    np.testing.assert_array_equal(np.asarray(got.obs), obs[s, e])
    np.testing.assert_array_equal(np.asarray(got.next_obs), obs[s + 1, e])
    action, reward, terminated = (np.array([getattr(records[i], name)[j] for i, j in zip(s, e)])
                                  for name in ("action", "reward", "terminated"))
    np.testing.assert_array_equal(np.asarray(got.action), action)
    np.testing.assert_array_equal(np.asarray(got.reward), reward)
    np.testing.assert_array_equal(np.asarray(got.terminated), terminated)
    assert len(pairs) > 0.9 * count * E
    # Life losses (terminal, the stack goes on) and game overs both were in the data.
    terminated = np.array([r.terminated for r in records])
    assert terminated.sum() > ignored.sum()


def _small_ring(capacity: int, num_envs: int, steps: int) -> frame_replay.FrameReplayState:
    """A ring of 2x2 frames, one episode per env, frame s at step s (action s * 10 + env)."""
    state = frame_replay.init(capacity, num_envs, (2, 2), 2)
    for s in range(steps):
        step = frame_replay.FrameStep(jnp.full((num_envs, 2, 2), s, jnp.uint8),
                                      jnp.arange(num_envs) + 10 * s, jnp.zeros(num_envs),
                                      jnp.zeros(num_envs), jnp.full(num_envs, s == 0))
        state = frame_replay.add(state, step)
    return state


def test_ring_rows_are_the_capacity_over_the_envs_and_at_least_one():
    assert [frame_replay.num_rows(c, e) for c, e in ((8, 4), (9, 4), (3, 4), (1, 1))] == \
        [2, 2, 1, 1]
    assert frame_replay.init(3, 4, (2, 2), 2).frames.shape == (1, 4, 2, 2)


def test_the_ring_keeps_its_dtypes_and_int32_counters():
    """Checkpoints store the ring with its dtypes and restore against them: uint8 frames,
    int32 actions and counters (index, rows), float32 rewards and terminals, bool flags."""
    state = _small_ring(16, 2, 3)
    want = {"frames": jnp.uint8, "action": jnp.int32, "reward": jnp.float32,
            "terminated": jnp.float32, "first": jnp.bool_, "valid": jnp.bool_,
            "index": jnp.int32, "rows": jnp.int32}
    for ring in (frame_replay.init(16, 2, (2, 2), 2), state):
        assert {k: getattr(ring, k).dtype for k in want} == want
    assert int(state.rows) == 3 and int(state.index) == 3


def test_a_ring_of_two_rows_has_one_sampleable_transition():
    """After two adds only the first row has its next frame: count 1, never rounded up."""
    state = _small_ring(16, 2, 2)
    assert [int(x) for x in frame_replay.sampleable(state, 1)] == [0, 1]
    rows, envs = frame_replay.sample_rows(state, jax.random.PRNGKey(0), 64)
    assert set(np.asarray(rows).tolist()) == {0}


def test_sampled_envs_cover_every_column():
    """Uniform over (row, env): each of 3 envs is drawn about a third of the time."""
    state = _small_ring(60, 3, 20)
    rows, envs = frame_replay.sample_rows(state, jax.random.PRNGKey(1), 3_000)
    counts = np.bincount(np.asarray(envs), minlength=3)
    assert counts.min() > 850, counts
    batch = frame_replay.sample(state, jax.random.PRNGKey(1), 3_000)
    np.testing.assert_array_equal(np.asarray(batch.action) % 10, np.asarray(envs))


def test_sampling_is_uniform_over_valid_transitions_only():
    T, k = 40, 4
    state = frame_replay.init(T, 1, (2, 2), k)
    first = np.zeros(55, bool)
    first[[0, 17, 33]] = True  # episodes start at steps 0, 17 and 33 (ring of 40 rows)
    for s in range(55):
        step = frame_replay.FrameStep(jnp.full((1, 2, 2), s, jnp.uint8), jnp.array([s]),
                                      jnp.zeros(1), jnp.zeros(1), jnp.array([first[s]]))
        state = frame_replay.add(state, step)
    batch = jax.jit(lambda key: frame_replay.sample(state, key, 32))
    actions = np.concatenate([np.asarray(batch(jax.random.PRNGKey(i)).action)
                              for i in range(1_000)])
    # Steps 15..54 are in the ring; 15, 16, 17 lack their stack's older frames (overwritten),
    # 54 is the newest (no next frame), and 32 is followed by a reset: 35 transitions remain.
    allowed = sorted(set(range(18, 54)) - {32})
    assert sorted(set(actions.tolist())) == allowed
    counts = np.bincount(actions, minlength=55)[allowed]
    expected = len(actions) / len(allowed)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 75  # 34 degrees of freedom: p < 1e-4 that a uniform sampler exceeds it


def test_stacks_are_zeroed_before_an_episode_start():
    state = frame_replay.init(10, 1, (1, 1), 4)
    for s, first in enumerate([True, False, False, True, False, False]):
        step = frame_replay.FrameStep(jnp.full((1, 1, 1), s + 1, jnp.uint8), jnp.array([s]),
                                      jnp.zeros(1), jnp.zeros(1), jnp.array([first]))
        state = frame_replay.add(state, step)
    got = frame_replay.gather(state, jnp.array([1, 3, 4]), jnp.array([0, 0, 0]))
    assert got.obs[:, 0, 0, :].tolist() == [[0, 0, 1, 2], [0, 0, 0, 4], [0, 0, 4, 5]]
    assert got.next_obs[:, 0, 0, :].tolist() == [[0, 1, 2, 3], [0, 0, 4, 5], [0, 4, 5, 6]]
    assert not bool(state.valid[2, 0])  # step 2's next frame belongs to a new episode


def test_one_million_transitions_fit_in_8_gb():
    # Per transition: an 84x84 frame, action and reward (4 bytes each), terminal flag as
    # float32, first and valid flags (1 byte each): 7,070 bytes.
    assert frame_replay.memory_bytes(1_000_000, 1, (84, 84)) == 1_000_000 * 7_070
    assert frame_replay.memory_bytes(1_000_000, 1, (84, 84)) <= 8e9
    shapes = jax.eval_shape(lambda: frame_replay.init(1_000_000, 4, (84, 84), 4))
    allocated = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
    assert allocated == frame_replay.memory_bytes(1_000_000, 4, (84, 84)) + 8
    # A frame of H x W bytes: 210 x 160 (the ALE's own screen), 1,000 transitions in 2 columns.
    assert frame_replay.memory_bytes(1_000, 2, (210, 160)) == 1_000 * (210 * 160 + 14)
    shapes = jax.eval_shape(lambda: frame_replay.init(1_000, 2, (210, 160), 4))
    allocated = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
    assert allocated == frame_replay.memory_bytes(1_000, 2, (210, 160)) + 8


def _reference_n_step(records, obs, ignored, s, e, n, gamma):
    """From the env's own outputs: return, bootstrap observation and discount of the n-step
    transition that starts at step s of env e (cut after a terminal or a game's last step)."""
    ret, m = 0.0, 0
    for k in range(n):
        rec = records[s + k]
        ret += gamma**k * float(rec.reward[e])
        m = k + 1
        if rec.terminated[e] or ignored[s + k + 1, e]:
            break
    discount = gamma**m * (1.0 - float(records[s + m - 1].terminated[e]))
    return ret, obs[s + m, e], discount


@pytest.mark.parametrize("capacity,n", [(2 * 1000, 3), (2 * 150, 4)])
def test_n_step_transitions_match_the_env(capacity, n):
    E, steps, gamma = 2, 900, 0.9
    records, obs, ignored = play(E, steps, seed=1)
    state = fill(records, capacity, E)
    rows, envs = jax.jit(lambda key: frame_replay.sample_rows(state, key, 512, n))(
        jax.random.PRNGKey(0))
    batch = jax.jit(lambda r, e: frame_replay.n_step_batch(state, r, e, n, gamma))(rows, envs)
    T = capacity // E
    steps_of = {s % T: s for s in range(steps - T, steps)}
    cut = 0
    for b, (r, e) in enumerate(zip(np.asarray(rows), np.asarray(envs))):
        s = steps_of[int(r)]
        assert s + n <= steps, "sampled a transition whose n steps are not all in"
        ret, next_obs, discount = _reference_n_step(records, obs, ignored, s, e, n, gamma)
        assert float(batch.reward[b]) == pytest.approx(ret, abs=1e-5)
        assert float(batch.discount[b]) == pytest.approx(discount, abs=1e-6)
        np.testing.assert_array_equal(np.asarray(batch.next_obs[b]), next_obs)
        np.testing.assert_array_equal(np.asarray(batch.obs[b]), obs[s, e])
        cut += discount < gamma**n - 1e-6
    assert cut > 0, "no window crossed a life loss or game over: the test proves little"


@pytest.mark.parametrize("capacity,n", [(2 * 1000, 1), (2 * 150, 3)])
def test_prioritized_slots_are_exactly_the_sampleable_valid_ones(capacity, n):
    """New rows get the largest priority once their n steps are in and only if their next
    row continues the episode; the ring's newest rows and its oldest stack-1 rows get 0."""
    from deepq import prioritized

    E, steps = 2, 600
    records, _, _ = play(E, steps, seed=2)
    state = frame_replay.init(capacity, E, (84, 84), 4)
    tree = prioritized.init(capacity)

    @jax.jit
    def add(state, tree, rec):
        after = frame_replay.add(state, rec)
        return after, frame_replay.mark_new(tree, state, after, n)

    for rec in records:
        state, tree = add(state, tree, jax.tree.map(jnp.asarray, rec))
    T = capacity // E
    start, count = (int(x) for x in frame_replay.sampleable(state, n))
    sampleable = np.zeros((T, E), bool)
    sampleable[(start + np.arange(count)) % T] = True
    expected = np.where(sampleable & np.asarray(state.valid), 1.0, 0.0)
    size = tree.nodes.shape[0] // 2
    leaves = np.asarray(tree.nodes[size:size + T * E]).reshape(T, E)
    np.testing.assert_array_equal(leaves, expected)
    assert float(tree.nodes[1]) == expected.sum()


def test_a_ring_no_longer_than_n_rows_never_marks_a_transition():
    """With T <= n rows, row i - n (mod T) is row i itself when the ring is full: the n-step
    window that started there is overwritten, so no slot ever gets a priority."""
    from deepq import prioritized

    n, E = 3, 2
    state = frame_replay.init(n * E, E, (2, 3), 2)  # T = 3 rows
    tree = prioritized.init(n * E)
    for s in range(7):
        step = frame_replay.FrameStep(jnp.full((E, 2, 3), s, jnp.uint8), jnp.zeros(E),
                                      jnp.zeros(E), jnp.zeros(E), jnp.full(E, s == 0))
        after = frame_replay.add(state, step)
        tree = frame_replay.mark_new(tree, state, after, n)
        state = after
        np.testing.assert_array_equal(tree.nodes, 0.0)

"""Karpathy's Pong from pixels (envs/karpathy.py): preprocessing, observations, actions."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
ale_py = pytest.importorskip("ale_py")

from deepq.envs.karpathy import (  # noqa: E402
    ENV_ID,
    KarpathyPong,
    make_karpathy_pong,
    preprocess,
    register,
)

AGENT_GREEN = 92  # red channel of the agent's (right) paddle, (92, 186, 92)


@pytest.fixture
def env():
    env = make_karpathy_pong(render_mode="rgb_array")
    yield env
    env.close()


def test_preprocess_synthetic_frame():
    frame = np.empty((210, 160, 3), dtype=np.uint8)
    frame[...] = (144, 72, 17)  # background type 1
    frame[37:41, :, 0] = 109  # background type 2: erased
    frame[39, 12, 0] = 0  # black stays 0
    frame[35, 0, 0] = 236  # first kept row and column
    frame[193, 158, 0] = 92  # last kept row and column
    frame[101, 80, 0] = 213
    frame[51:59, 140:144, 0] = 92  # a paddle: kept rows 51, 53, 55, 57; columns 140, 142
    frame[36, 20, 0] = 236  # even row: skipped
    frame[35, 21, 0] = 236  # odd column: skipped
    frame[33, 30, 0] = 236  # above the crop
    frame[195, 30, 0] = 236  # below the crop
    frame[41, 50, 1:] = 255  # green and blue channels are ignored
    before = frame.copy()

    want = np.zeros((80, 80), dtype=np.int8)
    want[0, 0] = want[79, 79] = want[33, 40] = 1
    want[8:12, 70:72] = 1

    got = preprocess(frame)
    assert got.dtype == np.int8 and got.shape == (6400,)
    np.testing.assert_array_equal(got.reshape(80, 80), want)
    np.testing.assert_array_equal(frame, before)  # the input is not modified


def test_spaces_and_reset(env):
    assert env.action_space == gym.spaces.Discrete(2)
    assert env.observation_space.shape == (6400,)
    assert env.observation_space.dtype == np.int8
    assert env.env.spec.kwargs["frameskip"] == (2, 5)
    assert env.env.spec.kwargs["repeat_action_probability"] == 0.25
    assert env.unwrapped.get_action_meanings()[2:4] == ["RIGHT", "LEFT"]
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6400,) and obs.dtype == np.int8
    assert not obs.any()
    assert env.observation_space.contains(obs)


def test_obs_is_difference_of_rendered_frames(env):
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    nonzero = 0
    for _ in range(30):
        before = env.render()
        np.testing.assert_array_equal(before, env.unwrapped.ale.getScreenRGB())
        obs, *_ = env.step(int(rng.integers(2)))
        now = env.render()
        assert now.shape == (210, 160, 3) and now.dtype == np.uint8
        assert obs.dtype == np.int8 and obs.shape == (6400,)
        assert set(np.unique(obs)) <= {-1, 0, 1}
        np.testing.assert_array_equal(obs, preprocess(now) - preprocess(before))
        nonzero += np.count_nonzero(obs)
    assert nonzero > 0


def test_matches_plain_ale_pong(env):
    """Same seed, same (mapped) actions: the wrapped env steps the same game as ALE/Pong-v5
    with the same settings, and passes rewards and ends through unchanged."""
    gym.register_envs(ale_py)
    ref = gym.make("ALE/Pong-v5", frameskip=(2, 5), repeat_action_probability=0.25,
                   full_action_space=False)
    prev, _ = ref.reset(seed=3)
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    rewards = []
    for _ in range(300):
        action = int(rng.integers(2))
        frame, r_ref, term_ref, trunc_ref, _ = ref.step(2 if action == 1 else 3)
        obs, r, term, trunc, _ = env.step(action)
        assert (r, term, trunc) == (r_ref, term_ref, trunc_ref)
        np.testing.assert_array_equal(obs, preprocess(frame) - preprocess(prev))
        prev = frame
        rewards.append(r)
    assert any(rewards)  # some points were scored, and their rewards passed through
    ref.close()


def paddle_row(frame: np.ndarray) -> float:
    """Mean screen row of the agent's paddle inside the playing field."""
    field = frame[35:195, 140:144, 0]
    rows, _ = np.nonzero(field == AGENT_GREEN)
    assert rows.size > 0
    return 35 + rows.mean()


@pytest.mark.parametrize("seed", [0, 7])
def test_action_1_moves_up_and_0_down(env, seed):
    rows = {}
    for action in (1, 0):
        env.reset(seed=seed)
        for _ in range(10):
            env.step(action)
        rows[action] = paddle_row(env.render())
    assert rows[1] < 75 and rows[0] > 155, rows  # the field is rows 35..194


def test_register():
    register()
    register()  # idempotent
    env = gym.make(ENV_ID)
    assert env.spec.max_episode_steps is None
    assert isinstance(env.unwrapped, ale_py.AtariEnv)
    assert env.action_space.n == 2
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6400,) and obs.dtype == np.int8 and not obs.any()
    obs, *_ = env.step(1)
    assert env.observation_space.contains(obs)
    env.close()
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (210, 160, 3)
    while not isinstance(env, KarpathyPong):  # under gym.make's own wrappers
        env = env.env
    env.close()

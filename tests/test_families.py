"""The env families (envs/families.py) and the host episode loop (envs/rollout.play_host)."""

import gymnasium as gym
import numpy as np
import pytest

from deepq.config import Config
from deepq.envs import family, family_of, make_gymnasium, resolve
from deepq.envs.families import GymnasiumEpisodes, GymnaxEpisode
from deepq.envs.rollout import play_host
from deepq.errors import UserError


@pytest.mark.parametrize("env_id, backend, name", [
    ("CartPole-v1", "auto", "classic"),
    ("Acrobot-v1", "gymnax", "classic"),
    ("CartPole-v1", "gymnasium", "gymnasium"),
    ("Breakout-MinAtar", "auto", "minatar"),
    ("ALE/Pong-v5", "auto", "atari"),
    ("PongNoFrameskip-v4", "gymnasium", "atari"),
])
def test_each_id_and_backend_has_one_family(env_id, backend, name):
    fam = family_of(env_id, backend)
    assert fam.name == name
    assert fam.backend == ("gymnax" if name in ("classic", "minatar") else "gymnasium")
    assert fam.pixels == (name == "atari") and fam.scored_in_jax == (name == "minatar")


def test_ids_a_backend_cannot_run_are_refused():
    with pytest.raises(UserError, match="no JAX implementation"):
        family_of("LunarLander-v3", "gymnax")
    with pytest.raises(UserError, match="only as a gymnax env"):
        family_of("Breakout-MinAtar", "gymnasium")


def test_gymnasium_episodes_seed_each_env_and_reset_on_the_step_after_an_end():
    """In a sync vector env (drawn, or any seeds that are not consecutive) env i starts
    where a single env reset with seeds[i] starts; CartPole's own vector env draws every
    start from the first seed, the same starts for the same seeds. The step after an
    episode's end returns a fresh observation of the same env."""
    for seeds, drawn in (([5, 6, 7], True), ([5, 9, 2], True)):
        envs = GymnasiumEpisodes("CartPole-v1", 3, "float32", drawn=drawn)
        obs = envs.reset(seeds)
        for i, seed in enumerate(seeds):
            single = gym.make("CartPole-v1")
            np.testing.assert_allclose(obs[i], single.reset(seed=seed)[0], rtol=1e-6)
        envs.close()
    starts = []
    for seeds in ([5, 6, 7], [5, 6, 7], [6, 7, 8]):
        envs = GymnasiumEpisodes("CartPole-v1", 3, "float32")
        starts.append(envs.reset(seeds))
        envs.close()
    np.testing.assert_array_equal(starts[0], starts[1])
    assert np.abs(starts[0] - starts[2]).min() > 0
    with pytest.raises(ValueError, match="consecutive"):
        GymnasiumEpisodes("CartPole-v1", 3, "float32").reset([5, 9, 2])
    envs = GymnasiumEpisodes("CartPole-v1", 1, "float32")
    single = gym.make("CartPole-v1")
    first = envs.reset([3])
    np.testing.assert_allclose(first[0], single.reset(seed=3)[0], rtol=1e-6)
    steps = 0
    while True:  # always push left: the pole falls within a few dozen steps
        obs, reward, ended = envs.step(np.zeros(1, np.int64))
        expected, r, terminated, truncated, _ = single.step(0)
        np.testing.assert_allclose(obs[0], expected, rtol=1e-5)
        assert reward[0] == r and ended[0] == (terminated or truncated)
        steps += 1
        if ended[0]:
            break
    assert 5 < steps < 100
    after, reward, ended = envs.step(np.zeros(1, np.int64))
    assert not ended[0] and np.abs(after[0]).max() <= 0.05  # CartPole resets within +-0.05
    envs.close()


def test_a_drawn_gymnax_episode_ends_at_the_step_limit():
    cfg = Config(env_id="Breakout-MinAtar")
    envs = GymnaxEpisode(cfg)
    envs.params = envs.params.replace(max_steps_in_episode=3)
    obs = envs.reset([0])
    assert obs.shape == (1, 10, 10, 4) and envs.frame().shape == (240, 240, 3)
    ends = [bool(envs.step(np.array([0]))[2][0]) for _ in range(3)]
    assert ends == [False, False, True]


def test_the_host_loop_plays_each_env_to_its_first_end_and_keeps_only_live_steps():
    """Two envs whose episodes end after 2 and 4 steps: the loop runs 4 steps, passes the
    observations acted on and the live mask, and stops stepping nothing else."""
    ends_at = np.array([2, 4])
    seen = []

    def step(actions, alive):
        t = len(seen)
        seen.append((actions.copy(), alive.copy()))
        obs = np.full(2, t + 1.0)
        reward = np.array([1.0, 10.0]) * (t + 1)
        return obs, reward, (t + 1) == ends_at

    def keep(kept, t, obs, actions, reward, alive):
        return kept + [(t, obs.copy(), reward * alive)]

    kept = play_host(np.zeros(2), step, lambda obs, t: obs.astype(int) + 100, 2, keep, [])
    assert len(kept) == 4
    assert [t for t, _, _ in kept] == [0, 1, 2, 3]
    np.testing.assert_array_equal([o for _, o, _ in kept], [[0, 0], [1, 1], [2, 2], [3, 3]])
    np.testing.assert_array_equal(seen[0][0], [100, 100])  # the policy saw obs 0
    np.testing.assert_array_equal([a for _, a in seen], [[1, 1], [1, 1], [0, 1], [0, 1]])
    totals = sum(r for _, _, r in kept)
    np.testing.assert_array_equal(totals, [1 + 2, 10 + 20 + 30 + 40])


def test_a_run_on_gymnasiums_cartpole_is_described_by_its_family():
    info = resolve("CartPole-v1", "gymnasium")
    assert (info.family, info.obs_shape, info.num_actions) == ("gymnasium", (4,), 2)
    assert resolve("Breakout-MinAtar").obs_dtype == "bool"


@pytest.mark.parametrize("env_id,states", [("Taxi-v4", 500), ("FrozenLake-v1", 16),
                                           ("CliffWalking-v1", 48)])
def test_discrete_observations_are_one_hot(env_id, states):
    """A Discrete observation space reaches the agent as its one-hot vector (Gymnasium's
    FlattenObservation), in single envs and in the vector envs of both host paths."""
    info = resolve(env_id, "auto")
    assert info.obs_shape == (states,) and info.obs_dtype == "float32"
    raw = gym.make(env_id)
    state, _ = raw.reset(seed=4)
    obs, _ = make_gymnasium(env_id).reset(seed=4)
    assert obs.shape == (states,) and obs.sum() == 1 and obs[state] == 1
    cfg = Config(env_id=env_id, num_envs=2)
    episodes = family(info).episodes(cfg, info, 3)
    batch = episodes.reset([4, 5, 6])
    assert batch.shape == (3, states) and (batch.sum(axis=1) == 1).all()
    assert batch[0].argmax() == state

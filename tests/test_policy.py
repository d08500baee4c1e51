"""The model file: written at the end of training and by `deepq export`, read by
deepq.load_policy, whose jitted predict plays as Run.predict does in a user's own loop."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deepq
from deepq.errors import UserError
from deepq.presets import config_for
from deepq.run import Run
from tests.helpers import TINY, run_deepq


def _untrained_run(tmp_path, cfg) -> Run:
    """A Run of `cfg` with freshly initialised params for each seed (no training needed to
    compare two ways of acting)."""
    run = Run(tmp_path / "run", cfg, None)
    keys = jax.random.split(jax.random.PRNGKey(7), cfg.num_seeds)
    obs = jnp.zeros(run.info.obs_shape, run.info.obs_dtype)
    run.params = jax.vmap(lambda k: run.agent.init(k, obs).params)(keys)
    return run


@pytest.mark.parametrize("preset,algo", [("cartpole", None), ("rainbow", None),
                                         ("qrdqn", None), (None, "pqn"), (None, "reinforce")])
def test_the_model_file_acts_as_the_run(tmp_path, preset, algo):
    cfg = config_for("CartPole-v1", preset, algo, num_seeds=2)
    run = _untrained_run(tmp_path, cfg)
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (64, 4))) * 2
    for seed_index in (0, 1):
        policy = deepq.load_policy(run.export(tmp_path / f"p{seed_index}.msgpack", seed_index))
        assert policy.seed == cfg.seeds[seed_index] and policy.config == cfg
        key = jax.random.PRNGKey(3)
        want = run.predict(obs, seed_index=seed_index, key=key)
        np.testing.assert_array_equal(policy.predict(obs, key=key), want)
        assert policy.predict(obs[5], key=key) == run.predict(obs[5], seed_index=seed_index,
                                                              key=key)
        explore = policy.predict(obs, epsilon=1.0, key=jax.random.PRNGKey(4))
        assert set(np.unique(explore)) == {0, 1}


def test_training_writes_one_that_plays_in_a_users_gymnasium_loop(tmp_path):
    out = tmp_path / "run"
    run_deepq("train", "--out", str(out), *TINY, "--total-steps", "3000", "--no-artifacts",
              check=True)
    policy, run = deepq.load_policy(out / "policy.msgpack"), deepq.load(out)
    assert (out / "policy.msgpack").stat().st_size < 10_000  # no replay, no optimizer
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=11)
    done, steps = False, 0
    while not done:
        action = policy.predict(obs)
        assert isinstance(action, int) and action == int(run.predict(obs))
        obs, _, terminated, truncated, _ = env.step(action)
        done, steps = terminated or truncated, steps + 1
    assert steps > 5


def test_bad_model_files_and_observations(tmp_path):
    (tmp_path / "junk.msgpack").write_bytes(b"\x00\x01garbage")
    for path, needle in [(tmp_path / "junk.msgpack", "not a deepq model file"),
                         (tmp_path / "none.msgpack", "does not exist")]:
        with pytest.raises(UserError, match=needle):
            deepq.load_policy(path)
    run = _untrained_run(tmp_path, config_for("CartPole-v1", None, num_seeds=1))
    policy = deepq.load_policy(run.export(tmp_path / "p.msgpack"))
    with pytest.raises(UserError, match=r"obs has shape \(3,\)"):
        policy.predict(np.zeros(3))
    with pytest.raises(UserError, match="out of range"):
        run.export(tmp_path / "q.msgpack", seed_index=1)

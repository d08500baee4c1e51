"""Q-value traces: held-out states from a random policy, their average max-Q per chunk."""

import jax
import numpy as np
import pytest

from deepq.agents.dqn import make_agent
from deepq.config import Config
from deepq.envs import resolve
from deepq.qtrace import QTrace, collect_states, read_trace
from tests.helpers import TINY, run_deepq


def test_states_come_from_random_play_and_repeat_per_seed():
    cfg = Config(env_id="CartPole-v1")
    info = resolve("CartPole-v1", "auto")
    a = collect_states(cfg, info, 300, seed=5)
    b = collect_states(cfg, info, 300, seed=5)
    c = collect_states(cfg, info, 300, seed=6)
    assert a.shape == (300, 4) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Random play ends CartPole episodes after ~20 steps: 300 steps span many resets,
    # and every state lies inside the env's termination bounds (|x| <= 2.4, |theta| <= 0.21).
    near_start = np.all(np.abs(a) < 0.05, axis=1).sum()
    assert near_start >= 5, "the collection never reset its episodes"
    assert np.all(np.abs(a[:, 0]) <= 2.4 + 0.1) and np.all(np.abs(a[:, 2]) <= 0.21 + 0.05)


def test_host_env_states():
    cfg = Config(env_id="Acrobot-v1", backend="gymnasium")
    info = resolve("Acrobot-v1", "gymnasium")
    states = collect_states(cfg, info, 50, seed=0)
    assert states.shape == (50, 6)
    # Acrobot's observation is cos/sin of two angles and two velocities.
    np.testing.assert_allclose(states[:, 0] ** 2 + states[:, 1] ** 2, 1.0, atol=1e-5)


def test_trace_is_the_mean_of_max_q_per_seed(tmp_path):
    """Against a numpy forward pass of each seed's one-hidden-layer ReLU MLP."""
    cfg = Config(hidden_sizes=(8,))
    agent = make_agent(cfg, 2)
    states = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    params = jax.vmap(lambda k: agent.init(k, states[0]).params)(
        jax.random.split(jax.random.PRNGKey(1), 3))
    trace = QTrace(tmp_path, agent, states)
    got = trace.values(params)

    expected = []
    for s in range(3):
        p = jax.tree.map(lambda x, s=s: np.asarray(x[s]), params)["params"]
        hidden = np.maximum(states @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0.0)
        q = hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
        expected.append(q.max(axis=1).mean())
    np.testing.assert_allclose(got, expected, rtol=1e-5)

    trace.log([10, 11, 12], got, 500)
    rows = read_trace(tmp_path)
    assert list(rows["seed"]) == [10, 11, 12] and list(rows["env_step"]) == [500] * 3


@pytest.mark.e2e
def test_run_logs_the_trace_each_chunk(tmp_path):
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1500", "--seeds", "2",
              "--no-artifacts", "--set", "qtrace_states=64", check=True)
    rows = read_trace(run)
    assert list(rows["env_step"]) == [0, 0, 500, 500, 1000, 1000, 1500, 1500]
    assert list(rows["seed"]) == [0, 1] * 4
    assert np.load(run / "heldout_states.npy").shape == (64, 4)
    # Learning moves Q away from its initial values (rewards of 1 per step push it up).
    first, last = rows["avg_max_q"][:2], rows["avg_max_q"][-2:]
    assert np.all(last > first + 0.5)

    off = tmp_path / "off"
    run_deepq("train", "--out", str(off), *TINY, "--total-steps", "500", "--no-artifacts",
              "--set", "qtrace_states=0", check=True)
    assert not (off / "qtrace.csv").exists() and not (off / "heldout_states.npy").exists()

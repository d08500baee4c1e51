"""QR-DQN (Dabney et al. 2018): the quantile Huber loss against hand-computed values, the
agent's update against a numpy QR-DQN, and a run on every env family and both drivers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deepq
from deepq.agents import make_agent
from deepq.agents.qrdqn import quantile_huber_loss, quantile_midpoints
from deepq.config import Config
from deepq.replay import Batch
from tests.test_agent_updates import SMALL, mlp_q


def test_quantile_midpoints():
    np.testing.assert_allclose(quantile_midpoints(4), [0.125, 0.375, 0.625, 0.875])


@pytest.mark.parametrize("kappa,want", [(1.0, 0.90625), (2.0, 0.640625)])
def test_quantile_huber_loss_by_hand(kappa, want):
    """N = 2 (tau 1/4, 3/4), theta = (0, 1), targets (0.5, 3): u_0j = (0.5, 3), u_1j =
    (-0.5, 2). kappa = 1: L = (0.125, 2.5), (0.125, 1.5); weights |tau - 1{u<0}| = (1/4, 1/4),
    (1/4, 3/4); sum_i mean_j = 0.328125 + 0.578125. kappa = 2: L / kappa = (0.0625, 2),
    (0.0625, 1): 0.2578125 + 0.3828125."""
    got = quantile_huber_loss(jnp.array([[0.0, 1.0]]), jnp.array([[0.5, 3.0]]), kappa)
    assert float(got[0]) == pytest.approx(want, rel=1e-6)


def _numpy_quantile_loss(theta, target, kappa):
    """eq. 9-10 written out entry by entry."""
    n = len(theta)
    total = 0.0
    for i in range(n):
        tau = (2 * i + 1) / (2 * n)
        for j in range(len(target)):
            u = target[j] - theta[i]
            huber = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
            total += abs(tau - (u < 0)) * huber / kappa / len(target)
    return total


def test_quantile_huber_loss_matches_the_definition_on_random_quantiles():
    rng = np.random.default_rng(0)
    theta, target = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
    got = quantile_huber_loss(jnp.asarray(theta), jnp.asarray(target), 1.5)
    want = [_numpy_quantile_loss(theta[b], target[b], 1.5) for b in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("double", [False, True])
def test_agent_update_is_qr_dqn_by_hand(double):
    """The agent's loss: theta(s, a) [N] fitted to r + discount theta_target(s', a*), a* the
    argmax of the quantiles' mean (of the online network's with Double DQN), averaged over
    the batch; Q(s, a) is the mean of the quantiles."""
    N, A = 4, 3
    cfg = Config(algo="qrdqn", num_atoms=N, huber_delta=1.0, double_dqn=double,
                 learning_rate=0.1, **SMALL)
    agent = make_agent(cfg, A)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(4))
    state = state._replace(target_params=agent.init(jax.random.PRNGKey(1), jnp.zeros(4)).params)
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (12, 4)))
    next_obs = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (12, 4))) * 3
    action = np.arange(12) % A
    reward = np.linspace(-1.0, 2.0, 12)
    discount = np.where(np.arange(12) % 4 == 3, 0.0, 0.9)
    batch = Batch(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(reward, jnp.float32),
                  jnp.asarray(next_obs), jnp.asarray(discount, jnp.float32))

    theta = mlp_q(state.params, obs).reshape(12, A, N)
    theta_next = mlp_q(state.target_params, next_obs).reshape(12, A, N)
    selector = mlp_q(state.params, next_obs).reshape(12, A, N) if double else theta_next
    a_star = selector.mean(-1).argmax(1)
    want = np.mean([_numpy_quantile_loss(theta[b, action[b]],
                                         reward[b] + discount[b] * theta_next[b, a_star[b]],
                                         1.0) for b in range(12)])
    _, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(4))
    assert float(metrics["loss"]) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(agent.q_values(state.params, obs), theta.mean(-1), rtol=1e-5,
                               atol=1e-6)
    assert float(metrics["q_mean"]) == pytest.approx(theta.mean(-1).max(1).mean(), rel=1e-5)


def _tiny(env_id: str, **extra) -> Config:
    return deepq.config_for(env_id, "qrdqn", total_steps=600, learning_starts=200,
                            batch_size=16, buffer_size=600, chunk_steps=300, num_atoms=8,
                            eval_episodes=2, gif=False, qtrace_states=20, select_every=0,
                            num_seeds=2, **extra)


@pytest.mark.e2e
@pytest.mark.parametrize("env_id,extra,driver", [
    ("CartPole-v1", {}, "jitted"),
    ("CartPole-v1", {"backend": "gymnasium"}, "host"),
    ("Breakout-MinAtar", {}, "jitted"),
    ("ALE/Pong-v5", {"eval_max_frames": 400, "frame_resize": (42, 42), "network": "mlp",
                     "hidden_sizes": (16,)}, "host"),
])
def test_qrdqn_trains_on_every_env_family_and_driver(tmp_path, env_id, extra, driver):
    """A short run per env family: it trains (the loss finite), writes its checkpoint and
    Q trace, and the loaded run evaluates."""
    cfg = _tiny(env_id, **extra)
    run = deepq.train(cfg, tmp_path / "run", progress=False, artifacts=False)
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert f'"driver": "{driver}"' in summary
    assert (tmp_path / "run" / "qtrace.csv").exists()
    loaded = deepq.load(tmp_path / "run")
    assert loaded.config.algo == "qrdqn" and loaded.config.preset == "qrdqn"
    for got, want in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(run.params)):
        np.testing.assert_array_equal(got, want)
    result = loaded.evaluate(episodes=1)
    assert np.isfinite(result["mean"])

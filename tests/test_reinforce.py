"""REINFORCE end to end: the agent's update by hand, both drivers, resume, the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import checkpoint
from deepq.agents import make_agent
from deepq.agents.reinforce import EpisodeBatch, returns_to_fit
from deepq.config import PRESETS, Config, base_config
from deepq.report import read_metrics, running_reward
from tests.helpers import kill_after_first_checkpoint, run_deepq

QUICK = ["--algo", "reinforce", "--set", "hidden_sizes=32", "--set", "eval_episodes=5",
         "--set", "gif=false", "--quiet"]


def test_returns_reset_at_points_and_ignore_padding():
    # Two episodes side by side [T=4, B=2]; the second ended after 2 steps (padding after).
    reward = jnp.array([[0.0, 1.0], [1.0, -1.0], [0.0, 5.0], [-1.0, 7.0]])
    mask = jnp.array([[1, 1], [1, 1], [1, 0], [1, 0]], bool)
    cfg = Config(algo="reinforce", gamma=0.5, standardize_returns="none")
    got = returns_to_fit(cfg, reward, mask)
    # G_t = r_t + 0.5 G_(t+1) back from each episode's last real step.
    np.testing.assert_allclose(got[:, 0], [0.5 * 0.75, 1 + 0.5 * -0.5, 0 + 0.5 * -1, -1.0])
    np.testing.assert_allclose(got[:, 1], [1 - 0.5, -1.0, 0.0, 0.0])  # padding adds nothing
    # Karpathy's Pong reset: the sum restarts after every non-zero reward.
    pong = returns_to_fit(cfg.replace(reset_on_reward=True), reward, mask)
    np.testing.assert_allclose(pong[:, 0], [0.5, 1.0, -0.5, -1.0])
    np.testing.assert_allclose(pong[:, 1], [1.0, -1.0, 0.0, 0.0])
    batch = returns_to_fit(cfg.replace(reset_on_reward=True, standardize_returns="batch"),
                           reward, mask)
    real = np.array([0.5, 1.0, 1.0, -1.0, -0.5, -1.0])  # the real steps, row by row
    np.testing.assert_allclose(np.asarray(batch)[np.asarray(mask)],
                               (real - real.mean()) / real.std(), rtol=1e-5)
    per_episode = returns_to_fit(cfg.replace(reset_on_reward=True, standardize_returns="episode"),
                                 reward, mask)
    np.testing.assert_allclose(per_episode[:2, 1], [1.0, -1.0], rtol=1e-5)


def test_update_is_the_hand_computed_policy_gradient_step():
    """One plain SGD step of a Bernoulli policy (one hidden ReLU layer, no biases) equals
    params - lr * the policy gradient written out by hand (backprop as in pg-pong.py)."""
    cfg = Config(algo="reinforce", policy="bernoulli", hidden_sizes=(3,), use_bias=False,
                 optimizer="sgd", learning_rate=0.1, max_grad_norm=0.0, gamma=1.0,
                 standardize_returns="none")
    agent = make_agent(cfg, 2)
    obs = jnp.array([[[1.0, 0.0]], [[0.0, 2.0]]])  # [T=2, B=1, 2]
    batch = EpisodeBatch(obs, jnp.array([[1], [0]]), jnp.array([[0.0], [1.0]]),
                         jnp.ones((2, 1), bool))
    state = agent.init(jax.random.PRNGKey(0), obs[0, 0])
    p = state.params["params"]
    w1 = np.asarray(p["policy_0"]["kernel"])
    w2 = np.asarray(p["policy_out"]["kernel"])[:, 0]
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    h = np.maximum(x @ w1, 0.0)
    prob_up = 1 / (1 + np.exp(-(h @ w2)))
    adv = np.array([1.0, 1.0])  # gamma 1: G = [0 + 1, 1]
    dlogit = -adv * (np.array([1.0, 0.0]) - prob_up)  # d loss / d logit
    g_w2 = h.T @ dlogit
    g_w1 = x.T @ ((dlogit[:, None] * w2[None, :]) * (h > 0))
    new, _ = agent.update(state, batch, jax.random.PRNGKey(1))
    q = new.params["params"]
    np.testing.assert_allclose(q["policy_out"]["kernel"][:, 0], w2 - 0.1 * g_w2, rtol=1e-5)
    np.testing.assert_allclose(q["policy_0"]["kernel"], w1 - 0.1 * g_w1, rtol=1e-5, atol=1e-7)


def test_running_reward_by_hand():
    np.testing.assert_allclose(running_reward(np.array([-21.0, -19.0, -20.0])),
                               [-21.0, -20.98, -0.99 * 20.98 - 0.2])


def test_algo_reinforce_takes_the_reinforce_preset():
    assert base_config("CartPole-v1", None, "reinforce") == PRESETS["reinforce"].config()
    assert base_config("KarpathyPong-v0", None, "reinforce").policy == "bernoulli"
    assert base_config("KarpathyPong-v0", None).algo == "reinforce"


def test_jitted_driver_solves_cartpole(tmp_path):
    """The `reinforce` preset on gymnax CartPole, seed 0: 1,000 episodes, then 100 episodes
    on Gymnasium's CartPole-v1 average at least 475."""
    proc = run_deepq("train", "--algo", "reinforce", "--out", str(tmp_path / "r"), "--quiet",
                     "--set", "gif=false", check=True)
    ev = json.loads((tmp_path / "r" / "eval.json").read_text())
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["driver"] == "jitted" and summary["episodes"] == [1000], proc.stdout
    assert ev["episodes"] == 100 and ev["mean"] >= 475, ev["mean"]
    m = read_metrics(tmp_path / "r")
    assert np.array_equal(m["episode"], np.arange(1, 1001))
    assert np.all(np.diff(m["env_step"]) == m["length"][1:])  # true env steps, in order
    assert m["env_step"][-1] == summary["steps_per_seed"]


@pytest.mark.parametrize("backend,episodes", [("gymnax", 600), ("gymnasium", 300)])
def test_killed_run_resumes_bit_identical(tmp_path, backend, episodes):
    args = [*QUICK, "--backend", backend, "--seeds", "2", "--set", f"total_episodes={episodes}",
            "--set", "checkpoint_every=100", "--no-artifacts"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_deepq("train", "--out", str(straight), *args, check=True)
    kept = kill_after_first_checkpoint(killed, *args)
    assert kept and int(kept[-1].stem.split("_")[1]) < episodes, "no cut before the end"
    run_deepq("train", "--resume", str(killed), "--quiet", "--no-artifacts", check=True)
    a = jax.tree.leaves(checkpoint.read_raw(checkpoint.latest(straight))["state"])
    b = jax.tree.leaves(checkpoint.read_raw(checkpoint.latest(killed))["state"])
    assert all(np.array_equal(x, y) for x, y in zip(a, b))

    def rows(run):  # every episode logged once, as if never cut (timing column aside)
        return [",".join(x.split(",")[:-1]) for x in (run / "metrics.csv").read_text().split()]

    assert rows(straight) == rows(killed)


def test_host_driver_plays_whole_episodes_on_gymnasium(tmp_path):
    run_deepq("train", "--out", str(tmp_path / "h"), *QUICK, "--backend", "gymnasium",
              "--set", "total_episodes=40", check=True)
    m = read_metrics(tmp_path / "h")
    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert summary["driver"] == "host" and len(m["return"]) == 40
    assert np.array_equal(m["return"], m["length"])  # CartPole: +1 per step
    assert (tmp_path / "h" / "eval.json").exists() and (tmp_path / "h" / "curves.png").exists()


def test_karpathy_pong_trains_end_to_end(tmp_path):
    """Two real Pong games, Karpathy's preprocessing and Bernoulli policy, one update."""
    run_deepq("train", "--env", "KarpathyPong-v0", "--out", str(tmp_path / "p"), "--quiet",
              "--set", "total_episodes=2", "--set", "batch_episodes=2", "--no-artifacts",
              check=True, timeout=600)
    m = read_metrics(tmp_path / "p")
    assert len(m["return"]) == 2 and np.all(np.abs(m["return"]) <= 21)
    assert np.all(m["length"] > 500)  # a game to 21 points lasts hundreds of agent steps
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg["preset"] == "karpathy-pong" and cfg["config"]["policy"] == "bernoulli"


def test_env_workers_change_nothing_but_the_wall_time(tmp_path):
    """The host driver's envs stepped in 2 worker processes give the very same run."""
    for workers in (0, 2):
        run_deepq("train", "--out", str(tmp_path / f"w{workers}"), *QUICK, "--backend",
                  "gymnasium", "--set", "total_episodes=20", "--set", "batch_episodes=5",
                  "--set", f"env_workers={workers}", "--no-artifacts", check=True)
    a = jax.tree.leaves(checkpoint.read_raw(checkpoint.latest(tmp_path / "w0"))["state"])
    b = jax.tree.leaves(checkpoint.read_raw(checkpoint.latest(tmp_path / "w2"))["state"])
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    m0, m2 = read_metrics(tmp_path / "w0"), read_metrics(tmp_path / "w2")
    assert np.array_equal(m0["return"], m2["return"]) and len(m0["return"]) == 20


def test_sparse_rows_and_the_gathering_layer_match_the_dense_product():
    from deepq.networks import PolicyMLP, SparseRows, sparse_rows

    x = np.array([[0, 1, 0, -1], [0, 0, 0, 0], [1, 1, 1, 1]], np.int8)
    rows = sparse_rows(x, min_k=4)
    np.testing.assert_array_equal(rows.index, [[1, 3, 4, 4], [4, 4, 4, 4], [0, 1, 2, 3]])
    np.testing.assert_array_equal(rows.value, [[1, -1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    assert sparse_rows(np.ones((2, 300), np.int8)).index.shape == (2, 512)  # K grows to fit
    # Difference-frame-like inputs [T=50, B=3, 6400]: same logits, values and gradients.
    rng = np.random.default_rng(0)
    frames = (rng.random((50, 3, 6400)) < 0.004) * rng.choice([-1, 1], (50, 3, 6400))
    frames = frames.astype(np.int8).reshape(150, 6400)
    net = PolicyMLP((16,), 1, "relu", False, True)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 6400), jnp.int8))
    sparse = SparseRows(*map(jnp.asarray, sparse_rows(frames)))

    def total(p, inputs):
        logits, value = net.apply(p, inputs)
        return jnp.sum(logits ** 2) + jnp.sum(jnp.sin(value))

    np.testing.assert_allclose(total(params, sparse), total(params, jnp.asarray(frames)),
                               rtol=1e-5)
    dense_grad = jax.grad(total)(params, jnp.asarray(frames))
    sparse_grad = jax.grad(total)(params, sparse)
    for a, b in zip(jax.tree.leaves(dense_grad), jax.tree.leaves(sparse_grad)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_resume_extends_total_episodes(tmp_path):
    run = tmp_path / "r"
    run_deepq("train", "--out", str(run), *QUICK, "--set", "total_episodes=30",
              "--no-artifacts", check=True)
    run_deepq("train", "--resume", str(run), "--total-episodes", "50", "--quiet",
              "--no-artifacts", check=True)
    m = read_metrics(run)
    assert np.array_equal(m["episode"], np.arange(1, 51))
    assert json.loads((run / "config.json").read_text())["config"]["total_episodes"] == 50
    # --set total_episodes=N extends it too (it used to be accepted and ignored).
    run_deepq("train", "--resume", str(run), "--set", "total_episodes=60", "--quiet",
              "--no-artifacts", check=True)
    assert np.array_equal(read_metrics(run)["episode"], np.arange(1, 61))
    proc = run_deepq("train", "--resume", str(run), "--set", "gamma=0.9", "--quiet")
    assert proc.returncode == 2 and "--total-episodes" in proc.stderr


def test_compare_pools_reinforce_runs_over_episodes(tmp_path):
    for first in (0, 2):
        run_deepq("train", "--out", str(tmp_path / f"pg{first}"), *QUICK, "--seed", str(first),
                  "--seeds", "2", "--set", "total_episodes=40", check=True)
    proc = run_deepq("compare", str(tmp_path / "pg0"), str(tmp_path / "pg2"), "--labels",
                     "pg,pg", "--out", str(tmp_path / "cmp"), "--reps", "200", "--points", "4",
                     check=True)
    row = json.loads((tmp_path / "cmp" / "compare.json").read_text())["envs"]["CartPole-v1"][0]
    assert row["seeds"] == [0, 1, 2, 3] and row["unit"] == "episodes"
    assert row["episodes_per_seed"] == 40 and row["curve_steps"] == [10.0, 20.0, 30.0, 40.0]
    assert "40 episodes" in proc.stdout
    # The curve's first point: the IQM over the 4 seeds of their episodes 1-10's mean return.
    firsts = []
    for run, seeds in (("pg0", (0, 1)), ("pg2", (2, 3))):
        m = read_metrics(tmp_path / run)
        firsts += [m["return"][(m["seed"] == s) & (m["episode"] <= 10)].mean() for s in seeds]
    middle = np.sort(firsts)[1:3]  # the IQM of 4 values: the mean of the middle two
    assert row["curve_iqm"][0] == pytest.approx(middle.mean())
    dqn = tmp_path / "dqn"
    run_deepq("train", "--out", str(dqn), "--set", "hidden_sizes=32", "--total-steps", "2000",
              "--set", "learning_starts=200", "--set", "select_every=0", "--set", "gif=false",
              "--set", "eval_episodes=5", "--quiet", check=True)
    mixed = run_deepq("compare", str(tmp_path / "pg0"), str(dqn), "--out", str(tmp_path / "m"))
    assert mixed.returncode == 2 and "compare them separately" in mixed.stderr
    assert len(mixed.stderr.strip().splitlines()) == 1

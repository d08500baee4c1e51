"""REINFORCE end to end: the agent's update by hand, both drivers, resume, the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import checkpoint
from deepq.agents import make_agent
from deepq.agents.reinforce import EpisodeBatch, returns_to_fit
from deepq.config import Config
from deepq.presets import PRESETS, base_config
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


def _returns_by_hand(rewards, gamma):
    """G_t = r_t + gamma G_(t+1) over one episode's rewards, back from its last step."""
    out, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return np.array(out[::-1])


# Three episodes of lengths 5, 3 and 4 side by side [T=5, B=3]; padding rewards that the
# returns must ignore.
EPISODE_REWARDS = [[1.0, -2.0, 0.5, 3.0, -1.0], [2.0, 4.0, -3.0], [-1.0, 0.0, 2.5, 1.5]]


def _padded(rows, fill):
    return np.array([r + [fill] * (5 - len(r)) for r in rows], np.float32).T  # [T, B]


def test_return_standardisation_per_episode_and_over_the_batch():
    """standardize_returns=episode: (G - mean) / std over each episode's own steps (a column
    of [T, B], as pg-pong.py standardises each finished game); batch: over all real steps."""
    reward = jnp.asarray(_padded(EPISODE_REWARDS, 7.0))
    mask = jnp.asarray(_padded([[1.0] * len(r) for r in EPISODE_REWARDS], 0.0) > 0)
    cfg = Config(algo="reinforce", gamma=0.9)
    returns = [_returns_by_hand(r, 0.9) for r in EPISODE_REWARDS]

    per_episode = np.asarray(returns_to_fit(cfg.replace(standardize_returns="episode"),
                                            reward, mask))
    for b, g in enumerate(returns):
        np.testing.assert_allclose(per_episode[:len(g), b], (g - g.mean()) / g.std(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(per_episode[len(g):, b], 0.0)

    batch = np.asarray(returns_to_fit(cfg.replace(standardize_returns="batch"), reward, mask))
    every = np.concatenate(returns)
    for b, g in enumerate(returns):
        np.testing.assert_allclose(batch[:len(g), b], (g - every.mean()) / every.std(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(batch[len(g):, b], 0.0)


def test_update_with_a_baseline_is_the_hand_written_policy_gradient_step():
    """REINFORCE with a learned baseline (Williams 1992, eq. 11 with b = V(s)): one plain SGD
    step on  -sum_t (G_t - V(s_t)) log pi(a_t | s_t)  +  c/2 sum_t (V(s_t) - G_t)^2,
    the advantage held constant in the policy term, G the batch-standardised returns. The
    loss is written out here from the parameter arrays (two tanh MLPs with biases)."""
    lr, coef, gamma = 0.05, 0.7, 0.9
    cfg = Config(algo="reinforce", policy="softmax", hidden_sizes=(4,), activation="tanh",
                 baseline=True, baseline_coef=coef, optimizer="sgd", learning_rate=lr,
                 max_grad_norm=0.0, gamma=gamma, standardize_returns="batch")
    agent = make_agent(cfg, 3)
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(5, 3, 2)).astype(np.float32)  # padding rows too: masked out
    action = np.array([[0, 2, 1], [1, 0, 2], [2, 1, 0], [0, 2, 1], [1, 0, 2]], np.int32)
    reward = _padded(EPISODE_REWARDS, 7.0)
    mask = _padded([[1.0] * len(r) for r in EPISODE_REWARDS], 0.0) > 0
    batch = EpisodeBatch(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(reward),
                         jnp.asarray(mask))
    state = agent.init(jax.random.PRNGKey(0), jnp.asarray(obs[0, 0]))
    # Random parameters, the value net's output bias at 1.5: V is of the order of the
    # standardised returns, so adding it instead of subtracting it changes every step.
    params = jax.tree.map(lambda p: rng.normal(scale=0.8, size=p.shape).astype(np.float32),
                          state.params)
    params["params"]["value_out"]["bias"] = np.array([1.5], np.float32)
    state = state._replace(params=jax.tree.map(jnp.asarray, params))  # plain SGD: no state

    returns = [_returns_by_hand(r, gamma) for r in EPISODE_REWARDS]
    every = np.concatenate(returns)
    g = np.zeros((5, 3))
    for b, ret in enumerate(returns):
        g[:len(ret), b] = (ret - every.mean()) / every.std()
    x, a = obs[mask], action[mask]  # the 12 real steps
    g_real = g[mask]

    def mlp(p, name, inputs):
        h = jnp.tanh(inputs @ p[f"{name}_0"]["kernel"] + p[f"{name}_0"]["bias"])
        return h @ p[f"{name}_out"]["kernel"] + p[f"{name}_out"]["bias"]

    def loss(p):
        p = p["params"]
        logits, v = mlp(p, "policy", x), mlp(p, "value", x)[:, 0]
        logpi = logits[jnp.arange(len(a)), a] - jax.scipy.special.logsumexp(logits, axis=1)
        adv = jax.lax.stop_gradient(g_real - v)
        return -jnp.sum(adv * logpi) + coef * 0.5 * jnp.sum((v - g_real) ** 2)

    v_real = np.asarray(mlp(params["params"], "value", x)[:, 0])
    assert np.abs(v_real).mean() > 0.5  # the baseline moves the advantages by a lot
    grads = jax.grad(loss)(jax.tree.map(jnp.asarray, params))
    new, info = agent.update(state, batch, jax.random.PRNGKey(1))
    for (path, got), want, grad in zip(jax.tree_util.tree_leaves_with_path(new.params),
                                       jax.tree.leaves(params), jax.tree.leaves(grads)):
        np.testing.assert_allclose(got, want - lr * np.asarray(grad), rtol=1e-4, atol=1e-6,
                                   err_msg=jax.tree_util.keystr(path))
    # The logged loss: the policy term per real step.
    logits = np.asarray(mlp(params["params"], "policy", x))
    logpi = logits[np.arange(len(a)), a] - np.log(np.exp(logits).sum(axis=1))
    assert float(info["loss"]) == pytest.approx(-np.sum((g_real - v_real) * logpi) / 12,
                                                rel=1e-4)


def test_running_reward_by_hand():
    np.testing.assert_allclose(running_reward(np.array([-21.0, -19.0, -20.0])),
                               [-21.0, -20.98, -0.99 * 20.98 - 0.2])


def test_algo_reinforce_takes_the_reinforce_preset():
    assert base_config("CartPole-v1", None, "reinforce") == PRESETS["reinforce"].config()
    assert base_config("KarpathyPong-v0", None, "reinforce").policy == "bernoulli"
    assert base_config("KarpathyPong-v0", None).algo == "reinforce"


@pytest.mark.e2e
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
    assert summary["steps_per_seed"] == [m["env_step"][-1]]


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_host_driver_plays_whole_episodes_on_gymnasium(tmp_path):
    run_deepq("train", "--out", str(tmp_path / "h"), *QUICK, "--backend", "gymnasium",
              "--set", "total_episodes=40", check=True)
    m = read_metrics(tmp_path / "h")
    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert summary["driver"] == "host" and len(m["return"]) == 40
    assert np.array_equal(m["return"], m["length"])  # CartPole: +1 per step
    assert (tmp_path / "h" / "eval.json").exists() and (tmp_path / "h" / "curves.png").exists()


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
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

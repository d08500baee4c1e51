"""PQN (agents/pqn.py, drivers/rollout.py): Q(lambda) returns and the update by hand, and
runs through the command line that train, resume exactly, evaluate and record."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deepq
from deepq import checkpoint
from deepq.agents import pqn
from deepq.errors import UserError
from deepq.presets import config_for
from tests.helpers import kill_after_first_checkpoint, run_deepq

GAMMA, LAM = 0.9, 0.5


def test_lambda_returns_by_hand_across_a_terminal_a_truncation_and_the_rollouts_end():
    """Three envs, four steps. Env 0's episode is terminal at t=1 (a new one starts at t=2);
    env 1's is truncated by a time limit at t=2 (bootstrapped from its final observation,
    then cut); env 2's is terminal at the rollout's last step; envs 0 and 1 run on past the
    rollout's end (bootstrapped there)."""
    reward = np.array([[1.0, 0.5, 0], [2.0, 0.0, 0], [0.0, 1.0, 0], [1.0, 2.0, 1]], np.float32)
    terminated = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]], np.float32)
    ended = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    next_q = np.array([[10.0, 4.0, 4], [99.0, 6.0, 4], [3.0, 8.0, 4], [5.0, 7.0, 4]],
                      np.float32)
    # env 0, backwards: t=3 is the rollout's end: 1 + 0.9 * 5 = 5.5
    #   t=2: 0 + 0.9 * (0.5 * 3 + 0.5 * 5.5) = 3.825
    #   t=1: terminal: 2 (its next_q of 99 never counts)
    #   t=0: 1 + 0.9 * (0.5 * 10 + 0.5 * 2) = 6.4
    # env 1: t=3: 2 + 0.9 * 7 = 8.3
    #   t=2: truncated: 1 + 0.9 * 8 = 8.2 (its final observation's value, not t=3's return)
    #   t=1: 0 + 0.9 * (0.5 * 6 + 0.5 * 8.2) = 6.39
    #   t=0: 0.5 + 0.9 * (0.5 * 4 + 0.5 * 6.39) = 5.1755
    # env 2: t=3 terminal: 1; t=2: 0.9 * (2 + 0.5) = 2.25; t=1: 0.9 * (2 + 1.125) = 2.8125;
    #   t=0: 0.9 * (2 + 1.40625) = 3.065625
    want = np.array([[6.4, 5.1755, 3.065625], [2.0, 6.39, 2.8125], [3.825, 8.2, 2.25],
                     [5.5, 8.3, 1.0]])
    got = pqn.lambda_returns(jnp.asarray(reward), jnp.asarray(terminated), jnp.asarray(ended),
                             jnp.asarray(next_q), GAMMA, LAM)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_lambda_zero_and_one_are_one_step_and_monte_carlo_returns():
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(5, 3)).astype(np.float32)
    next_q = rng.normal(size=(5, 3)).astype(np.float32)
    none = np.zeros((5, 3), np.float32)
    one_step = pqn.lambda_returns(reward, none, none.astype(bool), next_q, GAMMA, 0.0)
    np.testing.assert_allclose(one_step, reward + GAMMA * next_q, rtol=1e-6)
    full = pqn.lambda_returns(reward, none, none.astype(bool), next_q, GAMMA, 1.0)
    discounts = GAMMA ** np.arange(5)
    mc0 = (discounts[:, None] * reward).sum(axis=0) + GAMMA ** 5 * next_q[-1]
    np.testing.assert_allclose(full[0], mc0, rtol=1e-5)


def _tiny_agent(**fields):
    cfg = config_for("CartPole-v1", "pqn-cartpole", hidden_sizes=(3,), layer_norm=False,
                     optimizer="sgd", learning_rate=0.1, lr_schedule="constant",
                     max_grad_norm=0.0, num_envs=2, rollout_steps=2, **fields)
    return cfg, pqn.make_agent(cfg, 2)


def test_one_update_is_sgd_on_half_the_mean_squared_error_by_hand():
    """One epoch of one minibatch with SGD: the output layer moves by -lr times the
    gradient of 0.5 mean_i (Q(s_i, a_i) - G_i)^2, computed here in numpy from the params;
    a zero-weight step (an ALE reset step) counts for nothing."""
    cfg, agent = _tiny_agent(num_epochs=1, num_minibatches=1)
    state = agent.init(jax.random.PRNGKey(3), jnp.zeros(4))
    p = jax.tree.map(np.asarray, state.params["params"])
    obs = np.array([[0.1, -0.2, 0.3, 0.4], [1.0, 0.5, -0.5, 0.2], [0.3, 0.3, 0.3, 0.3],
                    [-1.0, 0.0, 0.2, 0.1]], np.float32)
    action = np.array([0, 1, 1, 0])
    target = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    weight = np.array([1.0, 1.0, 1.0, 0.0], np.float32)
    hidden = np.maximum(obs @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0.0)
    q = hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    err = (q[np.arange(4), action] - target) * weight / weight.sum()
    grad_w = np.zeros((3, 2))
    grad_b = np.zeros(2)
    for i in range(4):
        grad_w[:, action[i]] += err[i] * hidden[i]
        grad_b[action[i]] += err[i]
    batch = pqn.Rollout(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(target),
                        jnp.asarray(weight))
    new, metrics = agent.update(state, batch, jax.random.PRNGKey(0))
    np.testing.assert_allclose(new.params["params"]["Dense_1"]["kernel"],
                               p["Dense_1"]["kernel"] - 0.1 * grad_w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(new.params["params"]["Dense_1"]["bias"],
                               p["Dense_1"]["bias"] - 0.1 * grad_b, rtol=1e-5, atol=1e-7)
    want_loss = 0.5 * (((q[np.arange(4), action] - target) ** 2) * weight).sum() / 3
    assert float(metrics["loss"]) == pytest.approx(want_loss, rel=1e-5)
    assert int(new.updates) == 1


def test_epochs_and_minibatches_each_take_an_update_on_a_shuffled_part():
    """2 epochs x 2 minibatches: four SGD steps, each on half the steps, every step used
    once per epoch (SGD on each minibatch in turn, reproduced here with the same shuffles)."""
    cfg, agent = _tiny_agent(num_epochs=2, num_minibatches=2)
    _, one = _tiny_agent(num_epochs=1, num_minibatches=1)
    state = agent.init(jax.random.PRNGKey(1), jnp.zeros(4))
    rng = np.random.default_rng(2)
    batch = pqn.Rollout(jnp.asarray(rng.normal(size=(4, 4)), jnp.float32),
                        jnp.asarray([1, 0, 1, 1]), jnp.asarray(rng.normal(size=4), jnp.float32),
                        jnp.ones(4))
    key = jax.random.PRNGKey(9)
    new, _ = agent.update(state, batch, key)
    expected = state
    for k in jax.random.split(key, 2):
        order = np.asarray(jax.random.permutation(k, 4))
        for part in (order[:2], order[2:]):
            minibatch = pqn.Rollout(*(x[part] for x in batch))
            expected, _ = one.update(expected, minibatch, key)
    assert int(new.updates) == 4
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_pqn_refuses_what_it_cannot_use():
    with pytest.raises(UserError, match="does not divide"):
        config_for("CartPole-v1", "pqn-cartpole", num_minibatches=7)
    with pytest.raises(UserError, match="q_lambda"):
        config_for("CartPole-v1", "pqn-cartpole", q_lambda=1.5)
    with pytest.raises(UserError, match="n_step"):
        config_for("CartPole-v1", "pqn-cartpole", n_step=3)
    assert config_for("Breakout-MinAtar", algo="pqn").preset == "pqn-minatar"
    assert config_for("Acrobot-v1", algo="pqn").preset == "pqn-cartpole"


SHORT = ["--algo", "pqn", "--env", "CartPole-v1", "--quiet", "--set", "num_envs=8",
         "--set", "rollout_steps=16", "--set", "num_minibatches=4", "--set", "hidden_sizes=32",
         "--set", "select_every=0", "--set", "eval_episodes=3", "--set", "qtrace_states=20"]


@pytest.mark.e2e
def test_a_killed_pqn_run_resumes_bit_identical_and_its_run_evaluates_and_records(tmp_path):
    """The run lasts whole rollouts (1000 steps of 8 x 16 -> 1024); a SIGKILL after its
    first checkpoint and a resume end where the uninterrupted run ends."""
    args = [*SHORT, "--total-steps", "20000", "--set", "checkpoint_every=128",
            "--set", "chunk_steps=128", "--no-artifacts"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_deepq("train", "--out", str(straight), *args, check=True)
    kept = kill_after_first_checkpoint(killed, *args)
    assert kept and int(kept[-1].stem.split("_")[1]) < 20096
    run_deepq("train", "--resume", str(killed), "--quiet", "--no-artifacts", check=True)
    a = [np.asarray(x) for x in jax.tree.leaves(checkpoint.read_raw(
        checkpoint.latest(straight))["state"])]
    b = [np.asarray(x) for x in jax.tree.leaves(checkpoint.read_raw(
        checkpoint.latest(killed))["state"])]
    assert int(checkpoint.latest(straight).stem.split("_")[1]) == 20096
    assert all(np.array_equal(x, y) for x, y in zip(a, b))

    run = tmp_path / "short"
    run_deepq("train", "--out", str(run), *SHORT, "--total-steps", "1000", check=True)
    assert int(checkpoint.latest(run).stem.split("_")[1]) == 1024
    out = run_deepq("eval", str(run), "--episodes", "2", check=True)
    assert "mean" in out.stdout
    run_deepq("record", str(run), "--out", str(tmp_path / "ep.gif"), check=True)
    assert (tmp_path / "ep.gif").stat().st_size > 1000


@pytest.mark.e2e
@pytest.mark.parametrize("env_id,extra,driver", [
    ("CartPole-v1", {"backend": "gymnasium"}, "host"),
    ("Breakout-MinAtar", {}, "jitted"),
    ("ALE/Pong-v5", {"eval_max_frames": 400, "frame_resize": (42, 42), "network": "mlp",
                     "hidden_sizes": (16,)}, "host"),
])
def test_pqn_trains_on_every_env_family_and_driver(tmp_path, env_id, extra, driver):
    """Two rollouts per env family: the loss is finite, the checkpoint holds the run's whole
    rollouts, and the loaded run evaluates."""
    cfg = config_for(env_id, algo="pqn", total_steps=200, num_envs=8, rollout_steps=16,
                     num_minibatches=4, eval_episodes=1, gif=False, qtrace_states=10,
                     select_every=0, num_seeds=2, **extra)
    run = deepq.train(cfg, tmp_path / "run", progress=False, artifacts=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["driver"] == driver and summary["steps_per_seed"] == [256, 256]
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    assert all(np.isfinite(float(r.split(",")[6])) for r in rows if int(r.split(",")[1]) > 128)
    loaded = deepq.load(tmp_path / "run")
    for got, want in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(run.params)):
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(loaded.evaluate(episodes=1)["mean"])


def _mlp_q(params, obs):
    """Q(s, .) of the one-hidden-layer MLP without LayerNorm, in numpy."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params["params"])
    h = np.maximum(np.asarray(obs, np.float64) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"],
                   0.0)
    return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]


def test_the_agent_acts_greedily_or_at_random_and_reports_its_q_values():
    """q_values is the network's Q(s, .); act takes argmax_a Q(s, a) at epsilon 0 and a
    uniform action at epsilon 1 (the three actions all drawn, not only the greedy one)."""
    agent3 = pqn.make_agent(config_for("CartPole-v1", "pqn-cartpole", hidden_sizes=(3,),
                                       layer_norm=False), 3)
    state = agent3.init(jax.random.PRNGKey(4), jnp.zeros(4))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (64, 4))) * 3
    q = _mlp_q(state.params, obs)
    np.testing.assert_allclose(agent3.q_values(state.params, jnp.asarray(obs)), q, rtol=1e-5,
                               atol=1e-6)
    assert len(set(q.argmax(axis=1).tolist())) > 1  # the greedy action varies by row
    greedy = agent3.act(state.params, jnp.asarray(obs), jax.random.PRNGKey(0), 0.0)
    np.testing.assert_array_equal(greedy, q.argmax(axis=1))
    uniform = np.asarray(agent3.act(state.params, jnp.asarray(obs), jax.random.PRNGKey(1), 1.0))
    assert set(uniform.tolist()) == {0, 1, 2} and (uniform != q.argmax(axis=1)).mean() > 0.4
    assert greedy.shape == (64,)


def test_q_mean_is_the_batch_mean_of_the_greedy_q_and_one_sample_is_its_own_mean():
    """The update reports q_mean = mean_i max_a Q(s_i, a) before it; with one weighted
    sample (the rest weighted out) the loss is that sample's 0.5 (Q - G)^2."""
    cfg, _ = _tiny_agent(num_epochs=1, num_minibatches=1)
    agent = pqn.make_agent(cfg, 3)
    state = agent.init(jax.random.PRNGKey(7), jnp.zeros(4))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(8), (4, 4))) * np.array(
        [[0.2], [1.0], [2.0], [4.0]])
    q = _mlp_q(state.params, obs)
    want = q.max(axis=1).mean()
    for wrong in (q.max(), q.max(axis=0).mean(), q.mean()):
        assert not np.isclose(want, wrong, rtol=1e-3)
    action = np.array([2, 0, 1, 1])
    batch = pqn.Rollout(jnp.asarray(obs, jnp.float32), jnp.asarray(action),
                        jnp.asarray([1.0, 2.0, 3.0, 4.0]), jnp.asarray([0.0, 1.0, 0.0, 0.0]))
    _, metrics = agent.update(state, batch, jax.random.PRNGKey(0))
    assert float(metrics["q_mean"]) == pytest.approx(want, rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(0.5 * (q[1, 0] - 2.0) ** 2, rel=1e-5)


def test_the_network_and_optimizer_follow_the_config():
    """layer_norm adds a LayerNorm per hidden layer, weight_init=torch gives non-zero
    biases, RAdam keeps moments shaped like the params, the counter is int32."""
    cfg = config_for("CartPole-v1", "pqn-cartpole", hidden_sizes=(8, 8), weight_init="torch")
    agent = pqn.make_agent(cfg, 2)
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(4))
    names = set(state.params["params"])
    assert {"LayerNorm_0", "LayerNorm_1"} <= names
    assert np.abs(np.asarray(state.params["params"]["Dense_0"]["bias"])).min() > 0
    shapes = {x.shape for x in jax.tree.leaves(state.params)}
    moments = [x for x in jax.tree.leaves(state.opt_state) if x.shape in shapes and x.ndim]
    assert len(moments) >= 2 * len(jax.tree.leaves(state.params))  # mu and nu
    assert state.updates.dtype == jnp.int32
    plain = pqn.make_agent(cfg.replace(layer_norm=False, weight_init="lecun_normal"), 2)
    params = plain.init(jax.random.PRNGKey(0), jnp.zeros(4)).params["params"]
    assert not any(name.startswith("LayerNorm") for name in params)
    assert float(np.abs(np.asarray(params["Dense_0"]["bias"])).max()) == 0.0


def _moves(agent, batch, calls: int) -> list[float]:
    """The largest parameter change of each of `calls` consecutive updates on `batch`."""
    state = agent.init(jax.random.PRNGKey(0), jnp.zeros(4))
    moved = []
    for i in range(calls):
        new, _ = agent.update(state, batch, jax.random.PRNGKey(i))
        moved.append(max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                         for a, b in zip(jax.tree.leaves(new.params),
                                         jax.tree.leaves(state.params))))
        state = new
    return moved


def test_the_runs_rollouts_and_the_learning_rate_horizon():
    """1,000 steps of 8 envs x 16 steps: ceil(1000 / 128) = 8 rollouts of 2 x 4 = 8
    updates each; a linear lr reaches 0 after those 64 updates (the 64th still moves)."""
    cfg = config_for("CartPole-v1", "pqn-cartpole", total_steps=1000, num_envs=8,
                     rollout_steps=16, num_epochs=2, num_minibatches=4)
    assert pqn.rollouts(cfg) == 8 and type(pqn.rollouts(cfg)) is int
    assert pqn.updates_per_rollout(cfg) == 8
    tiny = cfg.replace(hidden_sizes=(3,), layer_norm=False, optimizer="sgd",
                       learning_rate=0.5, max_grad_norm=0.0, num_epochs=1, num_minibatches=1,
                       total_steps=4 * 128)  # 4 rollouts x 1 update
    batch = pqn.Rollout(jnp.ones((2, 4)), jnp.array([0, 1]), jnp.array([3.0, -2.0]),
                        jnp.ones(2))
    moved = _moves(pqn.make_agent(tiny, 2), batch, 5)
    assert moved[3] > 1e-4 and moved[4] < 1e-7  # lr 0 after 4 updates, to rounding
    # 2 rollouts x 2 minibatches: the horizon is their product, 4 updates
    moved = _moves(pqn.make_agent(tiny.replace(num_minibatches=2, total_steps=2 * 128), 2),
                   batch, 3)
    assert moved[1] > 1e-4 and moved[2] < 1e-7


def test_a_resumed_atari_run_restarts_its_games_at_staggered_steps():
    """Without sticky actions or no-op starts, at epsilon 0, restarted Pong games play in
    lockstep; the resume's stagger restarts env e at step r_e of its own (a generator seeded
    by seed and iteration) and counts its game from there."""
    from deepq.drivers import make_driver
    from deepq.drivers.rollout import AtariRolloutEnvs
    from deepq.envs import seeds

    cfg = config_for("ALE/Pong-v5", algo="pqn", num_envs=8, rollout_steps=16, num_minibatches=4,
                     frame_resize=(42, 42), network="mlp", hidden_sizes=(16,), noop_max=0,
                     epsilon_end=0.0, total_steps=4096, select_every=0, gif=False)
    driver = make_driver(cfg)
    carry, it, steps = driver.initial_state().carry, 4096, 300  # past epsilon's decay: greedy
    env_seeds = seeds.host_training(cfg.seeds, 8, it)

    def distinct(obs):
        return len({o.tobytes() for o in obs})

    envs = AtariRolloutEnvs(cfg, driver.info)
    try:
        obs = envs.reset(env_seeds)
        for _ in range(steps):
            actions, _, carry = driver._act(carry, obs[None], jnp.int32(it))
            obs = envs.step(obs, np.asarray(actions).reshape(8)).next_obs
        assert distinct(obs) == 1  # eight copies of one game

        obs = envs.reset(env_seeds)
        ep_ret, ep_len = np.zeros((1, 8), np.float32), np.zeros((1, 8), np.int32)
        obs, carry = driver.stagger(envs, env_seeds, obs, carry, it, ep_ret, ep_len, steps)
    finally:
        envs.close()
    restart_at = np.random.default_rng([cfg.seed, it]).integers(0, steps, 8)
    np.testing.assert_array_equal(ep_len[0], steps - restart_at)  # no game of Pong ends
    assert len(set(restart_at)) == 8 and distinct(obs) == 8  # eight games, each at its own step

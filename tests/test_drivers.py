"""What the drivers store in replay, checked against an env stepped in lockstep.

Each driver (drivers/jitted.py on gymnax, drivers/host.py on Gymnasium and on the ALE) runs
a few hundred steps without training; then every stored transition is compared with the
reference env: its next observation (the episode's true last observation at an episode end,
not the reset one), reward, `terminated` (a true terminal state only) and `last` (the
episode ended here, terminated or truncated by the time limit), and the n-step batches the
driver samples are compared with returns computed here from the reference's outputs
(Hessel et al. 2017, eq. 2: cut after an episode end, no bootstrap past a terminal, a
bootstrap from the final observation past a time limit).
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from deepq import frame_replay, prioritized
from deepq.agents.base import AgentState
from deepq.config import Config
from deepq.drivers.common import LearnerState, sample_replay
from deepq.drivers.host import HostDriver
from deepq.drivers.jitted import JittedDriver
from deepq.envs import resolve

TIME_LIMIT = 20  # CartPole episodes truncated here: random play reaches it in ~1 of 3 episodes
E, GAMMA, N = 2, 0.9, 3
SHORT_CARTPOLE = "DriverTestCartPole-v0"  # Gymnasium's CartPole with the short time limit


def _config(env_id: str, num_seeds: int) -> Config:
    """No training (learning_starts past the end); the replay holds the whole run."""
    return Config(env_id=env_id, num_envs=E, num_seeds=num_seeds, total_steps=400,
                  buffer_size=400, learning_starts=10_000, chunk_steps=400, hidden_sizes=(8,),
                  batch_size=256, n_step=N, gamma=GAMMA, gif=False, select_every=0)


def _run(driver):
    """The driver's whole run (its chunks); returns the learner it ends with."""
    last = None
    for last, _ in driver.chunks(driver.initial_state()):  # noqa: B007 (the last is kept)
        pass
    return last.carry.learner


def _seed(tree, s: int):
    """Seed s's part of a pytree with a leading seed axis, as numpy arrays."""
    return jax.tree.map(lambda x: np.asarray(x)[s], tree)


def _sample(cfg: Config, learner, key: int):
    """A training batch as the driver samples it (drivers/common.py), as numpy arrays."""
    sample = jax.jit(lambda learner, key: sample_replay(cfg, learner, key)[0])
    return jax.tree.map(np.asarray, sample(learner, jax.random.PRNGKey(key)))


def cartpole_reference(obs: np.ndarray, action: np.ndarray, time_limit: int) -> dict:
    """One env's stored trajectory [T, ...] replayed step by step through Gymnasium's own
    CartPole physics: from each stored observation (CartPole's observation is its whole
    state) and action, the next observation, reward and termination; truncation counted
    here, at `time_limit` steps since the episode's start (the first step is a reset's)."""
    env = CartPoleEnv()
    env.reset(seed=0)
    out = {k: [] for k in ("next_obs", "reward", "terminated", "truncated")}
    t = 0
    for o, a in zip(obs, action):
        env.state = np.asarray(o, np.float64)
        env.steps_beyond_terminated = None
        next_obs, reward, terminated, _, _ = env.step(int(a))
        t += 1
        truncated = t >= time_limit
        if terminated or truncated:
            t = 0
        for k, v in zip(out, (next_obs, reward, terminated, truncated)):
            out[k].append(v)
    out = {k: np.asarray(v) for k, v in out.items()}
    out["last"] = out["terminated"] | out["truncated"]
    return out


def check_cartpole_replay(learner, cfg: Config) -> None:
    """Every stored slot of one seed against the reference, then the driver's n-step batches
    against n-step returns computed from the reference's outputs."""
    data = learner.replay.data
    size = int(learner.replay.size)
    assert size == cfg.total_steps  # one transition per env step, nothing overwritten
    refs, index = [], {}
    for e in range(E):
        slots = np.arange(e, size, E)  # env e's transitions, in order
        ref = cartpole_reference(data.obs[slots], data.action[slots], TIME_LIMIT)
        np.testing.assert_allclose(data.next_obs[slots], ref["next_obs"], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(data.reward[slots], ref["reward"])
        np.testing.assert_array_equal(data.terminated[slots], ref["terminated"])
        np.testing.assert_array_equal(data.last[slots], ref["last"])
        # Within an episode the next step acts on the stored next observation; after an
        # episode end it acts on a fresh reset state (CartPole: uniform in +-0.05).
        following = data.obs[slots[1:]]
        ended = ref["last"][:-1]
        np.testing.assert_array_equal(following[~ended], data.next_obs[slots[:-1]][~ended])
        assert (np.abs(following[ended]) <= 0.05).all()
        assert (np.abs(data.next_obs[slots[:-1]][ended] - following[ended]).max(axis=1)
                > 1e-3).all()
        refs.append(ref)
        for i, slot in enumerate(slots):
            index[data.obs[slot].tobytes()] = (e, i)
    assert len(index) == size  # observations identify their slots
    # Both kinds of episode end are in the data: true terminals, and time limits that are not
    # terminal.
    assert sum(ref["terminated"].sum() for ref in refs) >= 3
    assert sum((ref["truncated"] & ~ref["terminated"]).sum() for ref in refs) >= 3

    batch = _sample(cfg, learner, 3)
    cuts = {"terminal": 0, "time limit": 0, "full": 0}
    for b in range(cfg.batch_size):
        e, i = index[batch.obs[b].tobytes()]
        ref = refs[e]
        assert i + cfg.n_step <= len(ref["reward"]), "sampled a window not all stored yet"
        assert int(batch.action[b]) == data.action[e + E * i]
        ret, m = 0.0, 0
        for k in range(cfg.n_step):
            ret += cfg.gamma**k * ref["reward"][i + k]
            m = k + 1
            if ref["last"][i + k]:
                break
        end = i + m - 1
        discount = cfg.gamma**m * (1.0 - ref["terminated"][end])
        assert float(batch.reward[b]) == pytest.approx(ret, abs=1e-5)
        assert float(batch.discount[b]) == pytest.approx(discount, abs=1e-6)
        np.testing.assert_allclose(batch.next_obs[b], ref["next_obs"][end],
                                   atol=1e-5, rtol=0)
        cuts["terminal" if ref["terminated"][end] else
             "time limit" if ref["last"][end] else "full"] += 1
    assert min(cuts.values()) > 0, cuts  # windows cut by both kinds of end, and whole ones


def test_jitted_driver_stores_what_gymnasium_cartpole_does():
    """gymnax's CartPole in the compiled loop, 2 envs, its time limit (the driver's gymnax
    params) set to 20 steps."""
    cfg = _config("CartPole-v1", num_seeds=1)
    driver = JittedDriver(cfg, resolve(cfg.env_id))
    driver.env_params = driver.env_params.replace(max_steps_in_episode=TIME_LIMIT)
    learner = _run(driver)
    check_cartpole_replay(_seed(learner, 0), cfg)


@pytest.fixture(scope="module")
def short_cartpole():
    if SHORT_CARTPOLE not in gym.envs.registry:
        gym.register(SHORT_CARTPOLE, entry_point="gymnasium.envs.classic_control.cartpole:"
                     "CartPoleEnv", max_episode_steps=TIME_LIMIT)
    return SHORT_CARTPOLE


def test_host_driver_stores_what_gymnasium_cartpole_does(short_cartpole):
    """Gymnasium's CartPole (a 20-step TimeLimit) in the host loop, 2 seeds x 2 envs."""
    cfg = _config(short_cartpole, num_seeds=2)
    info = resolve(cfg.env_id, cfg.backend)
    assert info.backend == "gymnasium"
    learner = _run(HostDriver(cfg, info))
    for s in range(cfg.num_seeds):
        check_cartpole_replay(_seed(learner, s), cfg)
    # The seeds played different episodes.
    assert not np.array_equal(learner.replay.data.obs[0], learner.replay.data.obs[1])


def test_host_driver_pixel_replay_stores_what_the_ale_returned():
    """Space Invaders through the host driver with the Nature preprocessing (a tiny MLP in
    place of the CNN: the network plays no part in what is stored). A second env, seeded as
    the driver seeds its envs (seed s, env e: s * 10_007 + e) and stepped with the stored
    actions, gives the frames, rewards, life losses and game overs; replay must hold the
    newest frame of each observation acted on, the reward clipped to [-1, 1] (Mnih et al.
    2015, Methods), life losses as terminals, and the driver's n-step batches must be those
    of the env's own observations and clipped rewards."""
    pytest.importorskip("ale_py")
    from deepq.envs.atari import AtariEnvs
    from deepq.presets import base_config

    steps, cap = 300, 800
    cfg = base_config("ALE/SpaceInvaders-v5", "nature").replace(
        num_envs=E, total_steps=steps * E, buffer_size=steps * E, learning_starts=100_000,
        chunk_steps=steps * E, n_step=N, gamma=GAMMA, max_episode_frames=cap,
        network="mlp", hidden_sizes=(8,), gif=False)
    learner = _seed(_run(HostDriver(cfg, resolve(cfg.env_id, cfg=cfg))), 0)
    replay = learner.replay
    assert int(replay.rows) == steps

    envs = AtariEnvs(cfg, E, training=True)
    obs = [envs.reset([0, 1])]
    outs = []
    for t in range(steps):
        outs.append(envs.step(replay.action[t]))
        obs.append(outs[-1].obs)
    envs.close()
    obs = np.stack(obs)  # [steps + 1, E, 84, 84, 4]: the observations acted on, and the last
    raw = np.stack([o.reward for o in outs])
    terminated = np.stack([o.terminated for o in outs])
    game_over = np.stack([o.game_over for o in outs])
    ignored = np.stack([o.ignored for o in outs])

    np.testing.assert_array_equal(replay.frames, obs[:steps, ..., -1])
    np.testing.assert_array_equal(replay.reward, np.clip(raw, -1.0, 1.0))
    np.testing.assert_array_equal(replay.terminated, terminated)
    # An observation from a reset: the first one, and the one after each game over's
    # ignored step.
    first = np.concatenate([np.ones((1, E), bool), ignored[:-1]])
    np.testing.assert_array_equal(replay.first, first)
    # The data has rewards above 1 (clipped), life losses (terminal, the game goes on) and
    # game overs at the frame cap (not terminal: 800 frames = 200 steps after each reset).
    assert raw.max() > 1
    assert (terminated & ~game_over).any()
    assert (game_over & ~terminated).sum() == E
    np.testing.assert_array_equal(np.argmax(game_over, axis=0), [cap // cfg.frame_skip - 1] * E)

    # n-step transitions from the env's outputs, keyed by the observation they start from
    # (early frames of a game can repeat, so a key may hold several).
    reward = np.clip(raw, -1.0, 1.0)
    expected: dict[bytes, list] = {}
    for e in range(E):
        for t in range(steps - N):
            if ignored[t, e]:  # the step only reset the env: no transition
                continue
            ret, m = 0.0, 0
            for k in range(N):
                ret += GAMMA**k * reward[t + k, e]
                m = k + 1
                if terminated[t + k, e] or game_over[t + k, e]:
                    break
            discount = GAMMA**m * (1.0 - terminated[t + m - 1, e])
            key = obs[t, e].tobytes() + replay.action[t, e].tobytes()
            expected.setdefault(key, []).append((ret, discount, obs[t + m, e]))
    # A batch about twice the number of stored transitions, so that the few windows that
    # reach a game over are in it.
    batch = _sample(cfg.replace(batch_size=1024), learner, 5)
    cuts = {"life loss": 0, "game over": 0}
    for b in range(len(batch.reward)):
        candidates = expected[batch.obs[b].tobytes() + batch.action[b].astype(np.int32).tobytes()]
        assert any(abs(batch.reward[b] - ret) < 1e-5 and abs(batch.discount[b] - discount) < 1e-6
                   and np.array_equal(batch.next_obs[b], next_obs)
                   for ret, discount, next_obs in candidates), b
        if batch.discount[b] == 0:
            cuts["life loss"] += 1
        elif abs(batch.discount[b] - GAMMA**N) > 1e-6:  # gamma^m, m < n
            cuts["game over"] += 1
    assert min(cuts.values()) > 0, cuts  # windows cut by both kinds of end were checked


def test_prioritized_pixel_batches_belong_to_the_slots_drawn():
    """Prioritized pixel replay numbers slot = row * E + env. With E = 3 envs and 5 x 7
    frames (neither frame side equals E), each sampled transition's frame stack, action,
    2-step return, bootstrap stack and importance weight w_i = (N P(i))^-beta / max_j w_j
    (Schaul et al. 2016, Algorithm 1, line 10) are those of the slot it was drawn from."""
    E, T, n, gamma = 3, 8, 2, 0.5
    cfg = Config(num_envs=E, buffer_size=T * E, batch_size=32, n_step=n, gamma=gamma,
                 prioritized=True, priority_beta=0.4, total_steps=1000, learning_starts=100)
    state = frame_replay.init(T * E, E, (5, 7), 2)
    env = np.arange(E)
    for t in range(T - 1):  # rows 0-6 of one episode per env: frame 10 t + env + 1
        frame = np.broadcast_to((10 * t + env + 1)[:, None, None], (E, 5, 7)).astype(np.uint8)
        step = frame_replay.FrameStep(jnp.asarray(frame), jnp.asarray(t + env),
                                      jnp.asarray(t + 0.1 * env), jnp.zeros(E),
                                      jnp.full(E, t == 0))
        state = frame_replay.add(state, step)
    # Rows 0-4 have their 2 steps and the frame after them: 15 slots, distinct priorities.
    p = np.linspace(0.5, 4.0, 15) ** np.tile([1.0, 1.3, 0.7], 5)
    tree = prioritized.set_priorities(prioritized.init(T * E), jnp.arange(15), jnp.asarray(p))
    nan = jnp.full((), jnp.nan)
    learner = LearnerState(AgentState(None, None, None, jnp.int32(0)), state,
                           jax.random.PRNGKey(0), nan, nan, tree)
    batch, slots = jax.jit(lambda lr, key: sample_replay(cfg, lr, key))(learner,
                                                                       jax.random.PRNGKey(4))
    batch, slots = jax.tree.map(np.asarray, batch), np.asarray(slots)
    assert slots.max() < 15 and len(set(slots.tolist())) >= 10
    row, e = slots // E, slots % E
    frame = 10 * row + e + 1
    np.testing.assert_array_equal(batch.obs[:, :, :, 1], np.broadcast_to(frame[:, None, None],
                                                                          (32, 5, 7)))
    older = np.where(row > 0, frame - 10, 0)  # zeros before the episode's first frame
    np.testing.assert_array_equal(batch.obs[:, 0, 0, 0], older)
    np.testing.assert_array_equal(batch.next_obs[:, 0, 0, :], np.stack([frame + 10, frame + 20],
                                                                        axis=1))
    np.testing.assert_array_equal(batch.action, row + e)
    np.testing.assert_allclose(batch.reward, (row + 0.1 * e) + gamma * (row + 1 + 0.1 * e),
                               rtol=1e-6)
    np.testing.assert_allclose(batch.discount, gamma**n)
    w = (15 * p[slots] / p.sum()) ** -0.4  # beta_0: no update taken yet
    np.testing.assert_allclose(batch.weight, w / w.max(), rtol=1e-5)

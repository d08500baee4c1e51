"""Atari preprocessing (envs/atari.py) against an independent reference.

The reference is a raw ALE emulator stepped one frame at a time in lockstep with deepq's
envs: its RGB screens are turned to gray, max-pooled, resized, cropped and stacked here, in
numpy, and every observation, reward and frame count must agree.
"""

from __future__ import annotations

import imageio.v3 as iio
import jax
import numpy as np
import pytest

import deepq.envs.families
from deepq.agents import make_agent
from deepq.envs import resolve
from deepq.envs.atari import AtariEnvs, game, overridden_defaults
from deepq.presets import base_config
from deepq.run import Run

ale_py = pytest.importorskip("ale_py")


def raw_ale(game: str):
    """A bare emulator: no frame skip, no sticky actions, the game's minimal action set."""
    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setInt("random_seed", 0)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    ale.reset_game()
    return ale


def gray(ale) -> np.ndarray:
    """ITU-R 601 luma of the RGB screen, computed here rather than by the ALE."""
    rgb = ale.getScreenRGB().astype(np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """Row o averages the input cells under [o, o+1) * n_in / n_out, by overlap."""
    scale = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        lo, hi = o * scale, (o + 1) * scale
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            w[o, i] = max(0.0, min(hi, i + 1) - max(lo, i))
    return w / scale


def area_resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    return area_weights(frame.shape[0], height) @ frame @ area_weights(frame.shape[1], width).T


def reference_frame(frames: list[np.ndarray], cfg) -> np.ndarray:
    """The newest preprocessed frame of one agent step from its raw gray frames."""
    last = np.maximum(frames[-1], frames[-2]) if cfg.max_pool_frames else frames[-1]
    height, width = cfg.frame_resize
    out = area_resize(last, height, width)
    if height > width:  # the 2013 crop: an 84x84 square from row frame_crop_top
        out = out[cfg.frame_crop_top:cfg.frame_crop_top + width]
    return out


def lockstep(cfg, steps: int, seed: int = 0):
    """Step deepq's env and the raw emulator with the same random actions."""
    ale = raw_ale(game(cfg.env_id))
    envs = AtariEnvs(cfg, 1, training=True)
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    obs = envs.reset([seed])
    assert envs.num_actions == len(actions)
    first = gray(ale)
    yield None, obs, reference_frame([first, first], cfg), 0.0, ale
    for _ in range(steps):
        a = int(rng.integers(len(actions)))
        frames, reward = [], 0.0
        for _ in range(cfg.frame_skip):
            reward += ale.act(actions[a])
            frames.append(gray(ale))
        out = envs.step(np.array([a]))
        yield out, out.obs, reference_frame(frames, cfg), reward, ale
        if out.game_over[0]:
            break
    envs.close()


@pytest.mark.parametrize("preset", ["nature", "dqn2013"])
def test_frames_rewards_and_stack_match_the_raw_emulator(preset):
    # No-op starts and sticky actions are randomness the lockstep cannot share: off here,
    # tested on their own below.
    cfg = base_config("ALE/Breakout-v5", preset).replace(noop_max=0, sticky_actions=0.0)
    prev = None
    steps = 0
    for out, obs, ref, reward, ale in lockstep(cfg, 120):
        assert obs.shape == (1, 84, 84, 4) and obs.dtype == np.uint8
        # Gray + (max over the last two frames) + area resize (+ crop), to rounding.
        assert np.abs(obs[0, :, :, -1] - ref).max() <= 1.0
        if prev is None:  # the stack starts as zeros behind the first frame
            assert not obs[0, :, :, :-1].any()
        else:  # and shifts by one frame per step
            np.testing.assert_array_equal(obs[0, :, :, :-1], prev[0, :, :, 1:])
            assert out.reward[0] == reward  # unclipped, summed over the skipped frames
            steps += 1
            assert ale.getEpisodeFrameNumber() == steps * cfg.frame_skip
        prev = obs
    assert steps == 120


def test_2013_preset_skips_3_frames_in_space_invaders_only():
    assert base_config("ALE/SpaceInvaders-v5", "dqn2013").frame_skip == 3
    assert base_config("ALE/Pong-v5", "dqn2013").frame_skip == 4
    assert base_config("ALE/SpaceInvaders-v5", "nature").frame_skip == 4
    cfg = base_config("ALE/SpaceInvaders-v5", "dqn2013").replace(noop_max=0)
    counts = [ale.getEpisodeFrameNumber() for _, _, _, _, ale in lockstep(cfg, 5)]
    assert np.diff(counts).tolist() == [3] * 5


def test_noop_starts_vary_between_resets_and_stay_within_noop_max():
    cfg = base_config("ALE/Pong-v5", "nature")  # noop_max 30
    envs = AtariEnvs(cfg, 16, training=True)
    envs.reset(list(range(16)))
    frames = envs.envs.ale.reset(np.arange(16), np.arange(16) + 100)[1]["episode_frame_number"]
    envs.close()
    assert frames.min() >= 0 and frames.max() <= 30 and len(set(frames.tolist())) > 4
    quiet = AtariEnvs(cfg.replace(noop_max=0), 4, training=True)
    _, info = quiet.envs.reset(seed=np.arange(4))
    quiet.close()
    assert info["episode_frame_number"].tolist() == [0, 0, 0, 0]


def test_life_loss_is_terminal_in_training_only():
    cfg = base_config("ALE/Breakout-v5", "nature")
    rng = np.random.default_rng(0)
    for training, terminals_per_game in ((True, 5), (False, 1)):  # Breakout: 5 lives
        envs = AtariEnvs(cfg, 1, training=training)
        envs.reset([3])
        terminals = 0
        for _ in range(5_000):
            out = envs.step(rng.integers(0, envs.num_actions, 1))
            terminals += int(out.terminated[0])
            if out.game_over[0]:
                break
        assert out.game_over[0] and out.terminated[0]  # the last life ends the game
        assert terminals == terminals_per_game
        # The step after a game over only resets the env: its action is ignored.
        after = envs.step(np.zeros(1, np.int64))
        assert after.ignored[0] and not after.terminated[0] and after.reward[0] == 0
        assert not after.obs[0, :, :, :-1].any()
        envs.close()


def test_sticky_actions_change_the_trajectory_and_full_action_set_has_18():
    cfg = base_config("ALE/Breakout-v5", "nature").replace(noop_max=0)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 4, 300)
    runs = []
    for sticky in (0.0, 0.0, 0.5):
        envs = AtariEnvs(cfg.replace(sticky_actions=sticky), 1)
        envs.reset([0])
        runs.append(np.stack([envs.step(actions[t:t + 1]).obs[0, :, :, -1]
                              for t in range(300)]))
        envs.close()
    np.testing.assert_array_equal(runs[0], runs[1])  # deterministic without sticky actions
    assert (runs[0] != runs[2]).any()
    assert resolve("ALE/Pong-v5", cfg=cfg, full_action_set=True).num_actions == 18
    assert resolve("ALE/Pong-v5", cfg=cfg).num_actions == 6


def test_the_v5_ids_own_defaults_are_replaced_explicitly():
    cfg = base_config("ALE/Pong-v5", None)  # an ALE id trains with the nature preset
    assert cfg.network == "nature_cnn" and cfg.sticky_actions == 0.0
    assert overridden_defaults(cfg) == ["sticky_actions 0.25 -> 0.0"]
    assert overridden_defaults(cfg.replace(sticky_actions=0.25)) == []
    info = resolve("ALE/Pong-v5", cfg=cfg)
    assert info.family == "atari" and info.obs_shape == (84, 84, 4) and info.obs_dtype == "uint8"


@pytest.mark.e2e
def test_pong_trains_evaluates_and_records_end_to_end(tmp_path):
    import json

    import deepq
    from deepq import checkpoint

    cfg = base_config("ALE/Pong-v5", "nature").replace(
        total_steps=400, buffer_size=1_000, learning_starts=200, eval_episodes=2,
        eval_max_frames=800, checkpoint_every=200, chunk_steps=200)
    run = deepq.train(cfg, tmp_path / "pong", progress=False)
    ev = json.loads((run.path / "eval.json").read_text())
    assert ev["episodes"] == 2 and len(ev["returns"][0]) == 2
    assert -21 <= ev["mean"] <= 21 and -21 <= ev["random_mean"] <= 21
    assert iio.imread(run.path / "episode.gif").shape[1:] == (168, 168, 3)
    state = checkpoint.read_raw(checkpoint.latest(run.path))["state"]
    learner = state["carry"]["learner"]
    # One update every 4 steps once 200 steps are in: at steps 200, 204, ..., 400.
    assert int(learner["agent"]["updates"][0]) == len(range(200, 401, 4))
    # The replay holds one 84x84 frame per step, not stacks.
    assert learner["replay"]["frames"].shape == (1, 1_000, 1, 84, 84)
    assert int(learner["replay"]["rows"][0]) == 400


@pytest.mark.e2e
def test_pong_rainbow_with_n_step_and_prioritized_pixel_replay(tmp_path):
    """Every Rainbow part on ALE pixels: the run trains, and the updates moved the
    priorities of the slots they learned from away from the initial maximum."""
    import deepq
    from deepq import checkpoint

    cfg = base_config("ALE/Pong-v5", "rainbow").replace(
        total_steps=300, buffer_size=1_000, learning_starts=200, train_freq=4,
        eval_episodes=1, eval_max_frames=400, gif=False, qtrace_states=8, chunk_steps=300)
    assert cfg.n_step == 3 and cfg.prioritized and cfg.noisy and cfg.distributional
    run = deepq.train(cfg, tmp_path / "rainbow", progress=False, artifacts=False)
    learner = checkpoint.read_raw(checkpoint.latest(run.path))["state"]["carry"]["learner"]
    assert int(learner["agent"]["updates"][0]) == len(range(200, 301, 4))
    leaves = np.asarray(learner["priorities"]["nodes"][0])[1024:1024 + 1_000]
    ready = leaves[leaves > 0]
    assert len(ready) > 250  # the 300 steps but the newest 3 and the game-over rows
    assert len(np.unique(ready)) > 10  # refreshed from the updates' TD errors


class _RawLog:
    """Stands in for ale-py's vector env: passes every call through and keeps the episode
    frame numbers at reset and, for each step, the action, raw reward, terminated and
    truncated flags and frame numbers."""

    def __init__(self, raw):
        self.raw, self.steps, self.reset_frames = raw, [], None

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def reset(self, **kwargs):
        obs, info = self.raw.reset(**kwargs)
        self.reset_frames = np.array(info["episode_frame_number"])
        return obs, info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.raw.step(actions)
        self.steps.append({"action": np.array(actions), "reward": np.array(reward),
                           "terminated": np.array(terminated), "truncated": np.array(truncated),
                           "frame": np.array(info["episode_frame_number"])})
        return obs, reward, terminated, truncated, info


def _spy_envs(made: list) -> type:
    """AtariEnvs that log what the emulator did (`_RawLog`) and the observations the policy
    was given (`seen`); every instance is appended to `made`."""

    class SpyEnvs(AtariEnvs):
        def __init__(self, cfg, num_envs, training=True, num_threads=0):
            super().__init__(cfg, num_envs, training, num_threads)
            self.training = training
            self.envs = _RawLog(self.envs)
            made.append(self)

        def reset(self, seeds):
            self.seen = [super().reset(seeds)]
            return self.seen[0]

        def step(self, actions):
            out = super().step(actions)
            self.seen.append(out.obs)
            return out

    return SpyEnvs


def _untrained_pong(tmp_path) -> Run:
    """A run of one seed on Pong with the dqn2013 preset, evaluation episodes capped at
    1,000 frames, a tiny MLP for the CNN, untrained."""
    cfg = base_config("ALE/Pong-v5", "dqn2013").replace(
        eval_max_frames=1_000, eval_episodes=4, network="mlp", hidden_sizes=(8,))
    info = resolve(cfg.env_id, cfg=cfg)
    agent = make_agent(cfg, info.num_actions)
    params = agent.init(jax.random.PRNGKey(1), np.zeros(info.obs_shape, np.uint8)).params
    return Run(tmp_path, cfg, jax.tree.map(lambda x: x[None], params), info)


def test_evaluation_follows_the_dqn_papers_protocol(tmp_path, monkeypatch):
    """Mnih et al. 2013 (section 5.1) and 2015 (Methods, Evaluation procedure): epsilon 0.05,
    up to 30 no-op frames at the start of each episode, episodes capped at a number of
    frames (18,000 in the papers, 1,000 here), unclipped total rewards, and the same
    protocol with a uniformly random policy as the baseline. The emulator's own counters
    are the reference. dqn2013 trains without no-op starts and with ALE v5's 108k-frame
    cap, so evaluation must use its own settings, not the training ones."""
    run = _untrained_pong(tmp_path)
    cfg, agent = run.config, run.agent
    params = jax.tree.map(lambda x: x[0], run.params)
    assert cfg.eval_epsilon == 0.05 and cfg.eval_noop_max == 30
    assert cfg.noop_max == 0 and cfg.max_episode_frames == 108_000
    assert base_config("ALE/Pong-v5", "nature").eval_epsilon == 0.05
    made: list = []
    monkeypatch.setattr(deepq.envs.families, "AtariEnvs", _spy_envs(made))
    result = run.evaluate()
    protocol, baseline = [envs for envs in made if not envs.training]
    greedy = jax.jit(lambda obs: agent.q_values(params, obs).argmax(axis=-1))

    def played(envs) -> tuple[np.ndarray, float]:
        """Each episode's total raw reward, and the fraction of non-greedy actions."""
        log = envs.envs
        assert log.reset_frames.min() >= 0 and log.reset_frames.max() <= 30
        assert len(set(log.reset_frames.tolist())) > 1  # no-op starts differ per episode
        flags = np.stack([s["terminated"] | s["truncated"] for s in log.steps])
        ends = flags.argmax(axis=0)  # each episode's last step
        assert flags.any(axis=0).all() and len(log.steps) == ends.max() + 1
        returns = []
        for i, end in enumerate(ends):
            last = log.steps[end]
            # The cap ended every episode (random Pong loses 21 points in far more than
            # 1,000 frames): truncated, not terminal, 1,000 frames after the no-ops.
            assert last["truncated"][i] and not last["terminated"][i]
            assert last["frame"][i] - log.reset_frames[i] == cfg.eval_max_frames
            returns.append(sum(s["reward"][i] for s in log.steps[:end + 1]))
        actions = np.stack([s["action"] for s in log.steps])
        chosen = np.stack([np.asarray(greedy(obs)) for obs in envs.seen[:len(log.steps)]])
        return np.array(returns), float((actions != chosen).mean())

    returns, off_greedy = played(protocol)
    random_returns, random_off_greedy = played(baseline)
    # epsilon-greedy differs from greedy with probability epsilon * (A - 1) / A (A = 6):
    # 0.042 at epsilon 0.05 (1,000 actions: sd 0.006) and 0.83 at epsilon 1.
    assert 0.02 < off_greedy < 0.065, off_greedy
    assert 0.75 < random_off_greedy < 0.9, random_off_greedy
    assert result["epsilon"] == 0.05
    np.testing.assert_allclose(result["returns"], [returns])
    assert result["random_mean"] == pytest.approx(random_returns.mean())
    assert result["random_std"] == pytest.approx(random_returns.std())


def test_recording_holds_every_step_of_an_evaluation_episode(tmp_path, monkeypatch):
    """`record` plays one episode under the evaluation protocol (capped at 1,000 frames =
    250 steps, as random Pong takes far longer to lose 21 points) and writes the reset's
    frame and one per step: the newest 84x84 frame the agent saw, scaled 2x."""
    run = _untrained_pong(tmp_path)
    made: list = []
    monkeypatch.setattr(deepq.envs.families, "AtariEnvs", _spy_envs(made))
    run.record(tmp_path / "pong.mp4")
    (envs,) = made
    assert not envs.training and len(envs.envs.steps) == 1_000 // run.config.frame_skip
    frames = iio.imread(tmp_path / "pong.mp4")
    assert frames.shape == (len(envs.seen), 168, 168, 3)
    # Frame by frame, to video compression (about 0.04 gray levels on average here; moving
    # paddles and ball make consecutive views differ by about 0.5).
    views = np.stack(envs.seen)[:, 0, :, :, -1].repeat(2, axis=1).repeat(2, axis=2)
    error = np.abs(frames.mean(axis=-1) - views).mean(axis=(1, 2))
    assert error.max() < 0.2, (error.argmax(), error.max())

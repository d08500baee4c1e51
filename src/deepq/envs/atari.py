"""Atari 2600 games from pixels: ale-py's C++ vector env, preprocessed as in the DQN papers.

`ale_py.AtariVectorEnv` does in C++ what the papers describe (benchmarks/atari_envs.py
measures it against Gymnasium's wrappers over several envs): grayscale, resize, frame skip
with a max over the last two frames, a stack of the last k frames (zeros at a reset) and
up to `noop_max` no-op frames after each reset. deepq adds the 2013 crop, the
channels-last layout and life loss as a training terminal (from the lives counter), and
turns off the env's own reward clipping and fire-on-reset: rewards are clipped in training
only (`clip_rewards`), and pressing FIRE is left to the agent, as in the papers.

An ALE id (`ALE/Pong-v5`, `PongNoFrameskip-v4`, ...) names the game only: the id's own
defaults (v5: frame skip 4, sticky actions 0.25, minimal action set, 108k frames) are
replaced by the run's config, and `id_defaults` lets the CLI say where they differ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _spec(env_id: str):
    import gymnasium as gym

    try:
        import ale_py
    except ImportError:
        return None
    gym.register_envs(ale_py)
    spec = gym.envs.registry.get(env_id)
    if spec is None or "ale_py" not in str(spec.entry_point):
        return None
    return spec


def is_atari(env_id: str) -> bool:
    return _spec(env_id) is not None


def game(env_id: str) -> str:
    """The ROM name of an ALE id, e.g. ALE/SpaceInvaders-v5 -> space_invaders."""
    return _spec(env_id).kwargs["game"]


# How an ALE id's registered kwargs map onto deepq's config fields.
_ID_DEFAULTS = {
    "frameskip": "frame_skip",
    "repeat_action_probability": "sticky_actions",
    "full_action_space": "full_action_set",
    "max_num_frames_per_episode": "max_episode_frames",
}


def id_defaults(env_id: str) -> dict:
    """The id's registered defaults, under deepq's config names."""
    kwargs = _spec(env_id).kwargs
    return {ours: kwargs[theirs] for theirs, ours in _ID_DEFAULTS.items() if theirs in kwargs}


def overridden_defaults(cfg) -> list[str]:
    """'name: id default -> config value' for each id default the config replaces."""
    out = []
    for name, default in id_defaults(cfg.env_id).items():
        value = getattr(cfg, name)
        if name == "frame_skip" and default == 1:
            continue  # NoFrameskip ids: the skip is the preprocessing's job
        if value != default:
            out.append(f"{name} {default} -> {value}")
    return out


def frame_shape(cfg) -> tuple[int, int]:
    """(height, width) of one preprocessed frame."""
    height, width = cfg.frame_resize
    return (width, width) if height > width else (height, width)


def obs_shape(cfg) -> tuple[int, int, int]:
    return frame_shape(cfg) + (cfg.frame_stack,)


class AtariStep(NamedTuple):
    obs: np.ndarray  # [N, H, W, k] uint8, the observation after the step
    reward: np.ndarray  # [N] float32, unclipped
    terminated: np.ndarray  # [N] bool, terminal for training (a life loss when configured)
    game_over: np.ndarray  # [N] bool, the game ended (terminated or truncated)
    ignored: np.ndarray  # [N] bool, the step only reset the env (its action was ignored)


class AtariEnvs:
    """`num_envs` games stepped together in C++; observations channels-last [N, H, W, k].

    With the env's next-step autoreset, the step after a game over returns the reset
    observation and ignores its action; `ignored` marks those steps.
    """

    def __init__(self, cfg, num_envs: int, training: bool = True, num_threads: int = 0):
        from ale_py.vector_env import AtariVectorEnv

        height, width = cfg.frame_resize
        self.crop = slice(cfg.frame_crop_top, cfg.frame_crop_top + width) if height > width \
            else slice(None)
        self.num_envs = num_envs
        self.life_loss_terminal = training and cfg.terminal_on_life_loss
        self.envs = AtariVectorEnv(
            game(cfg.env_id), num_envs,
            num_threads=num_threads,
            frameskip=cfg.frame_skip,
            repeat_action_probability=cfg.sticky_actions,
            full_action_space=cfg.full_action_set,
            img_height=height, img_width=width, grayscale=True, stack_num=cfg.frame_stack,
            maxpool=cfg.max_pool_frames,
            noop_max=cfg.noop_max if training else cfg.eval_noop_max,
            episodic_life=False,
            life_loss_info=False,  # life losses are read from info["lives"] instead
            reward_clipping=False,
            use_fire_reset=False,
            max_num_frames_per_episode=cfg.max_episode_frames if training
            else cfg.eval_max_frames,
        )
        self.num_actions = int(self.envs.single_action_space.n)
        self._ended = np.zeros(num_envs, bool)

    def _obs(self, stacked: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(stacked[:, :, self.crop, :].transpose(0, 2, 3, 1))

    def reset(self, seeds: list[int] | np.ndarray) -> np.ndarray:
        obs, info = self.envs.reset(seed=np.asarray(seeds, np.int64))
        self._ended[:] = False
        self._lives = np.asarray(info["lives"])
        return self._obs(obs)

    def restart(self, mask: np.ndarray, seeds: list[int] | np.ndarray) -> np.ndarray:
        """A new game in the envs of `mask` (one seed each), the others left as they are;
        every env's observation."""
        obs, info = self.envs.reset(seed=np.asarray(seeds, np.int64),
                                    options={"reset_mask": np.asarray(mask, bool)})
        self._ended[mask] = False
        self._lives = np.where(mask, np.asarray(info["lives"]), self._lives)
        return self._obs(obs)

    def step(self, actions: np.ndarray) -> AtariStep:
        obs, reward, terminated, truncated, info = self.envs.step(
            np.asarray(actions, np.int32).reshape(self.num_envs))
        ignored = self._ended.copy()
        game_over = (terminated | truncated) & ~ignored
        lives = np.asarray(info["lives"])
        # Nature DQN: a lost life is terminal for training; the game itself goes on.
        lost_life = (lives < self._lives) & ~ignored if self.life_loss_terminal else False
        self._lives = lives
        self._ended = game_over
        return AtariStep(self._obs(obs), np.asarray(reward, np.float32),
                         (terminated & ~ignored) | lost_life, game_over, ignored)

    def close(self) -> None:
        self.envs.close()

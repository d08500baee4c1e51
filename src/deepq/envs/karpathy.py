"""Pong from pixels as in Karpathy (2016), "Deep Reinforcement Learning: Pong from Pixels".

http://karpathy.github.io/2016/05/31/rl/ and its pg-pong.py: each 210x160 RGB frame is
cropped to the playing field (rows 35:195), downsampled by 2 in the red channel, the two
background colours (144 and 109) are erased and everything else becomes 1; the agent sees
the difference of the last two such 80x80 frames, flattened to 6400 values in {-1, 0, 1}
(zeros at a reset, where there is no previous frame). It has two actions, UP and DOWN.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "KarpathyPong-v0"

UP, DOWN = 1, 0
# Agent action -> ALE action in Pong's minimal set: 2 (RIGHT) moves the agent's (right,
# green) paddle up on screen, 3 (LEFT) down. pg-pong.py: `action = 2 if uniform < aprob
# else 3`, with label y = 1 for action 2.
_ALE_ACTIONS = (3, 2)

# Red channel value -> 0/1: the two background colours (and black) -> 0, the rest -> 1.
_LUT = np.ones(256, dtype=np.int8)
_LUT[[0, 109, 144]] = 0


def preprocess(frame: np.ndarray) -> np.ndarray:
    """210x160x3 uint8 RGB frame -> 6400 int8 of 0/1 (pg-pong.py's `prepro`)."""
    return _LUT[frame[35:195:2, ::2, 0]].ravel()


class KarpathyPong(gym.Wrapper):
    """An ALE Pong env with Karpathy's two actions and difference-frame observations."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Box(low=-1, high=1, shape=(6400,), dtype=np.int8)
        self._prev: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        frame, info = self.env.reset(**kwargs)
        self._prev = preprocess(frame)
        return np.zeros(6400, dtype=np.int8), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        frame, reward, terminated, truncated, info = self.env.step(_ALE_ACTIONS[action])
        cur = preprocess(frame)
        obs = cur - self._prev  # int8: 0/1 minus 0/1 is in {-1, 0, 1}
        self._prev = cur
        return obs, reward, terminated, truncated, info


def make_karpathy_pong(render_mode: str | None = None, **kwargs: Any) -> KarpathyPong:
    """Karpathy's Pong; `kwargs` override the ALE settings below."""
    import ale_py

    gym.register_envs(ale_py)
    # Karpathy used gym's old "Pong-v0": each action repeated for a frame skip drawn
    # uniformly from {2, 3, 4} (frameskip=(2, 5)), with sticky actions of probability 0.25,
    # over Pong's minimal action set.
    ale_kwargs = dict(frameskip=(2, 5), repeat_action_probability=0.25,
                      full_action_space=False) | kwargs
    return KarpathyPong(gym.make("ALE/Pong-v5", render_mode=render_mode, **ale_kwargs))


def register() -> None:
    """Register ENV_ID with Gymnasium (once). The game ends itself at 21 points."""
    import ale_py

    gym.register_envs(ale_py)
    if ENV_ID not in gym.envs.registry:
        gym.register(id=ENV_ID, entry_point="deepq.envs.karpathy:make_karpathy_pong",
                     max_episode_steps=None)

"""Frames of one episode of one seed, for `Run.record`, drawn by the run's env family
(envs/families.py): Gymnasium envs render themselves, MinAtar's observation planes are drawn
as colours, ALE games show the agent's own view (its newest preprocessed frame)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from deepq.config import Config
from deepq.envs import EnvInfo, family, rollout, seeds


def episode_frames(cfg: Config, info: EnvInfo, params: Any, act_fn: Callable, max_steps: int,
                   frame_every: int) -> list[np.ndarray]:
    """One episode of `act_fn(params, obs [1, ...], key, epsilon)` from the recording seed,
    greedy (epsilon-greedy by the evaluation protocol on ALE games), at most `max_steps`
    agent steps: the first frame, then one every `frame_every` steps."""
    fam = family(info)
    epsilon = fam.record_epsilon(cfg)
    seed = seeds.recording(cfg.seed)
    key = jax.random.PRNGKey(seed)
    policy = jax.jit(lambda p, o, t: act_fn(p, o, jax.random.fold_in(key, t), epsilon))
    envs = fam.drawn_episode(cfg, info)
    frames, t = [], 0

    def step(actions: np.ndarray, alive: np.ndarray):
        nonlocal t
        obs, reward, ended = envs.step(actions)
        t += 1
        if t % frame_every == 0:
            frames.append(envs.frame())
        return obs, reward, ended | (t >= max_steps)

    try:
        obs = envs.reset([seed])
        frames.append(envs.frame())
        rollout.play_host(obs, step, lambda o, t: policy(params, o, t), 1,
                          lambda kept, *step_data: kept, None)
    finally:
        envs.close()
    return frames

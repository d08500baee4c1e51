"""Frames of one greedy episode, for `Run.record`: what each env family draws.

Gymnasium envs render themselves (rgb_array); MinAtar's observation planes are drawn as
colours; ALE games show the agent's own view, its newest preprocessed 84x84 frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from deepq.config import Config
from deepq.envs import make_gymnasium, make_gymnax, seeds
from deepq.envs.atari import AtariEnvs
from deepq.report import draw_planes


def gymnasium_frames(cfg: Config, params: Any, act: Callable, obs_dtype: str, max_steps: int,
                     frame_every: int) -> list[np.ndarray]:
    """One greedy episode of a Gymnasium env, rendered by the env."""
    # pygame renders off screen: no sound card or display needed (and no SDL warning)
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    key = jax.random.PRNGKey(cfg.seed)
    env = make_gymnasium(cfg.env_id, render_mode="rgb_array")
    frames = []
    try:
        obs, _ = env.reset(seed=seeds.recording(cfg.seed))
        frames.append(env.render())
        for t in range(max_steps):
            action = int(act(params, np.asarray(obs, obs_dtype), key, t))
            obs, _, terminated, truncated, _ = env.step(action)
            if (t + 1) % frame_every == 0:
                frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    return frames


def gymnax_frames(cfg: Config, params: Any, act: Callable, max_steps: int,
                  frame_every: int) -> list[np.ndarray]:
    """One greedy episode of a gymnax-only env, each observation drawn as an image."""
    key = jax.random.PRNGKey(cfg.seed)
    env, env_params = make_gymnax(cfg.env_id, cfg.full_action_set)
    step = jax.jit(env.step)
    k_reset, k_env = jax.random.split(jax.random.PRNGKey(seeds.recording(cfg.seed)))
    obs, state = env.reset(k_reset, env_params)
    frames = [draw_planes(np.asarray(obs))]
    for t in range(min(max_steps, env_params.max_steps_in_episode)):
        action = act(params, obs, key, t)
        obs, state, _, terminated, truncated, _ = step(jax.random.fold_in(k_env, t), state,
                                                      action, env_params)
        if (t + 1) % frame_every == 0:
            frames.append(draw_planes(np.asarray(obs)))
        if bool(terminated) or bool(truncated):
            break
    return frames


def atari_frames(cfg: Config, params: Any, act_fn: Callable, max_steps: int,
                 frame_every: int) -> list[np.ndarray]:
    """One evaluation-protocol episode of an ALE game (epsilon = eval_epsilon, no-op
    starts), each agent step drawn as the newest 84x84 frame it saw, scaled up 2x."""
    policy = jax.jit(lambda p, o, k: act_fn(p, o, k, cfg.eval_epsilon))
    envs = AtariEnvs(cfg, 1, training=False)

    def draw(obs: np.ndarray) -> np.ndarray:
        gray = obs[0, :, :, -1].repeat(2, axis=0).repeat(2, axis=1)
        return np.repeat(gray[:, :, None], 3, axis=2)

    seed = seeds.recording(cfg.seed)
    key = jax.random.PRNGKey(seed)
    try:
        obs = envs.reset([seed])
        frames = [draw(obs)]
        for t in range(max_steps):
            out = envs.step(np.asarray(policy(params, obs, jax.random.fold_in(key, t))))
            obs = out.obs
            if (t + 1) % frame_every == 0:
                frames.append(draw(obs))
            if out.game_over[0]:
                break
    finally:
        envs.close()
    return frames

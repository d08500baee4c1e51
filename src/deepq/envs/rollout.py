"""The two episode loops: fresh episodes played side by side to their ends, in JAX (gymnax
envs, jittable) or on the host (Gymnasium and ALE envs).

Evaluation and model selection (their returns and lengths), recordings (frames) and
REINFORCE's batches (every step of every episode) play episodes the same way; they differ
only in what they keep of each step, which the caller's `keep` adds to its own accumulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepq.envs.sticky import sticky


def play(env: Any, env_params: Any, policy: Callable, key: jax.Array, episodes: int,
         keep: Callable, kept: Any, sticky_prob: float = 0.0, obs_dtype: Any = None) -> Any:
    """Play `episodes` episodes from fresh resets until every one has ended (or the env's
    step limit), jittable. Each step: `policy(obs [E, ...], key) -> actions [E]`; with
    `sticky_prob` the env may repeat its previous action (sticky actions); then
    `keep(kept, t, obs, actions, reward, alive) -> kept`, `alive` [E] marking the episodes
    this step belongs to (`actions` are the policy's, `obs` the observations acted on).
    Returns the final `kept`."""
    k_reset, key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, episodes),
                                                        env_params)
    dtype = obs.dtype if obs_dtype is None else obs_dtype

    def running(c):
        return (c[0] < env_params.max_steps_in_episode) & c[3].any()

    def step(c):
        t, obs, state, alive, prev, key, kept = c
        key, k_act, k_step, k_sticky = jax.random.split(key, 4)
        actions = policy(obs, k_act)
        env_actions = sticky(k_sticky, prev, actions, sticky_prob) if sticky_prob > 0 \
            else actions
        obs_next, state, reward, terminated, truncated, _ = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_step, episodes), state,
                                               env_actions, env_params)
        kept = keep(kept, t, obs, actions, reward, alive)
        alive = alive & ~(terminated | truncated)
        return t + 1, obs_next.astype(dtype), state, alive, env_actions, key, kept

    start = (jnp.zeros((), jnp.int32), obs.astype(dtype), state, jnp.ones(episodes, bool),
             jnp.zeros(episodes, jnp.int32), key, kept)
    return jax.lax.while_loop(running, step, start)[-1]


def play_host(obs: np.ndarray, step, policy, n: int, keep, kept):
    """The one host episode loop: `n` envs side by side from `obs` until each has ended its
    first episode (the host twin of `play`). Each step: `policy(obs, t) ->
    actions`, `step(actions, alive) -> (obs, reward, ended)`, then `keep(kept, t, obs,
    actions, reward, alive) -> kept`, `alive` [n] marking the episodes the step belongs to
    (`obs` the observations acted on). Returns the final `kept`."""
    alive = np.ones(n, bool)
    t = 0
    while alive.any():
        actions = np.asarray(policy(obs, t))
        next_obs, reward, ended = step(actions, alive)
        kept = keep(kept, t, obs, actions, reward, alive)
        obs, alive = next_obs, alive & ~ended
        t += 1
    return kept

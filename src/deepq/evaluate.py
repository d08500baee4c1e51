"""Evaluation on the reference Gymnasium env: every seed, every episode, in one vector env.

A run trained on gymnax's CartPole-v1 is scored on Gymnasium's CartPole-v1. All seeds x
episodes run side by side (one sub-env per episode, each scored on its first episode), so
the policy is one jitted call per time step whatever the number of seeds.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepq.envs import make_gymnasium

EVAL_SEED_OFFSET = 1_000_003  # eval episodes never share env seeds with training


def make_vector_env(env_id: str, num_envs: int):
    import gymnasium as gym

    make_gymnasium(env_id).close()  # validates the id with a clear error
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point else "sync"
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)


def evaluate(
    act_fn,
    params: Any,
    num_seeds: int,
    env_id: str,
    episodes: int,
    epsilon: float,
    seed: int,
) -> np.ndarray:
    """Returns of `episodes` episodes per seed, shape [num_seeds, episodes].

    `act_fn(params, obs [B, ...], key, epsilon) -> actions [B]` is one seed's policy;
    `params` has a leading seed axis.
    """
    n = num_seeds * episodes
    envs = make_vector_env(env_id, n)

    @jax.jit
    def policy(params, obs, key, t):  # one call per time step for every seed and episode
        obs = obs.astype(jnp.float32).reshape((num_seeds, episodes) + obs.shape[1:])
        keys = jax.random.split(jax.random.fold_in(key, t), num_seeds)
        actions = jax.vmap(act_fn, in_axes=(0, 0, 0, None))(params, obs, keys, epsilon)
        return actions.reshape(n)

    try:
        obs, _ = envs.reset(seed=seed + EVAL_SEED_OFFSET)
        returns = np.zeros(n, np.float64)
        running = np.ones(n, bool)
        key = jax.random.PRNGKey(seed + EVAL_SEED_OFFSET)
        t = 0
        while running.any():
            actions = np.asarray(policy(params, obs, key, t))
            obs, reward, terminated, truncated, _ = envs.step(actions)
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
            t += 1
    finally:
        envs.close()
    return returns.reshape(num_seeds, episodes)


def summarize(returns: np.ndarray, seeds: list[int], env_id: str, epsilon: float) -> dict:
    """The eval summary written to eval.json and printed by `deepq eval --json`."""
    per_seed = returns.mean(axis=1)
    return {
        "env_id": env_id,
        "episodes": int(returns.shape[1]),
        "epsilon": float(epsilon),
        "seeds": list(seeds),
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "per_seed_mean": [float(x) for x in per_seed],
        "per_seed_std": [float(x) for x in returns.std(axis=1)],
        "returns": returns.tolist(),
    }

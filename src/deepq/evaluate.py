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

from deepq.envs import make_gymnasium, make_gymnax, rollout, seeds
from deepq.envs.atari import AtariEnvs


def seeds_policy(act_fn, num_seeds: int, episodes: int, epsilon: float, dtype=None):
    """A jitted policy(params, obs [seeds*episodes, ...], key, t) -> actions: one call per
    time step for every seed and episode, each seed acting with its own params and key."""
    n = num_seeds * episodes

    @jax.jit
    def policy(params, obs, key, t):
        obs = obs if dtype is None else obs.astype(dtype)
        obs = obs.reshape((num_seeds, episodes) + obs.shape[1:])
        keys = jax.random.split(jax.random.fold_in(key, t), num_seeds)
        actions = jax.vmap(act_fn, in_axes=(0, 0, 0, None))(params, obs, keys, epsilon)
        return actions.reshape(n)

    return policy


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
    policy = seeds_policy(act_fn, num_seeds, episodes, epsilon, jnp.float32)
    key = jax.random.PRNGKey(seeds.evaluation(seed))

    def step(actions: np.ndarray):
        obs, reward, terminated, truncated, _ = envs.step(actions)
        return obs, reward, terminated | truncated

    try:
        obs, _ = envs.reset(seed=seeds.evaluation(seed))
        returns = host_returns(obs, step, lambda o, t: policy(params, o, key, t), n)
    finally:
        envs.close()
    return returns.reshape(num_seeds, episodes)


def host_returns(obs: np.ndarray, step, policy, n: int) -> np.ndarray:
    """The one host episode loop: `n` envs side by side from `obs` until each has ended its
    first episode; `step(actions) -> (obs, reward, ended)`, `policy(obs, t) -> actions`.
    Returns each env's total reward over its first episode [n]."""
    returns = np.zeros(n, np.float64)
    running = np.ones(n, bool)
    t = 0
    while running.any():
        obs, reward, ended = step(np.asarray(policy(obs, t)))
        returns += np.where(running, reward, 0.0)
        running &= ~ended
        t += 1
    return returns


def evaluate_atari(act_fn, params: Any, num_seeds: int, cfg, episodes: int, epsilon: float,
                   seed: int) -> np.ndarray:
    """The DQN papers' protocol on an ALE game: [num_seeds, episodes] total rewards.

    Every episode starts with up to `eval_noop_max` no-op frames, acts epsilon-greedily
    (the papers use 0.05), plays until game over, lives included, and is capped at
    `eval_max_frames` emulator frames (18,000 = 5 minutes); rewards are unclipped.
    """
    n = num_seeds * episodes
    envs = AtariEnvs(cfg, n, training=False)
    policy = seeds_policy(act_fn, num_seeds, episodes, epsilon)
    key = jax.random.PRNGKey(seeds.evaluation(seed))

    def step(actions: np.ndarray):
        out = envs.step(actions)
        return out.obs, out.reward, out.game_over

    try:
        obs = envs.reset(seeds.evaluation(seed) + np.arange(n))
        returns = host_returns(obs, step, lambda o, t: policy(params, o, key, t), n)
    finally:
        envs.close()
    return returns.reshape(num_seeds, episodes)


def evaluate_reference(act_fn, params: Any, cfg, info, episodes: int, epsilon: float,
                       seed: int) -> np.ndarray:
    """[num_seeds, episodes] returns on the run's own env: Gymnasium, ALE or gymnax."""
    if info.family == "atari":
        return evaluate_atari(act_fn, params, cfg.num_seeds, cfg, episodes, epsilon, seed)
    if info.family == "minatar":
        env, env_params = make_gymnax(cfg.env_id, cfg.full_action_set)
        return evaluate_gymnax(act_fn, params, cfg.num_seeds, env, env_params, episodes,
                               epsilon, seed, cfg.sticky_actions)
    return evaluate(act_fn, params, cfg.num_seeds, info.reference_id, episodes, epsilon, seed)


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


def gymnax_returns(act_fn, params: Any, env, env_params, episodes: int, key: jax.Array,
                   epsilon: float, sticky_prob: float = 0.0) -> jnp.ndarray:
    """Returns [episodes] of one seed's policy on fresh gymnax episodes (jittable)."""
    return gymnax_episodes(act_fn, params, env, env_params, episodes, key, epsilon,
                           sticky_prob)[0]


def gymnax_episodes(act_fn, params: Any, env, env_params, episodes: int, key: jax.Array,
                    epsilon: float, sticky_prob: float = 0.0) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Returns and lengths [episodes] of one seed's policy on fresh gymnax episodes
    (jittable). Each env plays its first episode only, up to the env's own step limit."""

    def keep(kept, t, obs, actions, reward, alive):
        ret, length = kept
        return ret + jnp.where(alive, reward, 0.0), length + alive

    no_steps = jnp.zeros(episodes, jnp.int32)
    return rollout.play(env, env_params, lambda obs, k: act_fn(params, obs, k, epsilon), key,
                        episodes, keep, (jnp.zeros(episodes, jnp.float32), no_steps),
                        sticky_prob)


def evaluate_gymnax(act_fn, params: Any, num_seeds: int, env, env_params, episodes: int,
                    epsilon: float, seed: int, sticky_prob: float = 0.0) -> np.ndarray:
    """Like `evaluate`, for envs that only exist in gymnax (MinAtar): [num_seeds, episodes]."""
    keys = jax.random.split(jax.random.PRNGKey(seeds.evaluation(seed)), num_seeds)
    run = jax.jit(jax.vmap(
        lambda p, k: gymnax_returns(act_fn, p, env, env_params, episodes, k, epsilon,
                                    sticky_prob)))
    return np.asarray(run(params, keys), np.float64)

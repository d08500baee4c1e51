"""Evaluation on a run's reference env: every seed, every episode, side by side.

A run trained on gymnax's CartPole-v1 is scored on Gymnasium's CartPole-v1, an ALE game by
the DQN papers' protocol (envs/families.py), MinAtar in gymnax. All seeds x episodes run side
by side (one env per episode, each scored on its first episode), so the policy is one
jitted call per time step whatever the number of seeds.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepq.envs import family, rollout, seeds
from deepq.envs.families import GymnasiumEpisodes


def seeds_policy(act_fn, num_seeds: int, episodes: int, epsilon: float):
    """A jitted policy(params, obs [seeds*episodes, ...], key, t) -> actions: one call per
    time step for every seed and episode, each seed acting with its own params and key."""
    n = num_seeds * episodes

    @jax.jit
    def policy(params, obs, key, t):
        obs = obs.reshape((num_seeds, episodes) + obs.shape[1:])
        keys = jax.random.split(jax.random.fold_in(key, t), num_seeds)
        actions = jax.vmap(act_fn, in_axes=(0, 0, 0, None))(params, obs, keys, epsilon)
        return actions.reshape(n)

    return policy


def evaluate(act_fn, params: Any, cfg, info, episodes: int, epsilon: float, seed: int,
             env_id: str | None = None) -> np.ndarray:
    """Returns of `episodes` episodes per seed, shape [num_seeds, episodes], on the run's
    reference env (its family's: Gymnasium, the ALE's protocol, or gymnax for MinAtar), or
    on the Gymnasium env `env_id` with the same spaces.

    `act_fn(params, obs [B, ...], key, epsilon) -> actions [B]` is one seed's policy;
    `params` has a leading seed axis.
    """
    fam = family(info)
    if env_id is None and fam.scored_in_jax:
        env, env_params = fam.jax_env(cfg)
        return evaluate_gymnax(act_fn, params, cfg.num_seeds, env, env_params, episodes,
                               epsilon, seed, cfg.sticky_actions)
    n = cfg.num_seeds * episodes
    envs = fam.episodes(cfg, info, n) if env_id is None \
        else GymnasiumEpisodes(env_id, n, info.obs_dtype)
    policy = seeds_policy(act_fn, cfg.num_seeds, episodes, epsilon)
    key = jax.random.PRNGKey(seeds.evaluation(seed))
    try:
        obs = envs.reset(seeds.evaluation(seed) + np.arange(n))
        returns = host_returns(obs, envs.step, lambda o, t: policy(params, o, key, t), n)
    finally:
        envs.close()
    return returns.reshape(cfg.num_seeds, episodes)


def host_returns(obs: np.ndarray, step, policy, n: int) -> np.ndarray:
    """Each of `n` envs' total reward over its first episode [n] (`play_host`)."""
    def keep(returns, t, obs, actions, reward, alive):
        returns += np.where(alive, reward, 0.0)
        return returns

    return rollout.play_host(obs, lambda actions, alive: step(actions), policy, n, keep,
                             np.zeros(n, np.float64))


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

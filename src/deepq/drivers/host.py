"""The host driver: any Gymnasium env with discrete actions, stepped in Python.

Seeds run in lockstep: one Gymnasium vector env holds num_seeds x num_envs sub-envs, and
one jitted call per iteration adds the last step's transitions to every seed's replay,
trains where due and picks every seed's next actions (the learner is vmapped over seeds).

Resume restores the learner exactly (params, optimizer, replay, keys, clocks); the
Gymnasium envs themselves cannot be saved, so they restart their episodes on resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq.agents.dqn import make_agent
from deepq.config import Config
from deepq.drivers.common import (
    Best,
    LearnerState,
    act,
    chunk_iterations,
    init_best,
    init_learner,
    keep_better,
    observe_and_learn,
    reached_stop,
    result_params,
)
from deepq.envs import EnvInfo
from deepq.replay import Transition


class Carry(NamedTuple):
    learner: LearnerState
    best: Best


class DriverState(NamedTuple):
    carry: Carry
    iteration: int
    fill_start: int


def make_envs(cfg: Config):
    import gymnasium as gym

    return gym.make_vec(
        cfg.env_id,
        num_envs=cfg.num_seeds * cfg.num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )


class HostDriver:
    kind = "host"

    def __init__(self, cfg: Config, info: EnvInfo):
        self.cfg = cfg
        self.info = info
        self.agent = make_agent(cfg, info.num_actions)
        seeds_axis = (0, 0, None)
        self._act = jax.jit(jax.vmap(self._act_one_seed, in_axes=seeds_axis))
        self._observe_act = jax.jit(
            jax.vmap(self._observe_act_one_seed, in_axes=(0, 0, 0, None, None))
        )
        self._init = jax.jit(jax.vmap(self._init_one_seed))
        self._keep_better = jax.jit(jax.vmap(keep_better))
        self.chunk_iterations = chunk_iterations(cfg)

    # -- one seed -------------------------------------------------------------
    def _init_one_seed(self, key: jax.Array) -> Carry:
        obs_example = jnp.zeros(self.info.obs_shape, self.info.obs_dtype)
        k_learner, k_best = jax.random.split(key)
        learner = init_learner(self.cfg, self.agent, k_learner, obs_example)
        return Carry(learner, init_best(learner.agent.params, k_best))

    def _act_one_seed(self, carry: Carry, obs: jnp.ndarray, it: jnp.ndarray):
        actions, eps, learner = act(self.cfg, self.agent, carry.learner, obs, it)
        return actions, eps, carry._replace(learner=learner)

    def _observe_act_one_seed(self, carry: Carry, transitions: Transition, next_obs: jnp.ndarray,
                              it: jnp.ndarray, fill_start: jnp.ndarray):
        learner = observe_and_learn(self.cfg, self.agent, carry.learner, transitions, it,
                                    fill_start)
        actions, eps, learner = act(self.cfg, self.agent, learner, next_obs, it + 1)
        return actions, eps, learner.last_loss, learner.last_q, carry._replace(learner=learner)

    # -- all seeds ------------------------------------------------------------
    def initial_state(self) -> DriverState:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])
        return DriverState(self._init(keys), 0, 0)

    def chunks(self, state: DriverState) -> Iterator[tuple[DriverState, dict[str, np.ndarray]]]:
        cfg = self.cfg
        S, E = cfg.num_seeds, cfg.num_envs
        shape = (S, E) + self.info.obs_shape
        envs = make_envs(cfg)
        try:
            # Env seeds differ per seed and per resume point, and repeat across reruns.
            env_seeds = [s * 10_007 + e + state.iteration for s in cfg.seeds for e in range(E)]
            obs, _ = envs.reset(seed=env_seeds)
            dtype = self.info.obs_dtype
            obs = np.asarray(obs, dtype).reshape(shape)
            carry = state.carry
            it = state.iteration
            actions, eps, carry = self._act(carry, obs, jnp.int32(it))
            actions, eps = jax.device_get((actions, eps))
            ep_ret = np.zeros((S, E), np.float32)
            ep_len = np.zeros((S, E), np.int32)
            while it < cfg.iterations and not reached_stop(cfg, carry.best):
                K = min(self.chunk_iterations, cfg.iterations - it)
                logs = _empty_logs(S, K, E)
                for k in range(K):
                    actions_np = actions.reshape(S * E)
                    next_obs, reward, terminated, truncated, info = envs.step(actions_np)
                    next_obs = np.asarray(next_obs, dtype)
                    final_obs = next_obs.copy()
                    if "final_obs" in info:
                        for i in np.nonzero(info["_final_obs"])[0]:
                            final_obs[i] = info["final_obs"][i]
                    reward = np.asarray(reward, np.float32).reshape(S, E)
                    done = (terminated | truncated).reshape(S, E)
                    transitions = Transition(
                        obs, np.asarray(actions, np.int32), reward, final_obs.reshape(shape),
                        terminated.reshape(S, E).astype(np.float32),
                    )
                    logs["epsilon"][:, k] = eps
                    obs = next_obs.reshape(shape)
                    actions, eps, loss, q, carry = self._observe_act(
                        carry, transitions, obs, jnp.int32(it), jnp.int32(state.fill_start)
                    )
                    actions, eps, loss, q = jax.device_get((actions, eps, loss, q))
                    ep_ret += reward
                    ep_len += 1
                    logs["done"][:, k] = done
                    logs["episode_return"][:, k] = ep_ret
                    logs["episode_length"][:, k] = ep_len
                    logs["loss"][:, k] = loss
                    logs["q_mean"][:, k] = q
                    ep_ret[done] = 0.0
                    ep_len[done] = 0
                    it += 1
                if cfg.select_every:
                    carry = self._select(carry, it)
                state = DriverState(carry, it, state.fill_start)
                yield state, logs
        finally:
            envs.close()

    def _select(self, carry: Carry, it: int) -> Carry:
        """Greedy episodes on a fresh Gymnasium env; every seed keeps its best params."""
        from deepq.evaluate import evaluate

        cfg = self.cfg
        params = carry.learner.agent.params
        returns = evaluate(self.agent.act, params, cfg.num_seeds, cfg.env_id,
                           cfg.select_episodes, cfg.eval_epsilon, cfg.seed + 7_919 * it)
        score = jnp.asarray(returns.mean(axis=1), jnp.float32)
        return carry._replace(best=self._keep_better(carry.best, params, score))

    def params(self, state: DriverState) -> Any:
        return result_params(self.cfg, state.carry)


def _empty_logs(S: int, K: int, E: int) -> dict[str, np.ndarray]:
    return {
        "done": np.zeros((S, K, E), bool),
        "episode_return": np.zeros((S, K, E), np.float32),
        "episode_length": np.zeros((S, K, E), np.int32),
        "epsilon": np.zeros((S, K), np.float32),
        "loss": np.zeros((S, K), np.float32),
        "q_mean": np.zeros((S, K), np.float32),
    }

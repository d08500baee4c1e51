"""The host driver: any Gymnasium env with discrete actions, stepped in Python.

Seeds run in lockstep: one Gymnasium vector env holds num_seeds x num_envs sub-envs, and
one jitted call per iteration adds the last step's transitions to every seed's replay,
trains where due and picks every seed's next actions (the learner is vmapped over seeds).

Resume restores the learner exactly (params, optimizer, replay, keys, clocks); the
Gymnasium envs themselves cannot be saved, so they restart their episodes on resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq.config import Config
from deepq.drivers.base import Carry, RunState, init_best, keep_better
from deepq.drivers.common import (
    StepDriver,
    act,
    init_learner,
    learn,
    map_seeds,
    observe,
    trains_at,
)
from deepq.envs import EnvInfo, family, observation_wrappers, seeds
from deepq.envs.atari import AtariEnvs
from deepq.evaluate import evaluate
from deepq.frame_replay import FrameStep
from deepq.replay import Transition


class EnvStep(NamedTuple):
    """One vector step of the host envs, flat over seeds x envs."""

    record: Any  # what replay gets: a Transition, or a FrameStep for pixel replay
    next_obs: np.ndarray  # the observations to act on next
    reward: np.ndarray  # raw rewards
    episode_end: np.ndarray  # the logged episode ended with this step
    counted: np.ndarray  # the step belongs to an episode (not an Atari reset step)


class GymnasiumEnvs:
    """Any Gymnasium env, one sync vector env; replay gets whole transitions."""

    def __init__(self, cfg: Config, info: EnvInfo):
        import gymnasium as gym

        self.dtype = info.obs_dtype
        self.envs = gym.make_vec(
            cfg.env_id,
            num_envs=cfg.num_seeds * cfg.num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            wrappers=observation_wrappers(cfg.env_id),
        )

    def reset(self, seeds: list[int]) -> np.ndarray:
        obs, _ = self.envs.reset(seed=seeds)
        return np.asarray(obs, self.dtype)

    def step(self, obs: np.ndarray, actions: np.ndarray) -> EnvStep:
        next_obs, reward, terminated, truncated, info = self.envs.step(actions)
        next_obs = np.asarray(next_obs, self.dtype)
        final_obs = next_obs.copy()
        if "final_obs" in info:
            for i in np.nonzero(info["_final_obs"])[0]:
                final_obs[i] = info["final_obs"][i]
        reward = np.asarray(reward, np.float32)
        record = Transition(obs, actions.astype(np.int32), reward, final_obs,
                            terminated.astype(np.float32),
                            (terminated | truncated).astype(np.float32))
        return EnvStep(record, next_obs, reward, terminated | truncated,
                       np.ones_like(terminated, bool))

    def close(self) -> None:
        self.envs.close()


class PixelEnvs:
    """ALE games (envs/atari.py); replay gets one frame per step (frame_replay.py)."""

    def __init__(self, cfg: Config, info: EnvInfo):
        self.envs = AtariEnvs(cfg, cfg.num_seeds * cfg.num_envs, training=True)
        self.first = np.ones(self.envs.num_envs, bool)

    def reset(self, seeds: list[int]) -> np.ndarray:
        self.first[:] = True
        return self.envs.reset(seeds)

    def step(self, obs: np.ndarray, actions: np.ndarray) -> EnvStep:
        out = self.envs.step(actions)
        record = FrameStep(obs[..., -1], actions.astype(np.int32), out.reward,
                           out.terminated.astype(np.float32), self.first)
        self.first = out.ignored  # the step after a game over returned a reset observation
        return EnvStep(record, out.obs, out.reward, out.game_over, ~out.ignored)

    def close(self) -> None:
        self.envs.close()


class HostDriver(StepDriver):
    kind = "host"

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        seeds_axis = (0, 0, None)
        # The carry is donated: the replay is updated in place instead of copied each step.
        self._act = jax.jit(map_seeds(self._act_one_seed, seeds_axis), donate_argnums=0)
        # Adding to replay is its own call: compiled together with the sampling, XLA fuses
        # the write into the gather that reads the buffer, and that costs two copies of the
        # whole replay per update (140 ms instead of 50 for Pong at a 40k replay).
        self._observe = jax.jit(map_seeds(self._observe_one_seed), donate_argnums=0)
        # One compiled learn-and-act per value of "train now": the host knows the clock.
        self._learn_act = {
            train_now: jax.jit(map_seeds(partial(self._learn_act_one_seed, train_now=train_now),
                                         (0, 0, None, None)), donate_argnums=0)
            for train_now in (False, True)
        }
        self._init = jax.jit(jax.vmap(self._init_one_seed))
        self._keep_better = jax.jit(jax.vmap(keep_better))

    # -- one seed -------------------------------------------------------------
    def _init_one_seed(self, key: jax.Array) -> Carry:
        obs_example = jnp.zeros(self.info.obs_shape, self.info.obs_dtype)
        k_learner, k_best = jax.random.split(key)
        learner = init_learner(self.cfg, self.agent, k_learner, obs_example,
                               pixel_replay=family(self.info).pixels)
        return Carry(learner, init_best(learner.agent.params, k_best))

    def _act_one_seed(self, carry: Carry, obs: jnp.ndarray, it: jnp.ndarray):
        actions, eps, learner = act(self.cfg, self.agent, carry.learner, obs, it)
        return actions, eps, carry._replace(learner=learner)

    def _observe_one_seed(self, carry: Carry, transitions: Any) -> Carry:
        return carry._replace(learner=observe(self.cfg, carry.learner, transitions))

    def _learn_act_one_seed(self, carry: Carry, next_obs: jnp.ndarray, it: jnp.ndarray,
                            fill_start: jnp.ndarray, train_now: bool):
        learner = learn(self.cfg, self.agent, carry.learner, it, fill_start, train_now)
        actions, eps, learner = act(self.cfg, self.agent, learner, next_obs, it + 1)
        return actions, eps, learner.last_loss, learner.last_q, carry._replace(learner=learner)

    # -- all seeds ------------------------------------------------------------
    def initial_state(self) -> RunState:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])
        return RunState(self._init(keys), 0)

    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        cfg = self.cfg
        S, E = cfg.num_seeds, cfg.num_envs
        shape = (S, E) + self.info.obs_shape
        pixels = family(self.info).pixels
        envs = PixelEnvs(cfg, self.info) if pixels else GymnasiumEnvs(cfg, self.info)
        try:
            # Env seeds differ per seed and per resume point, and repeat across reruns.
            env_seeds = seeds.host_training(cfg.seeds, E, state.iteration)
            obs = envs.reset(env_seeds)
            carry = state.carry
            it = state.iteration
            actions, eps, carry = self._act(carry, obs.reshape(shape), jnp.int32(it))
            actions, eps = jax.device_get((actions, eps))
            ep_ret = np.zeros((S, E), np.float32)
            ep_len = np.zeros((S, E), np.int32)
            while it < cfg.iterations and not self.stopped(RunState(carry, it)):
                K = min(self.chunk_iterations, cfg.iterations - it)
                logs = empty_logs(S, K, E)
                for k in range(K):
                    out = envs.step(obs, actions.reshape(S * E))
                    record = jax.tree.map(lambda x: x.reshape((S, E) + x.shape[1:]), out.record)
                    logs["epsilon"][:, k] = eps
                    obs = out.next_obs
                    train_now = trains_at(cfg, it, self.fill_start)
                    carry = self._observe(carry, record)
                    actions, eps, loss, q, carry = self._learn_act[train_now](
                        carry, obs.reshape(shape), jnp.int32(it), jnp.int32(self.fill_start)
                    )
                    actions, eps, loss, q = jax.device_get((actions, eps, loss, q))
                    counted = out.counted.reshape(S, E)
                    done = out.episode_end.reshape(S, E)
                    ep_ret += np.where(counted, out.reward.reshape(S, E), 0.0)
                    ep_len += counted
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
                state = RunState(carry, it)
                yield state, logs
        finally:
            envs.close()

    def _select(self, carry: Carry, it: int) -> Carry:
        """Greedy episodes on fresh reference envs; every seed keeps its best params."""
        cfg = self.cfg
        params = carry.learner.agent.params
        returns = evaluate(self.agent.act, params, cfg, self.info, cfg.select_episodes,
                           cfg.eval_epsilon, seeds.host_selection(cfg.seed, it))
        score = jnp.asarray(returns.mean(axis=1), jnp.float32)
        return carry._replace(best=self._keep_better(carry.best, params, score))


def empty_logs(S: int, K: int, E: int) -> dict[str, np.ndarray]:
    return {
        "done": np.zeros((S, K, E), bool),
        "episode_return": np.zeros((S, K, E), np.float32),
        "episode_length": np.zeros((S, K, E), np.int32),
        "epsilon": np.zeros((S, K), np.float32),
        "loss": np.zeros((S, K), np.float32),
        "q_mean": np.zeros((S, K), np.float32),
    }

"""PQN's jitted driver (agents/pqn.py): rollouts of every env, then updates on them, all in
one compiled chunk per seed, seeds vmapped and split over the cores as the DQN driver's.

One iteration is still one step of the `num_envs` envs, so the clock, the metrics rows, the
selection between chunks and the checkpoints are the jitted DQN driver's; a chunk is a scan
over whole rollouts of `rollout_steps` iterations, and the run lasts whole rollouts (its
total_steps rounded up to a multiple of num_envs x rollout_steps).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from deepq.agents.base import AgentState
from deepq.agents.pqn import Rollout, lambda_returns, rollouts
from deepq.config import Config
from deepq.drivers.base import Carry, init_best
from deepq.drivers.common import StepLog, explore_rate
from deepq.drivers.jitted import EnvLoop, JittedDriver
from deepq.envs import EnvInfo


class RolloutLearner(NamedTuple):
    """One seed's learning state: the agent and its key, and the last update's metrics."""

    agent: AgentState
    key: jax.Array
    last_loss: jnp.ndarray
    last_q: jnp.ndarray


class JittedRolloutDriver(JittedDriver):
    has_replay = False

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        T = cfg.rollout_steps
        self.total_iterations = rollouts(cfg) * T
        self.chunk_iterations = min(max(self.chunk_iterations // T, 1) * T,
                                    self.total_iterations)

    def _init_one_seed(self, key: jax.Array) -> Carry:
        cfg, env, params = self.cfg, self.env, self.env_params
        k_learner, k_env, k_reset, k_best = jax.random.split(key, 4)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, cfg.num_envs), params)
        obs = obs.astype(self.info.obs_dtype)
        k_agent, k_learner = jax.random.split(k_learner)
        nan = jnp.full((), jnp.nan, jnp.float32)
        learner = RolloutLearner(self.agent.init(k_agent, obs[0]), k_learner, nan, nan)
        zeros = jnp.zeros(cfg.num_envs, jnp.float32)
        no_action = jnp.zeros(cfg.num_envs, jnp.int32)
        loop = EnvLoop(state, obs, k_env, zeros, no_action, no_action)
        return Carry(learner, init_best(learner.agent.params, k_best), loop)

    def _iterate(self, carry: Carry, start: jnp.ndarray, fill_start: jnp.ndarray):
        T = self.cfg.rollout_steps

        def body(c: Carry, it: jnp.ndarray):
            # The last chunk may run past the end of the run: those rollouts do nothing.
            return jax.lax.cond(it < self.total_iterations, lambda c: self._rollout(c, it),
                                lambda c: (c, _idle_logs(T, self.cfg.num_envs)), c)

        starts = start + T * jnp.arange(self.chunk_iterations // T, dtype=jnp.int32)
        carry, logs = jax.lax.scan(body, carry, starts)  # logs [R, T, ...]
        return carry, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), logs)

    def _rollout(self, carry: Carry, it: jnp.ndarray) -> tuple[Carry, StepLog]:
        """`rollout_steps` steps of every env from iteration `it` at one epsilon, then
        PQN's update on their Q(lambda) returns."""
        cfg, agent = self.cfg, self.agent
        learner, best, loop = carry
        params = learner.agent.params
        eps = explore_rate(cfg, it, learner.agent.updates)

        def one_step(c, _):
            key, loop = c
            key, k_act = jax.random.split(key)
            actions = agent.act(params, loop.obs, k_act, eps)
            loop, transitions, done, ret, length = self._step_envs(loop, actions)
            log = StepLog(done, ret, length, eps, learner.last_loss, learner.last_q)
            return (key, loop), (transitions, log)

        (key, loop), (steps, logs) = jax.lax.scan(one_step, (learner.key, loop), None,
                                                  cfg.rollout_steps)
        T, E = steps.reward.shape
        flat = lambda x: x.reshape((T * E,) + x.shape[2:])  # noqa: E731
        next_q = agent.q_values(params, flat(steps.next_obs)).max(axis=-1).reshape(T, E)
        reward = jnp.clip(steps.reward, -1.0, 1.0) if cfg.clip_rewards else steps.reward
        targets = lambda_returns(reward * cfg.reward_scale, steps.terminated, steps.last,
                                 next_q, cfg.gamma, cfg.q_lambda)
        batch = Rollout(flat(steps.obs), flat(steps.action), flat(targets),
                        jnp.ones(T * E, jnp.float32))
        key, k_update = jax.random.split(key)
        agent_state, metrics = agent.update(learner.agent, batch, k_update)
        learner = RolloutLearner(agent_state, key, metrics["loss"], metrics["q_mean"])
        return Carry(learner, best, loop), logs


def _idle_logs(steps: int, num_envs: int) -> Any:
    nan = jnp.full((steps,), jnp.nan, jnp.float32)
    return StepLog(jnp.zeros((steps, num_envs), bool), jnp.zeros((steps, num_envs), jnp.float32),
                   jnp.zeros((steps, num_envs), jnp.int32), nan, nan, nan)

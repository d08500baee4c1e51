"""The jitted driver: env and agent in one compiled loop, seeds vmapped.

A run is a sequence of chunks; each chunk is `lax.scan` over `chunk_iterations` vector-env
steps of every seed at once (`jit(vmap(chunk))`). Between chunks the host logs, checkpoints
and checks for divergence; the compiled program is the same for every chunk, so a run cut
into chunks computes exactly what one long scan would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq.agents.dqn import make_agent
from deepq.config import Config
from deepq.drivers.common import LearnerState, StepLog, act, init_learner, observe_and_learn
from deepq.envs import EnvInfo, make_gymnax
from deepq.replay import Transition


class EnvLoop(NamedTuple):
    """One seed's envs: gymnax state, current observation and running episode stats."""

    state: Any
    obs: jnp.ndarray  # [E, ...]
    key: jax.Array
    episode_return: jnp.ndarray  # [E]
    episode_length: jnp.ndarray  # [E]


class Carry(NamedTuple):
    learner: LearnerState
    env: EnvLoop


class DriverState(NamedTuple):
    """All seeds (leading axis S on every leaf of `carry`) and the shared clock."""

    carry: Carry
    iteration: int  # vector-env steps done by every seed
    fill_start: int  # iteration the replay started filling at


class JittedDriver:
    kind = "jitted"

    def __init__(self, cfg: Config, info: EnvInfo):
        self.cfg = cfg
        self.info = info
        self.agent = make_agent(cfg, info.num_actions)
        self.env, self.env_params = make_gymnax(info.env_id)
        self.chunk_iterations = max(1, min(cfg.chunk_steps // cfg.num_envs, cfg.iterations))
        self._chunk = jax.jit(
            jax.vmap(self._chunk_one_seed, in_axes=(0, None, None)), donate_argnums=0
        )
        self._init = jax.jit(jax.vmap(self._init_one_seed))

    # -- one seed -------------------------------------------------------------
    def _init_one_seed(self, key: jax.Array) -> Carry:
        cfg, env, params = self.cfg, self.env, self.env_params
        k_learner, k_env, k_reset = jax.random.split(key, 3)
        reset_keys = jax.random.split(k_reset, cfg.num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
        obs = obs.astype(jnp.float32)
        learner = init_learner(cfg, self.agent, k_learner, obs[0])
        zeros = jnp.zeros(cfg.num_envs, jnp.float32)
        loop = EnvLoop(state, obs, k_env, zeros, jnp.zeros(cfg.num_envs, jnp.int32))
        return Carry(learner, loop)

    def _step(self, carry: Carry, it: jnp.ndarray, fill_start: jnp.ndarray):
        cfg, env, params = self.cfg, self.env, self.env_params
        learner, loop = carry
        actions, eps, learner = act(cfg, self.agent, learner, loop.obs, it)
        key, sub = jax.random.split(loop.key)
        step_keys = jax.random.split(sub, cfg.num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(step_keys, loop.state, actions, params)
        reward = reward.astype(jnp.float32)
        final_obs = info["final_observation"].astype(jnp.float32)
        # Truncation (time limit) is not terminal: the target still bootstraps from s'.
        transitions = Transition(loop.obs, actions, reward, final_obs,
                                 terminated.astype(jnp.float32))
        learner = observe_and_learn(cfg, self.agent, learner, transitions, it, fill_start)
        done = jnp.logical_or(terminated, truncated)
        ret = loop.episode_return + reward
        length = loop.episode_length + 1
        log = StepLog(done, ret, length, eps, learner.last_loss, learner.last_q)
        loop = EnvLoop(state, obs.astype(jnp.float32), key, jnp.where(done, 0.0, ret),
                       jnp.where(done, 0, length))
        return Carry(learner, loop), log

    def _chunk_one_seed(self, carry: Carry, start: jnp.ndarray, fill_start: jnp.ndarray):
        total = self.cfg.iterations

        def body(c: Carry, it: jnp.ndarray):
            # The last chunk may run past the end of the run: those iterations do nothing.
            return jax.lax.cond(
                it < total,
                lambda c: self._step(c, it, fill_start),
                lambda c: (c, _idle_log(self.cfg.num_envs)),
                c,
            )

        its = start + jnp.arange(self.chunk_iterations, dtype=jnp.int32)
        return jax.lax.scan(body, carry, its)

    # -- all seeds ------------------------------------------------------------
    def initial_state(self) -> DriverState:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])
        return DriverState(self._init(keys), 0, 0)

    def chunks(self, state: DriverState) -> Iterator[tuple[DriverState, dict[str, np.ndarray]]]:
        """Run chunk after chunk from `state`; yield the new state and its step logs.

        Logs are numpy arrays [S, K, E] (done, episode_return, episode_length) and
        [S, K] (epsilon, loss, q_mean) for the K iterations of the chunk that ran.
        """
        while state.iteration < self.cfg.iterations:
            carry, logs = self._chunk(
                state.carry, jnp.int32(state.iteration), jnp.int32(state.fill_start)
            )
            ran = min(self.chunk_iterations, self.cfg.iterations - state.iteration)
            logs = {k: np.asarray(v)[:, :ran] for k, v in logs._asdict().items()}
            state = DriverState(carry, state.iteration + ran, state.fill_start)
            yield state, logs

    @staticmethod
    def params(state: DriverState):
        return state.carry.learner.agent.params


def _idle_log(num_envs: int) -> StepLog:
    nan = jnp.full((), jnp.nan, jnp.float32)
    return StepLog(jnp.zeros(num_envs, bool), jnp.zeros(num_envs, jnp.float32),
                   jnp.zeros(num_envs, jnp.int32), nan, nan, nan)

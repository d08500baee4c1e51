"""The jitted driver: env and agent in one compiled loop, seeds vmapped.

A run is a sequence of chunks; each chunk is `lax.scan` over `chunk_iterations` vector-env
steps of every seed at once (`jit(vmap(chunk))`). Between chunks the host logs, checkpoints
and checks for divergence; the compiled program is the same for every chunk, so a run cut
into chunks computes exactly what one long scan would.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from deepq.config import Config
from deepq.drivers.base import Carry, RunState, host_logs, init_best, keep_better
from deepq.drivers.common import (
    StepDriver,
    StepLog,
    act,
    init_learner,
    map_seeds,
    observe_and_learn,
)
from deepq.envs import EnvInfo, family
from deepq.envs.sticky import sticky
from deepq.evaluate import gymnax_returns
from deepq.replay import Transition


class EnvLoop(NamedTuple):
    """One seed's envs: gymnax state, current observation and running episode stats."""

    state: Any
    obs: jnp.ndarray  # [E, ...]
    key: jax.Array
    episode_return: jnp.ndarray  # [E]
    episode_length: jnp.ndarray  # [E]
    prev_action: jnp.ndarray  # [E] what the env did last (for sticky actions)


class JittedDriver(StepDriver):
    kind = "jitted"

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        self.total_iterations = cfg.iterations  # vector-env steps per seed in the run
        self.env, self.env_params = family(info).jax_env(cfg)
        chunk = map_seeds(self._chunk_one_seed, (0, None, None))
        init = jax.vmap(self._init_one_seed)
        self.mesh = seed_mesh(cfg.num_seeds)
        if self.mesh is not None:  # seeds split over the CPU cores, one block per core
            seeds, shared = P("seed"), P()
            chunk = jax.shard_map(chunk, mesh=self.mesh, in_specs=(seeds, shared, shared),
                                  out_specs=(seeds, seeds), check_vma=False)
            init = jax.shard_map(init, mesh=self.mesh, in_specs=seeds, out_specs=seeds,
                                 check_vma=False)
        self._chunk = jax.jit(chunk, donate_argnums=0)
        self._compiled_chunk: Future | None = None
        self._init = jax.jit(init)

    # -- one seed -------------------------------------------------------------
    def _init_one_seed(self, key: jax.Array) -> Carry:
        cfg, env, params = self.cfg, self.env, self.env_params
        k_learner, k_env, k_reset, k_best = jax.random.split(key, 4)
        reset_keys = jax.random.split(k_reset, cfg.num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
        obs = obs.astype(self.info.obs_dtype)
        learner = init_learner(cfg, self.agent, k_learner, obs[0])
        zeros = jnp.zeros(cfg.num_envs, jnp.float32)
        no_action = jnp.zeros(cfg.num_envs, jnp.int32)
        loop = EnvLoop(state, obs, k_env, zeros, no_action, no_action)
        return Carry(learner, init_best(learner.agent.params, k_best), loop)

    def _step(self, carry: Carry, it: jnp.ndarray, fill_start: jnp.ndarray):
        learner, best, loop = carry
        actions, eps, learner = act(self.cfg, self.agent, learner, loop.obs, it)
        loop, transitions, done, ret, length = self._step_envs(loop, actions)
        learner = observe_and_learn(self.cfg, self.agent, learner, transitions, it, fill_start)
        log = StepLog(done, ret, length, eps, learner.last_loss, learner.last_q)
        return Carry(learner, best, loop), log

    def _step_envs(self, loop: EnvLoop, actions: jnp.ndarray):
        """One step of every env: the next loop state, the step's Transitions, and which
        episodes ended with it and their returns and lengths so far."""
        cfg, env, params = self.cfg, self.env, self.env_params
        key, sub = jax.random.split(loop.key)
        env_actions = actions
        if cfg.sticky_actions > 0:
            key, k_sticky = jax.random.split(key)
            env_actions = sticky(k_sticky, loop.prev_action, actions, cfg.sticky_actions)
        step_keys = jax.random.split(sub, cfg.num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(step_keys, loop.state, env_actions, params)
        obs = obs.astype(self.info.obs_dtype)
        reward = reward.astype(jnp.float32)
        final_obs = info["final_observation"].astype(self.info.obs_dtype)
        done = jnp.logical_or(terminated, truncated)
        # Truncation (time limit) is not terminal: the target still bootstraps from s'.
        # Replay stores the agent's choice, also when a sticky env repeated its last action.
        transitions = Transition(loop.obs, actions, reward, final_obs,
                                 terminated.astype(jnp.float32), done.astype(jnp.float32))
        ret = loop.episode_return + reward
        length = loop.episode_length + 1
        loop = EnvLoop(state, obs, key, jnp.where(done, 0.0, ret), jnp.where(done, 0, length),
                       jnp.where(done, 0, env_actions))
        return loop, transitions, done, ret, length

    def _chunk_one_seed(self, carry: Carry, start: jnp.ndarray, fill_start: jnp.ndarray):
        carry, logs = self._iterate(carry, start, fill_start)
        if self.cfg.select_every:
            key, sub = jax.random.split(carry.best.key)
            params = carry.learner.agent.params
            score = self._greedy_return(params, sub)
            carry = carry._replace(best=keep_better(carry.best._replace(key=key), params, score))
        return carry, logs

    def _iterate(self, carry: Carry, start: jnp.ndarray, fill_start: jnp.ndarray):
        """The chunk's iterations from `start`: (carry, StepLogs [chunk_iterations, ...])."""
        total = self.total_iterations

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

    def _greedy_return(self, params: Any, key: jax.Array) -> jnp.ndarray:
        """Mean return of `select_episodes` fresh episodes played at eval_epsilon."""
        cfg = self.cfg
        return gymnax_returns(self.agent.act, params, self.env, self.env_params,
                              cfg.select_episodes, key, cfg.eval_epsilon,
                              cfg.sticky_actions).mean()

    # -- all seeds ------------------------------------------------------------
    def initial_state(self) -> RunState:
        # XLA compiles the chunk on a second thread while this one compiles and runs the
        # init: a cold start pays for the longer of the two, not their sum.
        self._start_compiling_chunk()
        return RunState(self._init(self._seed_keys()), 0)

    def _seed_keys(self) -> jax.Array:
        return jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])

    def _start_compiling_chunk(self) -> Future:
        if self._compiled_chunk is None:
            self._compiled_chunk = ThreadPoolExecutor(1).submit(self._compile_chunk)
        return self._compiled_chunk

    def _seed_sharding(self):
        if self.mesh is not None:
            return NamedSharding(self.mesh, P("seed"))
        return SingleDeviceSharding(jax.devices()[0])

    def _compile_chunk(self):
        sharding = self._seed_sharding()
        carry = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                             jax.eval_shape(self._init, self._seed_keys()))
        clock = jax.ShapeDtypeStruct((), jnp.int32)
        return self._chunk.lower(carry, clock, clock).compile()

    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        """Run chunk after chunk from `state`; yield the new state and its step logs.

        Logs are numpy arrays [S, K, E] (done, episode_return, episode_length) and
        [S, K] (epsilon, loss, q_mean) for the K iterations of the chunk that ran.
        """
        chunk = self._start_compiling_chunk().result()
        # The compiled chunk takes the carry split over its devices (a restored one is not).
        state = state._replace(carry=jax.device_put(state.carry, self._seed_sharding()))
        while state.iteration < self.total_iterations and not self.stopped(state):
            carry, logs = chunk(state.carry, np.int32(state.iteration),
                                np.int32(self.fill_start))
            ran = min(self.chunk_iterations, self.total_iterations - state.iteration)
            logs = host_logs(logs, ran)
            state = RunState(carry, state.iteration + ran)
            yield state, logs


def seed_mesh(num_seeds: int) -> Mesh | None:
    """A mesh over the CPU devices that the seeds split evenly across, or None for one.

    On the CPU every core is a JAX device (see deepq/__init__.py), and a vmapped update of
    many seeds is compute-bound on one core, so each core runs a block of the seeds.
    """
    devices = jax.devices()
    if devices[0].platform != "cpu":
        return None
    n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    return Mesh(np.array(devices[:n]), ("seed",)) if n > 1 else None


def _idle_log(num_envs: int) -> StepLog:
    nan = jnp.full((), jnp.nan, jnp.float32)
    return StepLog(jnp.zeros(num_envs, bool), jnp.zeros(num_envs, jnp.float32),
                   jnp.zeros(num_envs, jnp.int32), nan, nan, nan)

"""REINFORCE's drivers: whole episodes, `batch_episodes` at a time, then one update.

Every batch starts `batch_episodes` fresh episodes per seed, plays each one to its end with
the current policy and then updates once on all of them (Karpathy 2016: batches of 10
episodes). The episodes of a batch run side by side, in one compiled loop for gymnax envs
or in lockstep on the host for Gymnasium envs: that changes the wall time, not the
estimator, since every update still sees `batch_episodes` complete episodes of the policy
it updates, as a sequential loop would.

The clock is episodes per seed (`total_episodes`, `checkpoint_every`); rows of metrics.csv
still carry each seed's true env steps. A checkpoint sits between batches, and a batch
depends only on the learner (its key included), so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq.agents import make_agent
from deepq.agents.base import AgentState
from deepq.agents.reinforce import EpisodeBatch
from deepq.config import Config
from deepq.drivers.base import Carry, Driver, RunState, host_logs
from deepq.drivers.common import map_seeds
from deepq.envs import EnvInfo, family, rollout, seeds
from deepq.envs.pools import LocalEnvs, WorkerEnvs
from deepq.networks import sparse_rows

CHUNK_EPISODES = 100  # episodes per seed between two looks from the host (logs, checkpoints)


class Learner(NamedTuple):
    agent: AgentState
    key: jax.Array
    env_steps: jnp.ndarray  # this seed's env steps so far (int32)


class BatchLog(NamedTuple):
    episode_return: jnp.ndarray  # [B]
    episode_length: jnp.ndarray  # [B]
    env_steps: jnp.ndarray  # the seed's env steps after the batch
    loss: jnp.ndarray  # the update's policy loss per step


class EpisodeDriver(Driver):
    """REINFORCE's drivers: the clock counts episodes per seed; an iteration is a batch."""

    clock_column = "episode"
    clock_unit = "episodes"

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info, make_agent(cfg, info.num_actions))
        self.chunk_batches = max(1, min(CHUNK_EPISODES // cfg.batch_episodes, cfg.batches))
        self._init = jax.jit(jax.vmap(self._init_one_seed))

    def _init_one_seed(self, key: jax.Array) -> Carry:
        k_agent, key = jax.random.split(key)
        example = jnp.zeros(self.info.obs_shape, self.info.obs_dtype)
        return Carry(Learner(self.agent.init(k_agent, example), key, jnp.zeros((), jnp.int32)))

    def initial_state(self) -> RunState:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])
        return RunState(self._init(keys), 0)

    def clock(self, state: RunState) -> int:
        return state.iteration * self.cfg.batch_episodes

    @property
    def total(self) -> int:
        return self.cfg.total_episodes

    def env_steps(self, state: RunState) -> list[int]:
        return [int(x) for x in np.asarray(state.carry.learner.env_steps)]

    def rows(self, logs: dict[str, np.ndarray], prev: RunState, episodes: list[int],
             steps_per_sec: float) -> list[dict]:
        """One metrics row per episode. A batch's episodes are numbered, and given env
        steps, as if played one after the other."""
        rows = []
        lengths = logs["episode_length"]  # [S, K, B]
        for s, seed in enumerate(self.cfg.seeds):
            for k in range(lengths.shape[1]):
                before = int(logs["env_steps"][s, k]) - int(lengths[s, k].sum())
                ends = before + np.cumsum(lengths[s, k])
                for e in range(lengths.shape[2]):
                    episodes[s] += 1
                    rows.append({
                        "seed": seed, "env_step": int(ends[e]), "episode": episodes[s],
                        "return": float(logs["episode_return"][s, k, e]),
                        "length": int(lengths[s, k, e]), "epsilon": 0.0,
                        "loss": float(logs["loss"][s, k]), "q_mean": math.nan,
                        "steps_per_sec": steps_per_sec,
                    })
        return rows


def _batch_log(learner: Learner, batch: EpisodeBatch, loss: jnp.ndarray) -> BatchLog:
    return BatchLog(jnp.sum(jnp.where(batch.mask, batch.reward, 0.0), axis=0),
                    batch.mask.sum(axis=0).astype(jnp.int32), learner.env_steps, loss)


def _learn(agent, learner: Learner, batch: EpisodeBatch) -> tuple[Learner, BatchLog]:
    key, sub = jax.random.split(learner.key)
    agent_state, metrics = agent.update(learner.agent, batch, sub)
    steps = learner.env_steps + batch.mask.sum().astype(jnp.int32)
    learner = Learner(agent_state, key, steps)
    return learner, _batch_log(learner, batch, metrics["loss"])


# ---------------------------------------------------------------------------
# gymnax envs: a whole chunk of batches is one compiled program, seeds vmapped.


class JittedEpisodeDriver(EpisodeDriver):
    kind = "jitted"

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        self.env, self.env_params = family(info).jax_env(cfg)
        self._chunk = jax.jit(map_seeds(self._chunk_one_seed, (0, None)), donate_argnums=0)

    def _play(self, params: Any, key: jax.Array) -> EpisodeBatch:
        """`batch_episodes` episodes from fresh resets, each to its end (or the env's step
        limit), padded to the limit; the loop stops once all of them have ended."""
        cfg, env, env_params = self.cfg, self.env, self.env_params
        B, T = cfg.batch_episodes, env_params.max_steps_in_episode
        obs = jnp.zeros((B,) + self.info.obs_shape, self.info.obs_dtype)
        empty = EpisodeBatch(jnp.zeros((T,) + obs.shape, obs.dtype), jnp.zeros((T, B), jnp.int32),
                             jnp.zeros((T, B), jnp.float32), jnp.zeros((T, B), bool))

        def keep(batch, t, obs, actions, reward, alive):
            return EpisodeBatch(batch.obs.at[t].set(obs), batch.action.at[t].set(actions),
                                batch.reward.at[t].set(jnp.where(alive, reward, 0.0)),
                                batch.mask.at[t].set(alive))

        return rollout.play(env, env_params, lambda o, k: self.agent.act(params, o, k, 0.0), key,
                            B, keep, empty, cfg.sticky_actions, self.info.obs_dtype)

    def _chunk_one_seed(self, carry: Carry, start: jnp.ndarray) -> tuple[Carry, BatchLog]:
        def one_batch(learner: Learner) -> tuple[Learner, BatchLog]:
            key, k_play = jax.random.split(learner.key)
            batch = self._play(learner.agent.params, k_play)
            return _learn(self.agent, learner._replace(key=key), batch)

        def idle(learner: Learner) -> tuple[Learner, BatchLog]:
            B = self.cfg.batch_episodes
            return learner, BatchLog(jnp.zeros(B, jnp.float32), jnp.zeros(B, jnp.int32),
                                     learner.env_steps, jnp.full((), jnp.nan, jnp.float32))

        def body(learner: Learner, b: jnp.ndarray):
            # The last chunk may run past the end of the run: those batches do nothing.
            return jax.lax.cond(b < self.cfg.batches, one_batch, idle, learner)

        batches = start + jnp.arange(self.chunk_batches, dtype=jnp.int32)
        learner, logs = jax.lax.scan(body, carry.learner, batches)
        return Carry(learner), logs

    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        while state.iteration < self.cfg.batches:
            carry, logs = self._chunk(state.carry, np.int32(state.iteration))
            ran = min(self.chunk_batches, self.cfg.batches - state.iteration)
            logs = host_logs(logs, ran)
            state = RunState(carry, state.iteration + ran)
            yield state, logs


# ---------------------------------------------------------------------------
# Gymnasium envs: stepped in Python, one jitted call per step picks every action.


class HostEpisodeDriver(EpisodeDriver):
    kind = "host"

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        # Acting takes the params and a per-batch key, not the whole learner: a call per
        # step with few arguments costs ~0.2 ms less here than one that threads the
        # learner (optimizer state included) through.
        self._act = jax.jit(map_seeds(self._act_one_seed, (0, 0, 0, None)))
        self._split = jax.jit(jax.vmap(jax.random.split))
        self._update = jax.jit(map_seeds(self._update_one_seed), donate_argnums=0)

    def _act_one_seed(self, params: Any, key: jax.Array, obs: jnp.ndarray, t: jnp.ndarray):
        return self.agent.act(params, obs, jax.random.fold_in(key, t), 0.0)

    def _update_one_seed(self, learner: Learner, batch: EpisodeBatch):
        return _learn(self.agent, learner, batch)

    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        cfg = self.cfg
        n = cfg.num_seeds * cfg.batch_episodes
        envs = WorkerEnvs(cfg.env_id, n, cfg.env_workers) if cfg.env_workers else \
            LocalEnvs(cfg.env_id, n)
        try:
            learner, it = state.carry.learner, state.iteration
            while it < cfg.batches:
                logs = []
                for _ in range(min(self.chunk_batches, cfg.batches - it)):
                    batch, learner = self._play(envs, learner, it)
                    learner, log = self._update(learner, batch)
                    logs.append(jax.device_get(log))
                    it += 1
                logs = {k: np.stack([getattr(x, k) for x in logs], axis=1)
                        for k in BatchLog._fields}
                state = RunState(Carry(learner), it)
                yield state, logs
        finally:
            envs.close()

    def _play(self, envs: Any, learner: Learner, batch_index: int):
        """One batch: every env plays one episode from a reset seeded by (seed, batch, env),
        so a resumed run replays the same episodes. The env seeds are hashes of that triple
        (numpy's SeedSequence): they never line up with evaluation's seeds."""
        cfg, dtype = self.cfg, self.info.obs_dtype
        S, B = cfg.num_seeds, cfg.batch_episodes
        env_seeds = seeds.episode_batch(cfg.seeds, batch_index, B)
        keys = self._split(learner.key)  # [S, 2, key]: the learner's next key, the batch's
        learner, play_key = learner._replace(key=keys[:, 0]), keys[:, 1]
        params = learner.agent.params

        def policy(obs: np.ndarray, t: int) -> np.ndarray:
            actions = self._act(params, play_key, self._net_input(obs.reshape((S, B, -1))),
                                np.int32(t))
            return np.asarray(actions).reshape(S * B)

        def step(actions: np.ndarray, alive: np.ndarray):
            next_obs, reward, ended = envs.step(actions, alive)
            return next_obs.astype(dtype), reward, ended

        def keep(steps: list, t, obs, actions, reward, alive) -> list:
            steps.append((obs, actions, reward, alive))
            return steps

        obs = envs.reset(env_seeds).astype(dtype)
        steps = rollout.play_host(obs, step, policy, S * B, keep, [])
        return _stack_padded(steps, S, B, self._net_input), learner

    def _net_input(self, obs: np.ndarray) -> Any:
        """What the network gets: the observations, or with `sparse_inputs` their non-zeros
        (networks.SparseRows; the same products, ~1% of the work on difference frames)."""
        if not self.cfg.sparse_inputs:
            return obs
        return sparse_rows(obs.reshape(obs.shape[:-len(self.info.obs_shape)] + (-1,)))


def _stack_padded(steps: list, S: int, B: int, net_input: Any) -> EpisodeBatch:
    """Per-step records -> an EpisodeBatch [S, T', B, ...] padded with masked steps to T',
    the next power of two of at least 64: each T' is one compiled update (~0.8 s here), so
    few of them beat a tighter fit (CartPole's T grows from ~20 to 500, Pong's ~1-5k).
    `net_input` turns the [T, S*B, ...] observations into what the network gets before the
    padding: with sparse inputs, the non-zeros are far less to copy. Padded steps are zeros
    (SparseRows: column 0, value 0), masked out of the loss."""
    T = len(steps)
    padded = max(64, 1 << (T - 1).bit_length())
    obs, action, reward, mask = (np.stack(parts) for parts in zip(*steps))
    pad = padded - T

    def shaped(x: np.ndarray) -> np.ndarray:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
        return np.ascontiguousarray(np.swapaxes(x.reshape((padded, S, B) + x.shape[2:]), 0, 1))

    return EpisodeBatch(jax.tree.map(shaped, net_input(obs)), shaped(action.astype(np.int32)),
                        shaped(reward), shaped(mask))

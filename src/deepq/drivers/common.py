"""What both drivers share: the per-seed loop state, the training round, and the clock.

The loop is the same in both drivers, one vector-env step per iteration `it`:
  act (epsilon from the schedule) -> env step -> add transitions to replay
  -> every `train_freq` iterations after `learning_starts`: `gradient_steps` updates.
Only who steps the env differs: JAX inside the compiled loop, or Python on the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq import frame_replay, prioritized, replay, schedules
from deepq.agents import make_agent
from deepq.agents.base import Agent, AgentState
from deepq.agents.dqn import expected_updates
from deepq.config import Config
from deepq.drivers.base import Driver, RunState
from deepq.report import episode_rows


class LearnerState(NamedTuple):
    """One seed's learning state: everything but the env."""

    agent: AgentState
    replay: replay.ReplayState
    key: jax.Array
    last_loss: jnp.ndarray
    last_q: jnp.ndarray
    priorities: Any = None  # prioritized replay's sum tree over the replay's slots


class StepLog(NamedTuple):
    """What one iteration reports: per env [E] and per seed scalars."""

    done: jnp.ndarray
    episode_return: jnp.ndarray
    episode_length: jnp.ndarray
    epsilon: jnp.ndarray
    loss: jnp.ndarray
    q_mean: jnp.ndarray


class StepDriver(Driver):
    """The DQN family's drivers (jitted and host): a clock of env steps per seed,
    `iteration * num_envs`, and a replay buffer in every seed's learner."""

    clock_column = "env_step"
    clock_unit = "steps"
    has_replay = True

    def __init__(self, cfg: Config, info: Any):
        super().__init__(cfg, info, make_agent(cfg, info.num_actions))
        self.chunk_iterations = chunk_iterations(cfg)

    def clock(self, state: RunState) -> int:
        return state.iteration * self.cfg.num_envs

    @property
    def total(self) -> int:
        return self.cfg.total_steps

    def env_steps(self, state: RunState) -> list[int]:
        return [self.clock(state)] * self.cfg.num_seeds

    def rows(self, logs: dict[str, np.ndarray], prev: RunState, episodes: list[int],
             steps_per_sec: float) -> list[dict]:
        return episode_rows(logs, self.cfg.seeds, prev.iteration, self.cfg.num_envs, episodes,
                            steps_per_sec)


def chunk_iterations(cfg: Config) -> int:
    """Vector-env steps per chunk: `chunk_steps`, or `select_every` when selection is on
    (the selection evaluations run between chunks)."""
    steps = cfg.select_every or cfg.chunk_steps
    return max(1, min(steps // cfg.num_envs, cfg.iterations))


def map_seeds(fn: Callable, in_axes: int | tuple = 0) -> Callable:
    """`jax.vmap(fn, in_axes)` over the leading seed axis (outputs stacked on axis 0), except
    when that axis has size 1: then the one seed runs unbatched. A vmap of size 1 still
    gives every matmul a batch dimension, and XLA's CPU code for those is far slower: one
    MinAtar DQN update takes 1.08 ms vmapped over 1 seed against 0.61 ms unbatched (the
    drivers run one seed per core, so this is their common case)."""
    batched = jax.vmap(fn, in_axes=in_axes)

    def call(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        sizes = {leaf.shape[0] for arg, axis in zip(args, axes) if axis is not None
                 for leaf in jax.tree.leaves(arg)}
        if sizes != {1}:
            return batched(*args)
        one = [arg if axis is None else jax.tree.map(lambda x: x[0], arg)
               for arg, axis in zip(args, axes)]
        return jax.tree.map(lambda x: jnp.asarray(x)[None], fn(*one))

    return call


def init_learner(cfg: Config, agent: Agent, key: jax.Array, obs_example: jnp.ndarray,
                 pixel_replay: bool = False):
    """A fresh learner. `pixel_replay`: observations are frame stacks [H, W, k] of uint8,
    stored one frame per step (frame_replay.py) instead of whole transitions."""
    k_agent, key = jax.random.split(key)
    obs_example = jnp.asarray(obs_example)  # replay keeps the env's dtype (bool, uint8, f32)
    if pixel_replay:
        *frame, stack = obs_example.shape
        buffer = frame_replay.init(cfg.buffer_size, cfg.num_envs, tuple(frame), stack)
    else:
        example = replay.Transition(
            obs=obs_example,
            action=jnp.zeros((), jnp.int32),
            reward=jnp.zeros((), jnp.float32),
            next_obs=obs_example,
            terminated=jnp.zeros((), jnp.float32),
            last=jnp.zeros((), jnp.float32),
        )
        capacity = cfg.buffer_size
        if cfg.n_step > 1:  # each env's transitions n apart stay num_envs slots apart
            capacity = max(capacity // cfg.num_envs, 1) * cfg.num_envs
        buffer = replay.init(capacity, example)
    nan = jnp.full((), jnp.nan, jnp.float32)
    slots = buffer.frames.shape[0] * buffer.frames.shape[1] if pixel_replay \
        else replay.capacity(buffer)
    tree = prioritized.init(slots) if cfg.prioritized else None
    return LearnerState(agent.init(k_agent, obs_example), buffer, key, nan, nan, tree)


def add_to_replay(buffer: Any, records: Any) -> Any:
    if isinstance(buffer, frame_replay.FrameReplayState):
        return frame_replay.add(buffer, records)
    return replay.add_batch(buffer, records)


def sample_replay(cfg: Config, learner: LearnerState,
                  key: jax.Array) -> tuple[replay.Batch, jnp.ndarray | None]:
    """A training batch, and with prioritized replay the slots it came from."""
    buffer = learner.replay
    if isinstance(buffer, frame_replay.FrameReplayState):
        return _sample_frames(cfg, learner, key)
    if not cfg.prioritized:
        if cfg.n_step > 1:
            return replay.sample_n_step(buffer, key, cfg.batch_size, cfg.n_step, cfg.gamma,
                                        cfg.num_envs), None
        return replay.one_step(replay.sample(buffer, key, cfg.batch_size), cfg.gamma), None
    _, count = replay.sampleable(buffer, cfg.n_step, cfg.num_envs)
    slots, weight = prioritized.sample(learner.priorities, key, cfg.batch_size, count,
                                       priority_beta(cfg, learner.agent.updates))
    if cfg.n_step > 1:
        batch = replay.n_step_batch(buffer, slots, cfg.n_step, cfg.gamma, cfg.num_envs)
    else:
        batch = replay.one_step(jax.tree.map(lambda x: x[slots], buffer.data), cfg.gamma)
    return batch._replace(weight=weight), slots


def _sample_frames(cfg: Config, learner: LearnerState,
                   key: jax.Array) -> tuple[replay.Batch, jnp.ndarray | None]:
    """`sample_replay` from the pixel replay: slot = row * num_envs + env."""
    buffer = learner.replay
    if not cfg.prioritized:
        rows, envs = frame_replay.sample_rows(buffer, key, cfg.batch_size, cfg.n_step)
        return frame_replay.n_step_batch(buffer, rows, envs, cfg.n_step, cfg.gamma), None
    E = buffer.frames.shape[1]
    _, count = frame_replay.sampleable(buffer, cfg.n_step)
    slots, weight = prioritized.sample(learner.priorities, key, cfg.batch_size, count * E,
                                       priority_beta(cfg, learner.agent.updates))
    batch = frame_replay.n_step_batch(buffer, slots // E, slots % E, cfg.n_step, cfg.gamma)
    return batch._replace(weight=weight), slots


def priority_beta(cfg: Config, updates: jnp.ndarray) -> jnp.ndarray:
    """beta, linearly from `priority_beta` to 1 over the run's updates (Schaul et al. 2016,
    section 3.4)."""
    frac = jnp.minimum(updates.astype(jnp.float32) / expected_updates(cfg), 1.0)
    return cfg.priority_beta + (1.0 - cfg.priority_beta) * frac


def mark_new(cfg: Config, tree: prioritized.SumTree, before: replay.ReplayState,
             after: replay.ReplayState) -> prioritized.SumTree:
    """Priorities after an add: the slots just written are not sampleable yet (0), and the
    slots whose n steps just completed get the largest priority so far (Schaul et al. 2016,
    Algorithm 1, line 6). With n = 1 those are the same slots."""
    cap = replay.capacity(after)
    E, n = cfg.num_envs, cfg.n_step
    written = (before.index + jnp.arange(E)) % cap
    if n == 1:
        return prioritized.set_priorities(tree, written, jnp.full(E, tree.max_priority))
    window = (n - 1) * E
    ready = (written - window) % cap  # distinct from `written`: the window is below capacity
    filled = after.size > window
    values = jnp.concatenate([jnp.zeros(E, jnp.float32),
                              jnp.where(filled, tree.max_priority, 0.0) * jnp.ones(E)])
    return prioritized.set_priorities(tree, jnp.concatenate([written, ready]), values)


def explore_rate(cfg: Config, it: jnp.ndarray, updates: jnp.ndarray) -> jnp.ndarray:
    """Probability of a uniform action at iteration `it` (before its env step)."""
    step = it * cfg.num_envs
    if cfg.algo == "random":
        return jnp.ones((), jnp.float32)
    if cfg.exploration == "boltzmann":
        eps = jnp.zeros((), jnp.float32)
    else:
        eps = schedules.epsilon(cfg, step, updates).astype(jnp.float32)
    if cfg.prefill_random:
        eps = jnp.where(step < cfg.learning_starts, 1.0, eps)
    return eps


def trains_at(cfg: Config, it, fill_start=0):
    """Whether iteration `it` ends with a training round (works on ints and arrays).

    `fill_start` is the iteration the replay started filling at (after a resume without
    the replay buffer, training waits until a batch's worth is in it again).
    """
    steps_after = (it + 1) * cfg.num_envs
    filled = (it + 1 - fill_start) * cfg.num_envs
    cond_start = steps_after >= cfg.learning_starts
    cond_freq = (it + 1) % cfg.train_freq == 0
    cond_fill = filled >= cfg.batch_size
    if isinstance(it, int):
        return cfg.algo != "random" and cond_start and cond_freq and cond_fill
    return jnp.logical_and(jnp.logical_and(cond_start, cond_freq), cond_fill) & (
        cfg.algo != "random"
    )


def train_round(cfg: Config, agent: Agent, learner: LearnerState) -> LearnerState:
    """`gradient_steps` updates, each on a fresh batch from replay; with prioritized replay
    each refreshes the priorities of the transitions it learned from."""

    def one_update(carry, key: jax.Array):
        agent_state, tree = carry
        k_sample, k_update = jax.random.split(key)
        batch, slots = sample_replay(cfg, learner._replace(agent=agent_state, priorities=tree),
                                     k_sample)
        agent_state, metrics = agent.update(agent_state, batch, k_update)
        if tree is not None:
            values = prioritized.priority(metrics["errors"], cfg.priority_alpha,
                                          cfg.priority_eps)
            tree = prioritized.set_priorities(tree, slots, values)
        return (agent_state, tree), metrics

    key, sub = jax.random.split(learner.key)
    (agent_state, tree), metrics = jax.lax.scan(
        one_update, (learner.agent, learner.priorities),
        jax.random.split(sub, cfg.gradient_steps)
    )
    return learner._replace(agent=agent_state, key=key, last_loss=metrics["loss"][-1],
                            last_q=metrics["q_mean"][-1], priorities=tree)


def observe(cfg: Config, learner: LearnerState, transitions: Any) -> LearnerState:
    """Add one vector step's transitions to replay."""
    if cfg.clip_rewards:  # DQN 2013 / Nature: train on sign-clipped rewards, log raw ones
        transitions = transitions._replace(reward=jnp.clip(transitions.reward, -1.0, 1.0))
    buffer = add_to_replay(learner.replay, transitions)
    if learner.priorities is not None:
        if isinstance(buffer, frame_replay.FrameReplayState):
            tree = frame_replay.mark_new(learner.priorities, learner.replay, buffer, cfg.n_step)
        else:
            tree = mark_new(cfg, learner.priorities, learner.replay, buffer)
        learner = learner._replace(priorities=tree)
    return learner._replace(replay=buffer)


def learn(
    cfg: Config,
    agent: Agent,
    learner: LearnerState,
    it: jnp.ndarray,
    fill_start: Any,
    train_now: bool | None = None,
) -> LearnerState:
    """Train if the clock says so.

    `it` must be the same for every seed (unbatched under vmap) so that the branch below
    stays a real branch instead of becoming a select that always pays for training. The
    replay buffer goes into the branch but not out of it: passing it through would copy
    the whole buffer every step. A host loop that knows the clock passes `train_now` and
    gets no branch at all: the branch's outputs are fresh buffers, so even skipping costs a
    copy of the params and optimizer state (3 ms a step for the Nature network).
    """

    names = ("agent", "key", "last_loss", "last_q", "priorities")

    def train(s: LearnerState):
        out = train_round(cfg, agent, s)
        return tuple(getattr(out, name) for name in names)

    def skip(s: LearnerState):
        return tuple(getattr(s, name) for name in names)

    if train_now is None:
        out = jax.lax.cond(trains_at(cfg, it, fill_start), train, skip, learner)
    else:
        out = (train if train_now else skip)(learner)
    return learner._replace(**dict(zip(names, out)))


def observe_and_learn(cfg: Config, agent: Agent, learner: LearnerState, transitions: Any,
                      it: jnp.ndarray, fill_start: Any) -> LearnerState:
    """Add one vector step's transitions, then train if the clock says so."""
    return learn(cfg, agent, observe(cfg, learner, transitions), it, fill_start)


def act(cfg: Config, agent: Agent, learner: LearnerState, obs: jnp.ndarray, it: jnp.ndarray):
    """Actions for a batch of observations; returns (actions, epsilon, learner with new key)."""
    key, sub = jax.random.split(learner.key)
    eps = explore_rate(cfg, it, learner.agent.updates)
    actions = agent.act(learner.agent.params, obs, sub, eps)
    return actions, eps, learner._replace(key=key)

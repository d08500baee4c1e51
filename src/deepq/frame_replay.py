"""Pixel replay: every frame stored once as uint8, frame stacks rebuilt at sampling time.

A stack of k frames repeats each frame k times over consecutive observations, so storing
observations (and next observations) would cost 2k frames per transition. Here a row of
the ring holds, for each of the E envs of one seed, the newest frame of the observation the
agent acted on, with that step's action, reward and terminal flag (the layout of the DQN
papers' replay memory; dqn_zoo and SB3's memory-optimised buffer do the same). For row t:

    obs      = frames[t-k+1 .. t]      next_obs = frames[t-k+2 .. t+1]

with frames from before the episode's first row zeroed, as the env's own stack is zeroed at
a reset. `first` marks a row whose observation came from a reset. A row is sampled only if
its next row continues the same episode: adding a `first` row invalidates the row before it
(after a game over that row holds the final observation, whose step the env ignored; after
a resume it holds a transition whose next frame was never seen). Life losses that are
terminal for training do not reset the env, so they do not break the stack.

Memory: capacity x H x W bytes of frames plus 10 bytes of action, reward and flags per
transition; 1M transitions of 84x84 take 7.07 GB (`memory_bytes`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from deepq import prioritized
from deepq.prioritized import SumTree
from deepq.replay import Batch, Transition, one_step

CANDIDATES_PER_SAMPLE = 4  # rows drawn per sampled transition; the first valid ones are kept


class FrameStep(NamedTuple):
    """What one env step adds for one env: the newest frame of the observation acted on."""

    frame: jnp.ndarray  # [H, W] uint8
    action: jnp.ndarray
    reward: jnp.ndarray
    terminated: jnp.ndarray  # 1 where the transition is terminal for training
    first: jnp.ndarray  # the observation came from a reset


@struct.dataclass
class FrameReplayState:
    frames: jnp.ndarray  # [T, E, H, W] uint8
    action: jnp.ndarray  # [T, E] int32
    reward: jnp.ndarray  # [T, E] float32
    terminated: jnp.ndarray  # [T, E] float32
    first: jnp.ndarray  # [T, E] bool
    valid: jnp.ndarray  # [T, E] bool: the next row continues this row's episode
    index: jnp.ndarray  # next row to write
    rows: jnp.ndarray  # rows written, at most T
    stack: int = struct.field(pytree_node=False)  # frames per observation


def num_rows(capacity: int, num_envs: int) -> int:
    """Rows of the ring: `capacity` transitions spread over `num_envs` columns."""
    return max(capacity // num_envs, 1)


def memory_bytes(capacity: int, num_envs: int, frame_shape: tuple[int, int]) -> int:
    rows = num_rows(capacity, num_envs)
    per_transition = frame_shape[0] * frame_shape[1] + 4 + 4 + 4 + 1 + 1
    return rows * num_envs * per_transition


def init(capacity: int, num_envs: int, frame_shape: tuple[int, int],
         stack: int) -> FrameReplayState:
    T, E = num_rows(capacity, num_envs), num_envs
    return FrameReplayState(
        frames=jnp.zeros((T, E) + tuple(frame_shape), jnp.uint8),
        action=jnp.zeros((T, E), jnp.int32),
        reward=jnp.zeros((T, E), jnp.float32),
        terminated=jnp.zeros((T, E), jnp.float32),
        first=jnp.zeros((T, E), bool),
        valid=jnp.zeros((T, E), bool),
        index=jnp.zeros((), jnp.int32),
        rows=jnp.zeros((), jnp.int32),
        stack=stack,
    )


def add(state: FrameReplayState, step: FrameStep) -> FrameReplayState:
    """Write one row (leaves [E, ...]) at the ring's head."""
    T = state.frames.shape[0]
    i = state.index
    prev = (i - 1) % T
    valid = state.valid.at[i].set(True)
    valid = valid.at[prev].set(valid[prev] & ~step.first.astype(bool))
    return state.replace(
        frames=state.frames.at[i].set(step.frame.astype(jnp.uint8)),
        action=state.action.at[i].set(step.action.astype(jnp.int32)),
        reward=state.reward.at[i].set(step.reward.astype(jnp.float32)),
        terminated=state.terminated.at[i].set(step.terminated.astype(jnp.float32)),
        first=state.first.at[i].set(step.first.astype(bool)),
        valid=valid,
        index=(i + 1) % T,
        rows=jnp.minimum(state.rows + 1, T),
    )


def sampleable(state: FrameReplayState, n: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(start, count): rows start, start+1, ... (mod T) may be sampled. The newest n rows
    are excluded (the frames after their n steps are not in yet), and once the ring is full
    so are the oldest stack-1 rows (the frames before them are overwritten)."""
    T = state.frames.shape[0]
    full = state.rows >= T
    start = jnp.where(full, state.index + state.stack - 1, 0) % T
    count = jnp.where(full, T - state.stack, state.rows - 1) - (n - 1)
    return start, jnp.maximum(count, 1)


def sample_rows(state: FrameReplayState, key: jax.Array, batch_size: int,
                n: int = 1) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(rows, envs) [B]: uniform (with replacement) over the valid sampleable transitions."""
    T, E = state.frames.shape[:2]
    candidates = CANDIDATES_PER_SAMPLE * batch_size
    k_row, k_env = jax.random.split(key)
    start, count = sampleable(state, n)
    rows = (start + jax.random.randint(k_row, (candidates,), 0, count)) % T
    envs = jax.random.randint(k_env, (candidates,), 0, E)
    # Uniform over valid rows: keep the first batch_size valid candidates (stable order).
    order = jnp.argsort(~state.valid[rows, envs], stable=True)[:batch_size]
    return rows[order], envs[order]


def sample(state: FrameReplayState, key: jax.Array, batch_size: int) -> Transition:
    """Uniform sample (with replacement) over valid transitions, stacks rebuilt [B,H,W,k]."""
    return gather(state, *sample_rows(state, key, batch_size))


def n_step_batch(state: FrameReplayState, rows: jnp.ndarray, envs: jnp.ndarray, n: int,
                 gamma: float) -> Batch:
    """The n-step transitions (Hessel et al. 2017, eq. 2) that start at (rows, envs):

        R = sum_{k<m} gamma^k r_{t+k},   bootstrap from the observation after row t+m-1
        with gamma^m (0 if that row is terminal for training),

    where m <= n stops after the first row that is terminal or whose next row does not
    continue the episode (a game over: the next row holds the final observation and the
    one after it a reset). n = 1 is DQN's one-step transition."""
    start = gather(state, rows, envs)
    if n == 1:
        return one_step(start, gamma)
    T = state.frames.shape[0]
    window = (rows[:, None] + jnp.arange(n)[None, :]) % T  # [B, n]
    ends = (state.terminated[window, envs[:, None]] > 0) | \
        ~state.valid[(window + 1) % T, envs[:, None]]
    # alive[:, k]: no row before k in the window ended the episode
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(ends[:, :1]), ~ends[:, :-1]], axis=1)
                        .astype(jnp.float32), axis=1)
    reward = state.reward[window, envs[:, None]]
    ret = jnp.sum(alive * gamma ** jnp.arange(n, dtype=jnp.float32) * reward, axis=1)
    m = jnp.sum(alive, axis=1).astype(jnp.int32)  # steps taken, 1..n
    end = (rows + m - 1) % T
    stop = gather(state, end, envs)
    discount = gamma ** m.astype(jnp.float32) * (1.0 - stop.terminated)
    return Batch(start.obs, start.action, ret, stop.next_obs, discount)


def mark_new(tree: SumTree, before: FrameReplayState, after: FrameReplayState,
             n: int) -> SumTree:
    """Prioritized replay over the frame ring (slot = row * E + env), after an add at row i:
    rows i .. i+stack-1 are not sampleable (row i has no next frame yet; the others lost the
    frames their stacks start with), and row i-n, whose n steps just completed, gets the
    largest priority so far if it is valid (Schaul et al. 2016, Algorithm 1, line 6)."""
    T, E = after.frames.shape[:2]
    i = before.index
    envs = jnp.arange(E)
    cleared = ((i + jnp.arange(after.stack))[:, None] % T) * E + envs[None, :]
    ready_row = (i - n) % T
    ready = ready_row * E + envs
    filled = after.rows > n
    values = jnp.where(filled & after.valid[ready_row], tree.max_priority, 0.0)
    slots = jnp.concatenate([cleared.reshape(-1), ready])
    return prioritized.set_priorities(
        tree, slots, jnp.concatenate([jnp.zeros(cleared.size, jnp.float32), values]))


def gather(state: FrameReplayState, rows: jnp.ndarray, envs: jnp.ndarray) -> Transition:
    """The transitions at (row, env) pairs, with their frame stacks rebuilt."""
    T = state.frames.shape[0]
    k = state.stack
    window = (rows[:, None] + jnp.arange(-k + 1, 2)[None, :]) % T  # [B, k+1]: t-k+1 .. t+1
    frames = state.frames[window, envs[:, None]]  # [B, k+1, H, W]
    first = state.first[window, envs[:, None]]
    # Frame j survives if no row after it (up to row t) starts an episode. Row t+1 never
    # starts one for a valid row t, so the same mask serves obs and next_obs.
    later_first = jnp.flip(jnp.cumsum(jnp.flip(first[:, 1:k], axis=1), axis=1), axis=1) > 0
    keep = jnp.concatenate([~later_first, jnp.ones((first.shape[0], 2), bool)], axis=1)
    frames = jnp.where(keep[:, :, None, None], frames, jnp.zeros((), jnp.uint8))
    frames = jnp.moveaxis(frames, 1, -1)  # [B, H, W, k+1]
    return Transition(
        obs=frames[..., :k],
        action=state.action[rows, envs],
        reward=state.reward[rows, envs],
        next_obs=frames[..., 1:],
        terminated=state.terminated[rows, envs],
    )

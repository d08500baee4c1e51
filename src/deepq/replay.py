"""Fixed-capacity uniform replay as a pure ring buffer over a pytree of arrays.

Written by hand rather than with flashbax's item buffer: it is the same ring, but a
uniform sample here is one gather (benchmarks/replay_micro.py measures both), and the
buffer's fill level stays a plain integer the drivers can reason about.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    terminated: jnp.ndarray  # 1 where the episode ended in a true terminal state


class ReplayState(NamedTuple):
    data: Transition  # each leaf has leading axis = capacity
    index: jnp.ndarray  # next slot to write
    size: jnp.ndarray  # number of valid slots


def init(capacity: int, example: Transition) -> ReplayState:
    """An empty buffer whose slots have the shapes and dtypes of `example` (one item)."""
    def slots(x):
        return jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype)

    data = jax.tree.map(slots, example)
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def capacity(state: ReplayState) -> int:
    return jax.tree.leaves(state.data)[0].shape[0]


def add_batch(state: ReplayState, batch: Any) -> ReplayState:
    """Write a batch (leading axis B <= capacity) at the ring's head, wrapping around."""
    cap = capacity(state)
    b = jax.tree.leaves(batch)[0].shape[0]
    slots = (state.index + jnp.arange(b)) % cap
    data = jax.tree.map(lambda buf, x: buf.at[slots].set(x), state.data, batch)
    return ReplayState(data, (state.index + b) % cap, jnp.minimum(state.size + b, cap))


def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Transition:
    """Uniform sample with replacement from the filled part of the buffer."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: buf[idx], state.data)

"""Proportional prioritized replay (Schaul et al. 2016, arXiv 1511.05952), as pure functions.

A sum tree over the replay's slots holds each transition's priority p_i = (|delta_i| + eps)^a.
Sampling draws slot i with probability P(i) = p_i / sum_k p_k (section 3.3), stratified as
in the paper's Appendix B.2.1: the total is cut into `batch_size` equal ranges and one
value is drawn uniformly from each. Importance weights w_i = (N P(i))^-beta correct the
bias, divided by the largest weight in the batch so that they only scale updates down
(section 3.4). New transitions get the largest priority seen so far, so that each is
replayed at least once soon (Algorithm 1, line 6).

Written by hand: flashbax has a prioritised buffer, but deepq's replay is its own ring (see
replay.py), and the tree here is one array that the drivers keep beside it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class SumTree(NamedTuple):
    nodes: jnp.ndarray  # [2L]: node i holds nodes[2i] + nodes[2i+1]; leaves at [L, 2L)
    max_priority: jnp.ndarray  # the largest p_i set so far (new transitions get it)


def leaves(capacity: int) -> int:
    """Leaves of the tree: the smallest power of two >= capacity."""
    return 1 << max(capacity - 1, 0).bit_length()


def init(capacity: int) -> SumTree:
    return SumTree(jnp.zeros(2 * leaves(capacity), jnp.float32), jnp.ones((), jnp.float32))


def total(tree: SumTree) -> jnp.ndarray:
    return tree.nodes[1]


def set_priorities(tree: SumTree, slots: jnp.ndarray, values: jnp.ndarray) -> SumTree:
    """Set the leaves at `slots` to `values` (already p^alpha) and redo the sums above them.
    Repeated slots are fine: each level is recomputed from the finished level below."""
    size = tree.nodes.shape[0] // 2
    pos = size + slots
    nodes = tree.nodes.at[pos].set(values)
    for _ in range(size.bit_length() - 1):
        pos = pos // 2
        nodes = nodes.at[pos].set(nodes[2 * pos] + nodes[2 * pos + 1])
    return SumTree(nodes, jnp.maximum(tree.max_priority, jnp.max(values)))


def find(tree: SumTree, mass: jnp.ndarray) -> jnp.ndarray:
    """The leaf where the cumulative sum of priorities passes `mass` (in [0, total))."""
    size = tree.nodes.shape[0] // 2
    pos = jnp.ones_like(mass, dtype=jnp.int32)
    for _ in range(size.bit_length() - 1):
        left = tree.nodes[2 * pos]
        right = tree.nodes[2 * pos + 1]
        # Float rounding may leave mass just above a subtree's sum: never step into an
        # empty subtree (its leaves are unfilled or not yet sampleable).
        go_right = (mass >= left) & (right > 0)
        mass = jnp.where(go_right, mass - left, mass)
        pos = 2 * pos + go_right.astype(jnp.int32)
    return pos - size


def sample(tree: SumTree, key: jax.Array, batch_size: int, count: jnp.ndarray,
           beta: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(slots [B], importance weights [B]); `count` is N, the transitions that can be drawn."""
    tot = total(tree)
    edges = jnp.arange(batch_size, dtype=jnp.float32)
    mass = (edges + jax.random.uniform(key, (batch_size,))) * (tot / batch_size)
    slots = find(tree, jnp.minimum(mass, tot * (1 - 1e-6)))
    size = tree.nodes.shape[0] // 2
    prob = tree.nodes[size + slots] / tot
    weight = (count.astype(jnp.float32) * prob) ** (-beta)
    return slots, weight / jnp.max(weight)


def priority(error: jnp.ndarray, alpha: float, eps: float) -> jnp.ndarray:
    """p = (|delta| + eps)^alpha (Schaul et al. 2016, section 3.3, proportional)."""
    return (jnp.abs(error) + eps) ** alpha

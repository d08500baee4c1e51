"""Sticky actions (Machado et al. 2018): the env may repeat its previous action."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sticky(key: jax.Array, previous: jnp.ndarray, chosen: jnp.ndarray, prob: float):
    """The env's actions: with probability `prob` each env repeats its previous action
    (sticky actions, Machado et al. 2018; MinAtar's default is 0.1)."""
    return jnp.where(jax.random.uniform(key, chosen.shape) < prob, previous, chosen)

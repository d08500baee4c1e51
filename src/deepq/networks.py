"""Q-networks (flax.linen). Issue 3 adds the Atari and MinAtar CNNs here."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


class MLP(nn.Module):
    """Fully connected Q-network: obs -> hidden layers -> one Q-value per action."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)  # [batch, features]
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size)(x))
        return nn.Dense(self.num_actions)(x)

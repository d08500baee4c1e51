"""Exploration schedules: the epsilon of epsilon-greedy as a function of the run's clock.

`step` counts environment steps of one seed, `updates` counts its gradient updates.
"""

from __future__ import annotations

import jax.numpy as jnp

from deepq.config import Config


def epsilon(cfg: Config, step: jnp.ndarray, updates: jnp.ndarray) -> jnp.ndarray:
    start, end = cfg.epsilon_start, cfg.epsilon_end
    if cfg.epsilon_schedule == "linear":
        # start for epsilon_delay steps, then linearly to end over epsilon_steps (else that
        # fraction of the run), then flat.
        duration = max(cfg.epsilon_steps or cfg.epsilon_fraction * cfg.total_steps, 1.0)
        frac = jnp.clip((step - cfg.epsilon_delay) / duration, 0.0, 1.0)
        return start + frac * (end - start)
    if cfg.epsilon_schedule == "exponential":
        # end + (start - end) * exp(-lambda * t)
        return end + (start - end) * jnp.exp(-cfg.epsilon_decay * step)
    if cfg.epsilon_schedule == "multiplicative":
        # epsilon <- max(end, epsilon * decay) after every update.
        return jnp.maximum(end, start * cfg.epsilon_decay ** updates.astype(jnp.float32))
    raise ValueError(cfg.epsilon_schedule)

"""What every agent shares: the `Agent` interface, its state, the optimizers and the
epsilon mix. An agent is a set of pure, jittable functions; the driver owns keys, replay and
clocks:

    init(key, obs_example)            -> AgentState
    act(params, obs, key, epsilon)    -> actions             (obs batched: [B, ...])
    update(state, batch, key)         -> (AgentState, metrics)
    q_values(params, obs)             -> [B, A]  the DQN family's Q(s, .)
    log_policy(params, obs)           -> [B, A]  policy-gradient agents' log pi(. | s)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from deepq.config import Config


class AgentState(NamedTuple):
    params: Any
    target_params: Any  # None for agents without a target network
    opt_state: Any
    updates: jnp.ndarray  # gradient updates taken so far (int32)


class Agent(NamedTuple):
    init: Callable[..., AgentState]
    act: Callable[..., jnp.ndarray]
    update: Callable[..., tuple[AgentState, dict[str, jnp.ndarray]]]
    q_values: Callable[..., jnp.ndarray] | None = None
    log_policy: Callable[..., jnp.ndarray] | None = None


def epsilon_mix(k_explore: jax.Array, k_random: jax.Array, actions: jnp.ndarray,
                epsilon: jnp.ndarray, num_actions: int) -> jnp.ndarray:
    """`actions`, each replaced by a uniform action with probability epsilon."""
    random = jax.random.randint(k_random, actions.shape, 0, num_actions)
    explore = jax.random.uniform(k_explore, actions.shape) < epsilon
    return jnp.where(explore, random, actions).astype(jnp.int32)


def make_optimizer(cfg: Config, horizon: int) -> optax.GradientTransformation:
    """cfg's optimizer; a linear lr schedule reaches 0 after `horizon` updates."""
    lr: Any = cfg.learning_rate
    if cfg.lr_schedule == "linear":
        lr = optax.linear_schedule(cfg.learning_rate, 0.0, horizon)
    momentum = cfg.momentum or None
    if cfg.optimizer == "sgd":
        opt = optax.sgd(lr, momentum=momentum)
    elif cfg.optimizer == "rmsprop":
        # centered=True with eps inside the sqrt is DeepMind's RMSProp (Graves 2013, eq. 40).
        opt = optax.rmsprop(lr, decay=cfg.rmsprop_decay, eps=cfg.rmsprop_eps,
                            eps_in_sqrt=cfg.rmsprop_eps_in_sqrt,
                            centered=cfg.rmsprop_centered, momentum=momentum)
    elif cfg.optimizer == "adam":
        opt = optax.adam(lr, eps=cfg.adam_eps)
    elif cfg.optimizer == "radam":  # rectified Adam (Liu et al. 2020), PQN's optimizer
        opt = optax.radam(lr, eps=cfg.adam_eps)
    else:
        raise ValueError(cfg.optimizer)
    if cfg.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), opt)
    return opt

"""Deep Q-learning as pure functions over explicit state (Mnih et al. 2013, arXiv 1312.5602).

`make_agent(cfg, num_actions)` returns an `Agent` of jittable functions:

    init(key, obs_example)            -> AgentState
    act(params, obs, key, epsilon)    -> actions           (obs batched: [B, ...])
    update(state, batch, key)         -> (AgentState, metrics)

No function keeps state between calls; the caller owns keys, replay and clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from deepq.config import Config
from deepq.networks import make_network
from deepq.replay import Transition


class AgentState(NamedTuple):
    params: Any
    target_params: Any
    opt_state: Any
    updates: jnp.ndarray  # gradient updates taken so far (int32)


class Agent(NamedTuple):
    init: Callable[..., AgentState]
    act: Callable[..., jnp.ndarray]
    update: Callable[..., tuple[AgentState, dict[str, jnp.ndarray]]]
    q_values: Callable[..., jnp.ndarray]


# ---------------------------------------------------------------------------
# The maths, as small functions tested against hand-computed values.


def td_targets(
    reward: jnp.ndarray,
    terminated: jnp.ndarray,
    q_next_target: jnp.ndarray,
    gamma: float,
    q_next_online: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """y = r + gamma * (1 - terminal) * Q_target(s', a*)   (Mnih et al. 2015, eq. 2).

    a* = argmax_a Q_target(s', a) for DQN; with `q_next_online` given, a* = argmax_a
    Q_online(s', a): Double DQN (van Hasselt et al. 2016, eq. 4).
    """
    selector = q_next_target if q_next_online is None else q_next_online
    best = jnp.argmax(selector, axis=-1)
    bootstrap = jnp.take_along_axis(q_next_target, best[..., None], axis=-1)[..., 0]
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * bootstrap


def elementwise_loss(delta: jnp.ndarray, kind: str, huber_delta: float = 1.0) -> jnp.ndarray:
    """Loss of a TD error delta = Q(s, a) - y.

    mse: delta^2.  huber: 0.5 delta^2 inside |delta| <= k, k(|delta| - k/2) outside (the
    Nature DQN's error clipping).  pseudo_huber: k^2 (sqrt(1 + (delta/k)^2) - 1), which is
    sqrt(delta^2 + 1) - 1 at k = 1.
    """
    if kind == "mse":
        return jnp.square(delta)
    if kind == "huber":
        return optax.huber_loss(delta, delta=huber_delta)
    if kind == "pseudo_huber":
        return huber_delta**2 * (jnp.sqrt(1.0 + jnp.square(delta / huber_delta)) - 1.0)
    raise ValueError(kind)


def expected_updates(cfg: Config) -> int:
    """How many gradient updates a full run takes (the horizon of a linear lr schedule)."""
    first = max(-(-cfg.learning_starts // cfg.num_envs) - 1, 0)  # first iteration that trains
    rounds = len(range(first + (-first % cfg.train_freq), cfg.iterations, cfg.train_freq))
    return max(rounds * cfg.gradient_steps, 1)


def make_optimizer(cfg: Config) -> optax.GradientTransformation:
    lr: Any = cfg.learning_rate
    if cfg.lr_schedule == "linear":
        lr = optax.linear_schedule(cfg.learning_rate, 0.0, expected_updates(cfg))
    momentum = cfg.momentum or None
    if cfg.optimizer == "sgd":
        opt = optax.sgd(lr, momentum=momentum)
    elif cfg.optimizer == "rmsprop":
        # centered=True with eps inside the sqrt is DeepMind's RMSProp (Graves 2013, eq. 40).
        opt = optax.rmsprop(lr, decay=cfg.rmsprop_decay, eps=cfg.rmsprop_eps,
                            centered=cfg.rmsprop_centered, momentum=momentum)
    elif cfg.optimizer == "adam":
        opt = optax.adam(lr, eps=cfg.adam_eps)
    else:
        raise ValueError(cfg.optimizer)
    if cfg.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), opt)
    return opt


def make_agent(cfg: Config, num_actions: int) -> Agent:
    network = make_network(cfg.network, num_actions, cfg.hidden_sizes, cfg.activation)
    optimizer = make_optimizer(cfg)

    def init(key: jax.Array, obs_example: jnp.ndarray) -> AgentState:
        params = network.init(key, obs_example[None])
        return AgentState(params, params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def q_values(params: Any, obs: jnp.ndarray) -> jnp.ndarray:
        return network.apply(params, obs)

    def act(params: Any, obs: jnp.ndarray, key: jax.Array, epsilon: jnp.ndarray) -> jnp.ndarray:
        """With probability epsilon a uniform action, else greedy (or softmax for Boltzmann)."""
        q = network.apply(params, obs)
        k_explore, k_random, k_policy = jax.random.split(key, 3)
        if cfg.exploration == "boltzmann":
            policy = jax.random.categorical(k_policy, q / cfg.temperature, axis=-1)
        else:
            policy = jnp.argmax(q, axis=-1)
        random = jax.random.randint(k_random, policy.shape, 0, num_actions)
        explore = jax.random.uniform(k_explore, policy.shape) < epsilon
        return jnp.where(explore, random, policy).astype(jnp.int32)

    def loss_fn(params: Any, target_params: Any, batch: Transition):
        q = network.apply(params, batch.obs)
        q_sa = jnp.take_along_axis(q, batch.action[:, None].astype(jnp.int32), axis=-1)[:, 0]
        q_next_target = network.apply(target_params, batch.next_obs)
        q_next_online = network.apply(params, batch.next_obs) if cfg.double_dqn else None
        y = td_targets(batch.reward, batch.terminated, q_next_target, cfg.gamma, q_next_online)
        delta = q_sa - jax.lax.stop_gradient(y)
        loss = jnp.mean(elementwise_loss(delta, cfg.loss, cfg.huber_delta))
        return loss, jnp.mean(jnp.max(q, axis=-1))

    def update(state: AgentState, batch: Transition, key: jax.Array):
        del key  # DQN's update is deterministic; noisy nets (issue 4) will use it.
        target = state.params if cfg.target_update == "none" else state.target_params
        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, target, batch
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        count = state.updates + 1
        if cfg.target_update == "hard":
            target = optax.periodic_update(params, state.target_params, count,
                                           cfg.target_update_interval)
        elif cfg.target_update == "polyak":
            target = optax.incremental_update(params, state.target_params, cfg.tau)
        else:
            target = params
        new_state = AgentState(params, target, opt_state, count)
        return new_state, {"loss": loss, "q_mean": q_mean}

    return Agent(init, act, update, q_values)

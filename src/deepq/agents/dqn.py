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
from deepq.replay import Batch


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
    discount: jnp.ndarray,
    q_next_target: jnp.ndarray,
    q_next_online: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """y = r + discount * Q_target(s', a*)   (Mnih et al. 2015, eq. 2),

    discount = gamma^k (1 - terminal) after k steps (k = 1 for DQN, up to n for n-step
    returns). a* = argmax_a Q_target(s', a) for DQN; with `q_next_online` given,
    a* = argmax_a Q_online(s', a): Double DQN (van Hasselt et al. 2016, eq. 4).
    """
    selector = q_next_target if q_next_online is None else q_next_online
    best = jnp.argmax(selector, axis=-1)
    bootstrap = jnp.take_along_axis(q_next_target, best[..., None], axis=-1)[..., 0]
    return reward + discount * bootstrap


def categorical_projection(reward: jnp.ndarray, discount: jnp.ndarray, probs: jnp.ndarray,
                           support: jnp.ndarray) -> jnp.ndarray:
    """Project the distribution of r + discount * z onto the fixed support z (C51,
    Bellemare et al. 2017, Algorithm 1). reward, discount [B]; probs [B, N], the target
    distribution at a*; support [N], evenly spaced. Returns [B, N].

    Each shifted atom Tz_j = clip(r + discount z_j, v_min, v_max) sits at fractional index
    b_j = (Tz_j - v_min) / dz and gives its mass to the atoms i either side in proportion
    (1 - |b_j - i|)^+: all of it to atom i when b_j = i (the l = u case of Algorithm 1).
    """
    n = support.shape[0]
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (n - 1)
    shifted = jnp.clip(reward[:, None] + discount[:, None] * support[None, :], v_min, v_max)
    b = (shifted - v_min) / dz  # [B, N]
    weight = jnp.clip(1.0 - jnp.abs(b[:, :, None] - jnp.arange(n)[None, None, :]), 0.0, 1.0)
    return jnp.einsum("bj,bji->bi", probs, weight)


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


def epsilon_mix(k_explore: jax.Array, k_random: jax.Array, actions: jnp.ndarray,
                epsilon: jnp.ndarray, num_actions: int) -> jnp.ndarray:
    """`actions`, each replaced by a uniform action with probability epsilon."""
    random = jax.random.randint(k_random, actions.shape, 0, num_actions)
    explore = jax.random.uniform(k_explore, actions.shape) < epsilon
    return jnp.where(explore, random, actions).astype(jnp.int32)


def expected_updates(cfg: Config) -> int:
    """How many gradient updates a full run takes (the horizon of a linear lr schedule)."""
    if cfg.algo == "reinforce":  # one per batch of episodes
        return cfg.batches
    # Iteration `it` trains when j = it + 1 is a multiple of train_freq and j * num_envs steps
    # reach both learning_starts and a batch (drivers/common.trains_at): count those j.
    first = max(-(-cfg.learning_starts // cfg.num_envs), -(-cfg.batch_size // cfg.num_envs), 1)
    rounds = max(cfg.iterations // cfg.train_freq - (first - 1) // cfg.train_freq, 0)
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
                            eps_in_sqrt=cfg.rmsprop_eps_in_sqrt,
                            centered=cfg.rmsprop_centered, momentum=momentum)
    elif cfg.optimizer == "adam":
        opt = optax.adam(lr, eps=cfg.adam_eps)
    else:
        raise ValueError(cfg.optimizer)
    if cfg.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), opt)
    return opt


def make_agent(cfg: Config, num_actions: int) -> Agent:
    atoms = cfg.num_atoms if cfg.distributional else 1
    network = make_network(cfg.network, num_actions, cfg.hidden_sizes, cfg.activation,
                           cfg.weight_init, dueling=cfg.dueling, noisy=cfg.noisy,
                           noisy_sigma0=cfg.noisy_sigma0, atoms=atoms)
    support = jnp.linspace(cfg.v_min, cfg.v_max, atoms) if cfg.distributional else None
    optimizer = make_optimizer(cfg)

    def forward(params: Any, obs: jnp.ndarray, noise: jax.Array | None = None) -> jnp.ndarray:
        """Q-values [B, A], or C51 logits [B, A, atoms]. Noisy layers draw their noise from
        `noise`; without it they use their mean weights."""
        if cfg.noisy and noise is not None:
            return network.apply(params, obs, rngs={"noise": noise})
        return network.apply(params, obs)

    def to_q(out: jnp.ndarray) -> jnp.ndarray:
        """C51: Q(s, a) = sum_i z_i p_i(s, a) (Bellemare et al. 2017, eq. 1)."""
        if support is None:
            return out
        return jnp.sum(jax.nn.softmax(out, axis=-1) * support, axis=-1)

    def init(key: jax.Array, obs_example: jnp.ndarray) -> AgentState:
        params = network.init(key, obs_example[None])
        return AgentState(params, params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def q_values(params: Any, obs: jnp.ndarray) -> jnp.ndarray:
        return to_q(forward(params, obs))

    def act(params: Any, obs: jnp.ndarray, key: jax.Array, epsilon: jnp.ndarray) -> jnp.ndarray:
        """With probability epsilon a uniform action, else greedy (or softmax for Boltzmann).
        Noisy nets act greedily on a fresh noise sample (with epsilon 0 in their presets)."""
        noise = None
        if cfg.noisy:
            key, noise = jax.random.split(key)
        q = to_q(forward(params, obs, noise))
        k_explore, k_random, k_policy = jax.random.split(key, 3)
        if cfg.exploration == "boltzmann":
            policy = jax.random.categorical(k_policy, q / cfg.temperature, axis=-1)
        else:
            policy = jnp.argmax(q, axis=-1)
        return epsilon_mix(k_explore, k_random, policy, epsilon, num_actions)

    def loss_fn(params: Any, target_params: Any, batch: Batch, key: jax.Array):
        # Online, target and (Double DQN) action-selection passes: independent noise.
        k_online, k_target, k_select = jax.random.split(key, 3) if cfg.noisy else (None,) * 3
        out = forward(params, batch.obs, k_online)
        action = batch.action.astype(jnp.int32)
        out_next = forward(target_params, batch.next_obs, k_target)
        out_next_online = forward(params, batch.next_obs, k_select) if cfg.double_dqn else None
        if support is None:
            q_sa = jnp.take_along_axis(out, action[:, None], axis=-1)[:, 0]
            y = td_targets(batch.reward, batch.discount, out_next, out_next_online)
            delta = q_sa - jax.lax.stop_gradient(y)
            per_sample = elementwise_loss(delta, cfg.loss, cfg.huber_delta)
        else:
            # C51: cross-entropy to the projected target distribution (Bellemare 2017, eq. 7)
            q_next = to_q(out_next)
            selector = q_next if out_next_online is None else to_q(out_next_online)
            best = jnp.argmax(selector, axis=-1)
            probs_next = jax.nn.softmax(
                jnp.take_along_axis(out_next, best[:, None, None], axis=1)[:, 0], axis=-1)
            target = jax.lax.stop_gradient(
                categorical_projection(batch.reward, batch.discount, probs_next, support))
            logits_sa = jnp.take_along_axis(out, action[:, None, None], axis=1)[:, 0]
            per_sample = -jnp.sum(target * jax.nn.log_softmax(logits_sa, axis=-1), axis=-1)
            delta = per_sample  # C51's priority is its loss (Hessel et al. 2017, section 3)
        # Prioritized replay: importance-weighted (Schaul et al. 2016, Algorithm 1, line 12)
        loss = jnp.mean(batch.weight * per_sample)
        return loss, (jnp.mean(jnp.max(to_q(out), axis=-1)), jnp.abs(delta))

    def update(state: AgentState, batch: Batch, key: jax.Array):
        target = state.params if cfg.target_update == "none" else state.target_params
        (loss, (q_mean, errors)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, target, batch, key
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
        return new_state, {"loss": loss, "q_mean": q_mean, "errors": errors}

    return Agent(init, act, update, q_values)

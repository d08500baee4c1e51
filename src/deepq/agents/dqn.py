"""Deep Q-learning as pure functions over explicit state (Mnih et al. 2013, arXiv 1312.5602).

`make_agent(cfg, num_actions)` returns an `Agent` (agents/base.py). What the network's
outputs mean is a `Head`: expected Q-values (DQN), a categorical distribution (C51), or any
other distributional head handed to `make_value_agent` (agents/qrdqn.py). Every head turns
the network's raw outputs into `QOutputs` with `q_values`, so acting, Double DQN's action
choice and Q traces never ask which head they have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from deepq.agents.base import Agent, AgentState, epsilon_mix, make_optimizer
from deepq.config import Config
from deepq.errors import UserError
from deepq.networks import make_network
from deepq.replay import Batch

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


def expected_updates(cfg: Config) -> int:
    """How many gradient updates a full run takes (the horizon of a linear lr schedule)."""
    # Iteration `it` trains when j = it + 1 is a multiple of train_freq and j * num_envs steps
    # reach both learning_starts and a batch (drivers/common.trains_at): count those j.
    first = max(-(-cfg.learning_starts // cfg.num_envs), -(-cfg.batch_size // cfg.num_envs), 1)
    rounds = max(cfg.iterations // cfg.train_freq - (first - 1) // cfg.train_freq, 0)
    return max(rounds * cfg.gradient_steps, 1)


class QOutputs(NamedTuple):
    """A head's reading of the network's outputs for a batch of observations."""

    q_values: jnp.ndarray  # [B, A]
    dist: jnp.ndarray | None = None  # [B, A, atoms]: C51 logits, QR-DQN quantiles


class Head(NamedTuple):
    """What a value network's outputs mean, and the loss that fits them.

    `atoms` outputs per action. `outputs(raw)` reads the raw [B, A] or [B, A, atoms] network
    outputs. `loss(out, action, out_next, out_select, batch)` gives the per-sample loss and
    the per-sample magnitude that prioritized replay uses, from the online outputs at s, the
    taken actions, the target network's outputs at s', and the outputs at s' whose Q-values
    pick the bootstrap action a* (the target's own; Double DQN: the online network's).
    """

    atoms: int
    outputs: Callable[[jnp.ndarray], QOutputs]
    loss: Callable[..., tuple[jnp.ndarray, jnp.ndarray]]


def expected_head(cfg: Config) -> Head:
    """DQN: one Q-value per action, regressed on y = r + discount Q_target(s', a*)."""

    def loss(out: QOutputs, action, out_next: QOutputs, out_select: QOutputs, batch: Batch):
        q_sa = jnp.take_along_axis(out.q_values, action[:, None], axis=-1)[:, 0]
        y = td_targets(batch.reward, batch.discount, out_next.q_values, out_select.q_values)
        delta = q_sa - jax.lax.stop_gradient(y)
        return elementwise_loss(delta, cfg.loss, cfg.huber_delta), jnp.abs(delta)

    return Head(1, QOutputs, loss)


def categorical_head(cfg: Config) -> Head:
    """C51 (Bellemare et al. 2017): logits over a fixed support per action."""
    support = jnp.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms)

    def outputs(logits: jnp.ndarray) -> QOutputs:
        # Q(s, a) = sum_i z_i p_i(s, a)   (Bellemare et al. 2017, eq. 1)
        return QOutputs(jnp.sum(jax.nn.softmax(logits, axis=-1) * support, axis=-1), logits)

    def loss(out: QOutputs, action, out_next: QOutputs, out_select: QOutputs, batch: Batch):
        a_next = jnp.argmax(out_select.q_values, axis=-1)
        probs_next = jax.nn.softmax(
            jnp.take_along_axis(out_next.dist, a_next[:, None, None], axis=1)[:, 0], axis=-1)
        target = jax.lax.stop_gradient(
            categorical_projection(batch.reward, batch.discount, probs_next, support))
        logits_sa = jnp.take_along_axis(out.dist, action[:, None, None], axis=1)[:, 0]
        # Cross-entropy to the projected target (Bellemare 2017, eq. 7); it is also the
        # priority (Hessel et al. 2017, section 3).
        per_sample = -jnp.sum(target * jax.nn.log_softmax(logits_sa, axis=-1), axis=-1)
        return per_sample, per_sample

    return Head(cfg.num_atoms, outputs, loss)


def validate(cfg: Config) -> None:
    """What a learning DQN-family agent needs of the config."""
    if cfg.learning_starts >= cfg.total_steps:
        raise UserError(
            f"learning_starts={cfg.learning_starts} is not below total_steps="
            f"{cfg.total_steps}: the agent would never learn; lower learning_starts or "
            "raise total_steps")


def make_agent(cfg: Config, num_actions: int) -> Agent:
    """DQN with any of Rainbow's parts; C51's head when cfg.distributional."""
    head = categorical_head(cfg) if cfg.distributional else expected_head(cfg)
    return make_value_agent(cfg, num_actions, head)


def make_value_agent(cfg: Config, num_actions: int, head: Head) -> Agent:
    """A DQN-family agent whose network outputs `head.atoms` values per action."""
    network = make_network(cfg.network, num_actions, cfg.hidden_sizes, cfg.activation,
                           cfg.weight_init, dueling=cfg.dueling, noisy=cfg.noisy,
                           noisy_sigma0=cfg.noisy_sigma0, atoms=head.atoms,
                           layer_norm=cfg.layer_norm)
    optimizer = make_optimizer(cfg, expected_updates(cfg))

    def forward(params: Any, obs: jnp.ndarray, noise: jax.Array | None = None) -> QOutputs:
        """The head's outputs. Noisy layers draw their noise from `noise`; without it they
        use their mean weights."""
        if cfg.noisy and noise is not None:
            return head.outputs(network.apply(params, obs, rngs={"noise": noise}))
        return head.outputs(network.apply(params, obs))

    def init(key: jax.Array, obs_example: jnp.ndarray) -> AgentState:
        params = network.init(key, obs_example[None])
        return AgentState(params, params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def q_values(params: Any, obs: jnp.ndarray) -> jnp.ndarray:
        return forward(params, obs).q_values

    def act(params: Any, obs: jnp.ndarray, key: jax.Array, epsilon: jnp.ndarray) -> jnp.ndarray:
        """With probability epsilon a uniform action, else greedy (or softmax for Boltzmann).
        Noisy nets act greedily on a fresh noise sample (with epsilon 0 in their presets)."""
        noise = None
        if cfg.noisy:
            key, noise = jax.random.split(key)
        q = forward(params, obs, noise).q_values
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
        out_next = forward(target_params, batch.next_obs, k_target)
        # a* = argmax_a Q_target(s', a); Double DQN: argmax_a Q_online(s', a) (van Hasselt et
        # al. 2016, eq. 4)
        select = forward(params, batch.next_obs, k_select) if cfg.double_dqn else out_next
        per_sample, errors = head.loss(out, batch.action.astype(jnp.int32), out_next, select,
                                       batch)
        # Prioritized replay: importance-weighted (Schaul et al. 2016, Algorithm 1, line 12)
        loss = jnp.mean(batch.weight * per_sample)
        return loss, (jnp.mean(jnp.max(out.q_values, axis=-1)), errors)

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

    return Agent(init, act, update, q_values=q_values)

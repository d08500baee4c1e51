"""QR-DQN: distributional RL with quantile regression (Dabney, Rowland, Bellemare & Munos
2018, AAAI, arXiv 1710.10044).

The network gives, per action, N quantiles theta_1..N of the return distribution at the
quantile midpoints tau_i = (2i - 1) / 2N (the paper's hat-tau, Lemma 2). Q(s, a) is their
mean. The target quantiles are T theta_j = r + discount theta_j(s', a*), a* the greedy
action under the mean; each theta_i is fitted to all of them with the quantile Huber loss
(the paper's eq. 9 and 10):

    u_ij = T theta_j - theta_i
    rho_kappa(u) = |tau_i - 1{u < 0}| L_kappa(u) / kappa,  L_kappa the Huber loss (eq. 9)
    loss = sum_i mean_j rho_kappa(u_ij)                      (Algorithm 1)

`num_atoms` is N and `huber_delta` is kappa (1 in the paper). Everything else (replay,
n-step returns, Double DQN, dueling, noisy nets, prioritized replay with the loss as the
priority) is the DQN agent's (agents/dqn.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from deepq.agents import dqn
from deepq.agents.base import Agent
from deepq.agents.dqn import Head, QOutputs, make_value_agent
from deepq.config import Config
from deepq.errors import UserError


def quantile_midpoints(n: int) -> jnp.ndarray:
    """tau_i = (2i - 1) / 2N, i = 1..N."""
    return (2 * jnp.arange(n, dtype=jnp.float32) + 1) / (2 * n)


def quantile_huber_loss(theta: jnp.ndarray, target: jnp.ndarray, kappa: float) -> jnp.ndarray:
    """sum_i mean_j |tau_i - 1{u_ij < 0}| L_kappa(u_ij) / kappa with u_ij = target_j - theta_i.
    theta, target [B, N] (target held fixed by the caller); returns [B]."""
    tau = quantile_midpoints(theta.shape[-1])
    u = target[:, None, :] - theta[:, :, None]  # [B, i, j]
    weight = jnp.abs(tau[None, :, None] - (u < 0).astype(jnp.float32))
    return jnp.sum(jnp.mean(weight * optax.huber_loss(u, delta=kappa) / kappa, axis=2), axis=1)


def quantile_head(cfg: Config) -> Head:
    def outputs(quantiles: jnp.ndarray) -> QOutputs:
        return QOutputs(jnp.mean(quantiles, axis=-1), quantiles)

    def loss(out: QOutputs, action, out_next: QOutputs, out_select: QOutputs, batch):
        a_next = jnp.argmax(out_select.q_values, axis=-1)
        theta_next = jnp.take_along_axis(out_next.dist, a_next[:, None, None], axis=1)[:, 0]
        target = batch.reward[:, None] + batch.discount[:, None] * theta_next
        theta = jnp.take_along_axis(out.dist, action[:, None, None], axis=1)[:, 0]
        per_sample = quantile_huber_loss(theta, jax.lax.stop_gradient(target), cfg.huber_delta)
        return per_sample, per_sample

    return Head(cfg.num_atoms, outputs, loss)


def validate(cfg: Config) -> None:
    dqn.validate(cfg)
    if cfg.num_atoms < 2:
        raise UserError(f"num_atoms (QR-DQN's quantiles) must be at least 2, got "
                        f"{cfg.num_atoms}")
    if cfg.distributional:
        raise UserError("algo=qrdqn has its own distributional head (quantiles): drop "
                        "distributional=true, C51's")
    if cfg.network == "per_action":
        raise UserError("algo=qrdqn needs N outputs per action: use network=mlp or a CNN")


def make_agent(cfg: Config, num_actions: int) -> Agent:
    return make_value_agent(cfg, num_actions, quantile_head(cfg))

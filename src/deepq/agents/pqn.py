"""PQN: a parallelised Q-network without replay or target network (Gallici, Fellows, Ellis,
Pou, Masmitja, Foerster & Martin 2024, "Simplifying Deep Temporal Difference Learning",
ICLR 2025, arXiv 2407.04811).

`num_envs` envs step together for `rollout_steps` steps under an epsilon-greedy policy; the
rollout's Q(lambda) returns (Peng & Williams 1996) are the regression targets of
`num_epochs` passes over it, each in `num_minibatches` shuffled minibatches; then the next
rollout starts from the updated network. LayerNorm in the network (`layer_norm`) keeps this
online TD learning stable without a target network.

The returns, computed backwards over the rollout (the paper's Algorithm 1):

    G_t = r_t + gamma (1 - term_t) b_t
    b_t = max_a Q(s'_t, a)                                  if the episode ended at t, or
                                                            t is the rollout's last step
    b_t = (1 - lambda) max_a Q(s'_t, a) + lambda G_{t+1}    otherwise

with s'_t the step's next observation (the final one when the episode ended: a time-limit
truncation bootstraps from it, a terminal step does not).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from deepq.agents.base import Agent, AgentState, epsilon_mix, make_optimizer
from deepq.config import Config
from deepq.errors import UserError
from deepq.networks import make_network


class Rollout(NamedTuple):
    """A rollout's steps, flat over steps x envs [B, ...]: what PQN's update trains on."""

    obs: jnp.ndarray
    action: jnp.ndarray
    target: jnp.ndarray  # G_t, the Q(lambda) return
    weight: jnp.ndarray  # 1, or 0 for a step that only reset its env (ALE's autoreset)


def lambda_returns(reward: jnp.ndarray, terminated: jnp.ndarray, ended: jnp.ndarray,
                   next_q: jnp.ndarray, gamma: float, lam: float) -> jnp.ndarray:
    """Q(lambda) returns [T, N] of a rollout: reward, terminated (a terminal for the target),
    ended (the episode ended: terminal or truncated) and next_q = max_a Q(s'_t, a), all
    [T, N]. See the module docstring."""
    keep = 1.0 - terminated.astype(jnp.float32)
    last = reward[-1] + gamma * keep[-1] * next_q[-1]

    def back(later: jnp.ndarray, step) -> tuple[jnp.ndarray, jnp.ndarray]:
        r, k, end, q = step
        bootstrap = jnp.where(end, q, (1.0 - lam) * q + lam * later)
        g = r + gamma * k * bootstrap
        return g, g

    _, earlier = jax.lax.scan(back, last, (reward[:-1], keep[:-1], ended[:-1], next_q[:-1]),
                              reverse=True)
    return jnp.concatenate([earlier, last[None]])


def updates_per_rollout(cfg: Config) -> int:
    return cfg.num_epochs * cfg.num_minibatches


def rollouts(cfg: Config) -> int:
    """Rollouts per seed in the run: total_steps in whole rollouts."""
    per_rollout = cfg.num_envs * cfg.rollout_steps
    return -(-cfg.total_steps // per_rollout)


def validate(cfg: Config) -> None:
    """What PQN needs of the config."""
    if (cfg.num_envs * cfg.rollout_steps) % cfg.num_minibatches:
        raise UserError(
            f"num_minibatches={cfg.num_minibatches} does not divide a rollout's "
            f"num_envs x rollout_steps = {cfg.num_envs * cfg.rollout_steps} steps: pick a "
            "divisor")
    if not 0.0 <= cfg.q_lambda <= 1.0:
        raise UserError(f"q_lambda must be in [0, 1], got {cfg.q_lambda}")
    if not cfg.reward_scale > 0:
        raise UserError(f"reward_scale must be > 0, got {cfg.reward_scale}")
    for name, off in (("distributional", False), ("noisy", False), ("dueling", False),
                      ("prioritized", False), ("n_step", 1), ("exploration", "epsilon_greedy")):
        if getattr(cfg, name) != off:
            raise UserError(f"algo=pqn does not take {name}={getattr(cfg, name)!r}: PQN learns "
                            f"from Q(lambda) returns of on-policy rollouts; set {name}={off}")
    if cfg.network == "per_action":
        raise UserError("algo=pqn does not take network=per_action: use mlp or a CNN")


def make_agent(cfg: Config, num_actions: int) -> Agent:
    network = make_network(cfg.network, num_actions, cfg.hidden_sizes, cfg.activation,
                           cfg.weight_init, layer_norm=cfg.layer_norm)
    optimizer = make_optimizer(cfg, rollouts(cfg) * updates_per_rollout(cfg))

    def init(key: jax.Array, obs_example: jnp.ndarray) -> AgentState:
        params = network.init(key, obs_example[None])
        return AgentState(params, None, optimizer.init(params), jnp.zeros((), jnp.int32))

    def q_values(params: Any, obs: jnp.ndarray) -> jnp.ndarray:
        return network.apply(params, obs)

    def act(params: Any, obs: jnp.ndarray, key: jax.Array, epsilon: jnp.ndarray) -> jnp.ndarray:
        k_explore, k_random = jax.random.split(key)
        greedy = jnp.argmax(q_values(params, obs), axis=-1)
        return epsilon_mix(k_explore, k_random, greedy, epsilon, num_actions)

    def loss_fn(params: Any, batch: Rollout):
        q = q_values(params, batch.obs)
        chosen = jnp.take_along_axis(q, batch.action[:, None].astype(jnp.int32), axis=1)[:, 0]
        squared = 0.5 * jnp.square(chosen - batch.target)
        loss = jnp.sum(batch.weight * squared) / jnp.maximum(jnp.sum(batch.weight), 1.0)
        return loss, jnp.mean(jnp.max(q, axis=-1))

    def minibatch_update(state: AgentState, batch: Rollout):
        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        changes, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, changes)
        return AgentState(params, None, opt_state, state.updates + 1), (loss, q_mean)

    def update(state: AgentState, rollout: Rollout, key: jax.Array):
        """`num_epochs` passes over the rollout, each in `num_minibatches` minibatches of
        a fresh shuffle."""
        size = rollout.target.shape[0]
        per = size // cfg.num_minibatches

        def epoch(state: AgentState, k: jax.Array):
            order = jax.random.permutation(k, size)
            batches = jax.tree.map(
                lambda x: x[order].reshape((cfg.num_minibatches, per) + x.shape[1:]), rollout)
            return jax.lax.scan(minibatch_update, state, batches)

        state, (loss, q_mean) = jax.lax.scan(epoch, state,
                                             jax.random.split(key, cfg.num_epochs))
        return state, {"loss": loss.mean(), "q_mean": q_mean.mean()}

    return Agent(init, act, update, q_values=q_values)

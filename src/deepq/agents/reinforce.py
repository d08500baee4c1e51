"""REINFORCE (Williams 1992) as Karpathy's "Pong from pixels" (2016) trains it: the maths.

For a batch of episodes with actions a_t drawn from the policy pi(a | s_t):

    G_t = r_t + gamma G_{t+1}        (the sum restarts after a boundary: an episode's end,
                                       or in Pong every point, where r_t != 0)
    A_t = (G_t - mean G) / std G     (standardised over the batch, which cuts the variance)
    loss = -sum_t A_t log pi(a_t | s_t)

and the gradient of the loss is the policy-gradient estimate (Williams 1992, eq. 11).
The policy is Bernoulli over two actions (UP with probability sigmoid(logit), as the
original) or a softmax over any discrete action set. Pure functions; the driver owns keys.

`make_agent(cfg, num_actions)` returns an `Agent` (agents/base.py) whose `update` takes an
`EpisodeBatch` and whose `log_policy` gives log pi(. | s).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from deepq.agents.base import Agent, AgentState, epsilon_mix, make_optimizer
from deepq.config import Config
from deepq.errors import UserError
from deepq.networks import PolicyMLP


def discounted_returns(rewards: jnp.ndarray, boundary: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """G_t over the leading (time) axis: G_t = r_t + gamma G_{t+1}, except G_t = r_t where
    `boundary[t]` (the step ends an episode, or a Pong point)."""

    def back(carry, x):
        r, stop = x
        g = r + gamma * jnp.where(stop, 0.0, carry)
        return g, g

    _, returns = jax.lax.scan(back, jnp.zeros_like(rewards[0]), (rewards, boundary),
                              reverse=True)
    return returns


def point_boundaries(rewards: jnp.ndarray, episode_end: jnp.ndarray) -> jnp.ndarray:
    """Karpathy's Pong-specific reset: a non-zero reward ends a point (a game boundary)."""
    return (rewards != 0) | episode_end.astype(bool)


def standardize(x: jnp.ndarray, mask: jnp.ndarray | None = None,
                eps: float = 1e-8) -> jnp.ndarray:
    """(x - mean) / std over the entries where `mask` (all when None); 0 elsewhere."""
    mask = jnp.ones_like(x, bool) if mask is None else mask.astype(bool)
    n = jnp.maximum(mask.sum(), 1)
    mean = jnp.where(mask, x, 0.0).sum() / n
    var = jnp.where(mask, (x - mean) ** 2, 0.0).sum() / n
    return jnp.where(mask, (x - mean) / (jnp.sqrt(var) + eps), 0.0)


def log_prob(logits: jnp.ndarray, actions: jnp.ndarray, bernoulli: bool) -> jnp.ndarray:
    """log pi(a | s). Bernoulli: `logits` [...] is the logit of action index 1 ("UP") and
    `actions` are 0/1; softmax: `logits` [..., A] and action indices."""
    if bernoulli:
        up = actions.astype(jnp.float32)
        return up * jax.nn.log_sigmoid(logits) + (1.0 - up) * jax.nn.log_sigmoid(-logits)
    return jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1),
                               actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def policy_loss(logits: jnp.ndarray, actions: jnp.ndarray, advantages: jnp.ndarray,
                mask: jnp.ndarray, bernoulli: bool) -> jnp.ndarray:
    """-sum_t A_t log pi(a_t | s_t) over the real (masked-in) steps of a batch."""
    logp = log_prob(logits, actions, bernoulli)
    return -jnp.sum(jnp.where(mask, jax.lax.stop_gradient(advantages) * logp, 0.0))


def sample_actions(key: jax.Array, logits: jnp.ndarray, bernoulli: bool) -> jnp.ndarray:
    """a ~ pi(. | s): 0/1 for the Bernoulli policy, an index for the softmax one."""
    if bernoulli:
        return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(jnp.int32)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


# ---------------------------------------------------------------------------
# The agent.


class EpisodeBatch(NamedTuple):
    """`batch_episodes` whole episodes side by side, padded to the longest: [T, B, ...]."""

    obs: Any  # [T, B, ...], or networks.SparseRows [T, B, K]
    action: jnp.ndarray  # [T, B] int32
    reward: jnp.ndarray  # [T, B] float32
    mask: jnp.ndarray  # [T, B] bool: the step belongs to its episode (False: padding)


def returns_to_fit(cfg: Config, reward: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """G_t of every real step [T, B], reset at episode ends (and at Pong points with
    `reset_on_reward`), then standardised as `standardize_returns` says."""
    last = mask & ~jnp.concatenate([mask[1:], jnp.zeros_like(mask[:1])])  # episode's end
    ends = point_boundaries(reward, last) if cfg.reset_on_reward else last
    g = discounted_returns(jnp.where(mask, reward, 0.0), ends, cfg.gamma)
    if cfg.standardize_returns == "batch":
        return standardize(g, mask)
    if cfg.standardize_returns == "episode":  # Karpathy's pg-pong.py: per finished episode
        return jax.vmap(standardize, in_axes=1, out_axes=1)(g, mask)
    return jnp.where(mask, g, 0.0)


def validate(cfg: Config) -> None:
    if cfg.network != "mlp":
        raise UserError(f"algo=reinforce uses network=mlp, got network={cfg.network}")
    if cfg.weight_init != "lecun_normal":
        raise UserError("algo=reinforce initialises as Karpathy's network: drop "
                        f"weight_init={cfg.weight_init}")
    if cfg.dueling or cfg.noisy or cfg.distributional or cfg.prioritized:
        raise UserError("dueling, noisy, distributional and prioritized are DQN parts: "
                        "turn them off with algo=reinforce")
    if cfg.select_every:
        raise UserError("select_every is DQN's model selection: set it to 0 with "
                        "algo=reinforce")
    if cfg.baseline_coef < 0:
        raise UserError(f"baseline_coef must be >= 0, got {cfg.baseline_coef}")


def make_agent(cfg: Config, num_actions: int) -> Agent:
    bernoulli = cfg.policy == "bernoulli"
    if bernoulli and num_actions != 2:
        raise UserError(f"policy=bernoulli picks between 2 actions, but {cfg.env_id} has "
                        f"{num_actions}: use policy=softmax")
    network = PolicyMLP(tuple(cfg.hidden_sizes), 1 if bernoulli else num_actions,
                        cfg.activation, cfg.use_bias, cfg.baseline)
    optimizer = make_optimizer(cfg, cfg.batches)  # one update per batch of episodes

    def forward(params: Any, obs: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        logits, value = network.apply(params, obs)
        return (logits[:, 0] if bernoulli else logits), value

    def init(key: jax.Array, obs_example: jnp.ndarray) -> AgentState:
        params = network.init(key, obs_example[None])
        return AgentState(params, None, optimizer.init(params), jnp.zeros((), jnp.int32))

    def act(params: Any, obs: jnp.ndarray, key: jax.Array, epsilon: jnp.ndarray) -> jnp.ndarray:
        """a ~ pi(. | s); with probability epsilon a uniform action instead."""
        k_policy, k_explore, k_random = jax.random.split(key, 3)
        actions = sample_actions(k_policy, forward(params, obs)[0], bernoulli)
        return epsilon_mix(k_explore, k_random, actions, epsilon, num_actions)

    def log_probs(params: Any, obs: jnp.ndarray) -> jnp.ndarray:
        """log pi(a | s) of every action [B, A]."""
        logits = forward(params, obs)[0]
        if bernoulli:
            return jnp.stack([jax.nn.log_sigmoid(-logits), jax.nn.log_sigmoid(logits)], -1)
        return jax.nn.log_softmax(logits, axis=-1)

    def loss_fn(params: Any, batch: EpisodeBatch):
        T, B = batch.action.shape
        flat = jax.tree.map(lambda x: x.reshape((T * B,) + x.shape[2:]), batch.obs)
        logits, value = forward(params, flat)
        mask = batch.mask.reshape(T * B)
        target = returns_to_fit(cfg, batch.reward, batch.mask).reshape(T * B)
        adv = target - value if cfg.baseline else target
        loss_pi = policy_loss(logits, batch.action.reshape(T * B), adv, mask, bernoulli)
        loss = loss_pi
        if cfg.baseline:  # V(s) regresses on the same (standardised) returns
            loss += cfg.baseline_coef * 0.5 * jnp.sum(jnp.where(mask, (value - target) ** 2, 0))
        return loss, loss_pi / jnp.maximum(mask.sum(), 1)

    def update(state: AgentState, batch: EpisodeBatch, key: jax.Array | None = None):
        (_, loss_per_step), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params,
                                                                              batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = AgentState(params, None, opt_state, state.updates + 1)
        return new_state, {"loss": loss_per_step}

    return Agent(init, act, update, log_policy=log_probs)

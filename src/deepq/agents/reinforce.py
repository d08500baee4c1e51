"""REINFORCE (Williams 1992) as Karpathy's "Pong from pixels" (2016) trains it: the maths.

For a batch of episodes with actions a_t drawn from the policy pi(a | s_t):

    G_t = r_t + gamma G_{t+1}        (the sum restarts after a boundary: an episode's end,
                                       or in Pong every point, where r_t != 0)
    A_t = (G_t - mean G) / std G     (standardised over the batch, which cuts the variance)
    loss = -sum_t A_t log pi(a_t | s_t)

and the gradient of the loss is the policy-gradient estimate (Williams 1992, eq. 11).
The policy is Bernoulli over two actions (UP with probability sigmoid(logit), as the
original) or a softmax over any discrete action set. Pure functions; the driver owns keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


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

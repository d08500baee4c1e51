"""A model file: one seed's trained policy without the training state (no replay, no
optimizer), and the jitted `predict` that plays it in a user's own env loop.

    policy = deepq.load_policy("runs/cp/policy.msgpack")
    action = policy.predict(obs)              # one observation, or a batch [B, ...]

`policy.msgpack` holds the params and what rebuilds the network around them: the run's
config, the observation shape and dtype and the number of actions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from deepq.agents import make_agent
from deepq.atomic import atomic_write_bytes
from deepq.config import Config
from deepq.errors import UserError

POLICY_FILE = "policy.msgpack"
FORMAT = "deepq-policy-1"


class Policy:
    """A trained agent's greedy (or epsilon-greedy) action, jitted."""

    def __init__(self, cfg: Config, params: Any, obs_shape: tuple, obs_dtype: str,
                 num_actions: int, seed: int):
        self.config, self.params, self.seed = cfg, params, seed
        self.obs_shape, self.obs_dtype, self.num_actions = obs_shape, obs_dtype, num_actions
        agent = make_agent(cfg, num_actions)
        self._act = jax.jit(agent.act)
        # greedy actions of a value agent: argmax Q alone, without the epsilon draw (~10x
        # faster a call); agents whose action is drawn (a policy gradient's, a noisy net's,
        # Boltzmann's) act through `act`
        plain = agent.q_values is not None and not cfg.noisy \
            and cfg.exploration == "epsilon_greedy"
        self._greedy = jax.jit(lambda p, obs: jnp.argmax(agent.q_values(p, obs), axis=-1)) \
            if plain else None
        self._key = jax.random.PRNGKey(seed)

    def save(self, path: str | Path) -> Path:
        """This policy as a model file, atomically: the params and what rebuilds the
        network around them."""
        doc = {"format": FORMAT, "config": json.dumps(self.config.to_dict()),
               "seed": self.seed, "obs_shape": list(self.obs_shape),
               "obs_dtype": self.obs_dtype, "num_actions": self.num_actions,
               "params": serialization.to_state_dict(jax.device_get(self.params))}
        atomic_write_bytes(Path(path), serialization.msgpack_serialize(doc))
        return Path(path)

    def predict(self, obs: Any, epsilon: float = 0.0, key: Any = None) -> np.ndarray | int:
        """The action for one observation (an int), or actions for a batch [B, ...]."""
        shape = ", ".join(map(str, self.obs_shape))
        try:
            obs = np.asarray(obs, self.obs_dtype)
        except (TypeError, ValueError):
            raise UserError(f"obs must be numbers of shape {self.obs_shape} (or a batch "
                            f"[B, {shape}])") from None
        single = obs.shape == self.obs_shape
        if not single and obs.shape[1:] != self.obs_shape:
            raise UserError(f"obs has shape {obs.shape}: the agent takes {self.obs_shape} or "
                            f"a batch [B, {shape}]")
        if not 0.0 <= epsilon <= 1.0:
            raise UserError(f"epsilon must be in [0, 1], got {epsilon}")
        batch = obs[None] if single else obs
        if epsilon == 0 and self._greedy is not None:
            actions = np.asarray(self._greedy(self.params, batch))
        else:
            if key is None:
                self._key, key = jax.random.split(self._key)
            actions = np.asarray(self._act(self.params, batch, key, epsilon))
        return int(actions[0]) if single else actions


def load_policy(path: str | Path) -> Policy:
    """A model file written by training (RUN/policy.msgpack) or `deepq export`."""
    path = Path(path)
    try:
        doc = serialization.msgpack_restore(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"model file {path} does not exist") from None
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a deepq model file ({exc.__class__.__name__})") \
            from None
    except Exception:  # msgpack's own errors for a file that is not msgpack
        raise UserError(f"{path} is not a deepq model file (unreadable msgpack)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{path} is not a deepq model file ({FORMAT}): export one with "
                        "deepq export RUN --out FILE")
    cfg = Config.from_dict(json.loads(doc["config"]))
    obs_shape = tuple(int(x) for x in doc["obs_shape"])
    num_actions = int(doc["num_actions"])
    agent = make_agent(cfg, num_actions)
    template = jax.eval_shape(agent.init, jax.random.PRNGKey(0),
                              jnp.zeros(obs_shape, doc["obs_dtype"])).params
    try:
        params = serialization.from_state_dict(template, doc["params"])
        shapes = [np.shape(x) for x in jax.tree.leaves(params)]
        if shapes != [x.shape for x in jax.tree.leaves(template)]:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: its params do not fit its config's network: export the "
                        "model file again") from None
    params = jax.tree.map(jnp.asarray, params)
    return Policy(cfg, params, obs_shape, str(doc["obs_dtype"]), num_actions, int(doc["seed"]))

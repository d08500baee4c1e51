"""The algorithm table: each algorithm is an agent factory and the kind of driver it runs in.

An agent is a set of pure, jittable functions over explicit state (agents/base.py); a driver
(drivers/) steps the envs and calls them. A new algorithm is one module with a `make_agent`
and one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from deepq.agents import dqn, pqn, qrdqn, reinforce
from deepq.agents.base import Agent
from deepq.config import Config
from deepq.errors import UserError


class Algorithm(NamedTuple):
    make_agent: Callable[[Config, int], Agent]
    # "steps": env steps into a replay buffer, updates on sampled batches (drivers/common.py);
    # "episodes": whole episodes, one update per batch of them (drivers/episodic.py);
    # "rollouts": short rollouts of parallel envs, updates on each (drivers/rollout.py).
    driver: str
    validate: Callable[[Config], None] | None = None  # refuses fields the algorithm cannot use
    pixels: bool = True  # trains on ALE games from pixels (envs/atari.py)


ALGORITHMS: dict[str, Algorithm] = {
    "dqn": Algorithm(dqn.make_agent, "steps", dqn.validate),
    "random": Algorithm(dqn.make_agent, "steps"),  # the DQN agent at epsilon 1, never trained
    "qrdqn": Algorithm(qrdqn.make_agent, "steps", qrdqn.validate),
    "reinforce": Algorithm(reinforce.make_agent, "episodes", reinforce.validate, pixels=False),
    "pqn": Algorithm(pqn.make_agent, "rollouts", pqn.validate),
}


def algorithm(cfg: Config) -> Algorithm:
    """cfg.algo's row of the table."""
    if cfg.algo not in ALGORITHMS:
        raise UserError(f"algo={cfg.algo!r} is not one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[cfg.algo]


def validated(cfg: Config) -> Config:
    """cfg, checked by its algorithm (Config.validated checks what all algorithms share)."""
    check = algorithm(cfg).validate
    if check is not None:
        check(cfg)
    return cfg


def make_agent(cfg: Config, num_actions: int) -> Agent:
    """The `Agent` of cfg.algo."""
    return algorithm(cfg).make_agent(cfg, num_actions)

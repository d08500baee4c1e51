"""Drivers run an algorithm's agent on an env family (the contract: drivers/base.py).

    (algorithm's driver kind, env backend) -> driver class
"""

from __future__ import annotations

from deepq.agents import algorithm, validated
from deepq.config import Config
from deepq.drivers.base import Driver
from deepq.drivers.episodic import HostEpisodeDriver, JittedEpisodeDriver
from deepq.drivers.host import HostDriver
from deepq.drivers.jitted import JittedDriver
from deepq.drivers.rollout import HostRolloutDriver, JittedRolloutDriver
from deepq.envs import family, resolve
from deepq.errors import UserError

DRIVERS: dict[tuple[str, str], type[Driver]] = {
    ("steps", "gymnax"): JittedDriver,
    ("steps", "gymnasium"): HostDriver,
    ("episodes", "gymnax"): JittedEpisodeDriver,
    ("episodes", "gymnasium"): HostEpisodeDriver,
    ("rollouts", "gymnax"): JittedRolloutDriver,
    ("rollouts", "gymnasium"): HostRolloutDriver,
}


def make_driver(cfg: Config) -> Driver:
    """The driver for cfg's algorithm and env; the env is resolved (and refused with a
    UserError) first."""
    info = resolve(cfg.env_id, cfg.backend, cfg.full_action_set, cfg)
    row = algorithm(validated(cfg))
    if family(info).pixels and not row.pixels:
        raise UserError(f"algo={cfg.algo} does not take ALE ids' DQN preprocessing "
                        f"({cfg.env_id}): train Pong from pixels with --env KarpathyPong-v0")
    return DRIVERS[row.driver, info.backend](cfg, info)

"""Agents: pure functions over explicit state. `make_agent` picks the algorithm's."""

from __future__ import annotations

from deepq.config import Config


def make_agent(cfg: Config, num_actions: int):
    """The `Agent` of cfg.algo: REINFORCE (agents/reinforce.py) or the DQN family
    (agents/dqn.py; `random` acts through the DQN agent with epsilon 1)."""
    if cfg.algo == "reinforce":
        from deepq.agents.reinforce import make_agent as make_reinforce

        return make_reinforce(cfg, num_actions)
    from deepq.agents.dqn import make_agent as make_dqn

    return make_dqn(cfg, num_actions)

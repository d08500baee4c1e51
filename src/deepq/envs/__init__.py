"""Resolve an env id to its family (envs/families.py): a JAX env (gymnax) when one exists,
else Gymnasium, with ALE ids from pixels.

MinAtar (Young & Tian 2019) has no Gymnasium env here: its runs are evaluated in gymnax.
"""

from __future__ import annotations

from deepq.config import Config
from deepq.envs import atari
from deepq.envs.families import FAMILIES, Family, HostEpisodes, family
from deepq.envs.info import EnvInfo
from deepq.envs.makers import (
    GYMNAX_ENVS,
    MINATAR_MAX_STEPS,
    gymnasium_id_known,
    make_gymnasium,
    make_gymnax,
    observation_wrappers,
)
from deepq.errors import UserError

__all__ = ["FAMILIES", "GYMNAX_ENVS", "MINATAR_MAX_STEPS", "EnvInfo", "Family", "HostEpisodes",
           "family", "family_of", "gymnasium_id_known", "make_gymnasium", "make_gymnax",
           "observation_wrappers", "resolve"]


def family_of(env_id: str, backend: str = "auto") -> Family:
    """The family that runs `env_id` on `backend` ("auto", "gymnax" or "gymnasium")."""
    if backend in ("auto", "gymnax") and env_id in GYMNAX_ENVS:
        return FAMILIES["minatar" if env_id.endswith("-MinAtar") else "classic"]
    if backend == "gymnax":
        raise UserError(
            f"{env_id} has no JAX implementation here (JAX envs: {', '.join(GYMNAX_ENVS)}): "
            "use --backend gymnasium or auto"
        )
    if env_id in GYMNAX_ENVS and not gymnasium_id_known(env_id):
        raise UserError(f"{env_id} exists only as a gymnax env: use --backend auto or gymnax")
    return FAMILIES["atari" if atari.is_atari(env_id) else "gymnasium"]


def resolve(env_id: str, backend: str = "auto", full_action_set: bool = False,
            cfg=None) -> EnvInfo:
    """The EnvInfo of `env_id` on `backend`, its action space checked to be discrete.

    ALE ids need `cfg` (its preprocessing sets the observation shape)."""
    cfg = (cfg or Config()).replace(full_action_set=full_action_set)
    return family_of(env_id, backend).describe(env_id, cfg)

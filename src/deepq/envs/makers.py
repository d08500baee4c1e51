"""Build one env of an id: a gymnax env (JAX) or a Gymnasium env (host), with clear errors.

The JAX env of an id must behave like the Gymnasium env of the same id (same observation
layout, actions and time limit), because a run trained in JAX is evaluated on Gymnasium.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types

from deepq.envs import karpathy
from deepq.errors import UserError

# id -> (gymnax module under gymnax.environments, class name)
GYMNAX_ENVS: dict[str, tuple[str, str]] = {
    "CartPole-v1": ("classic_control.cartpole", "CartPole"),
    "Acrobot-v1": ("classic_control.acrobot", "Acrobot"),
    "MountainCar-v0": ("classic_control.mountain_car", "MountainCar"),
    "Asterix-MinAtar": ("minatar.asterix", "MinAsterix"),
    "Breakout-MinAtar": ("minatar.breakout", "MinBreakout"),
    "Freeway-MinAtar": ("minatar.freeway", "MinFreeway"),
    "Seaquest-MinAtar": ("minatar.seaquest", "MinSeaquest"),
    "SpaceInvaders-MinAtar": ("minatar.space_invaders", "MinSpaceInvaders"),
}


def _import_gymnax_module(module: str) -> types.ModuleType:
    """Import one gymnax env module without running gymnax/__init__.py.

    `import gymnax` imports every env and, with them, matplotlib, seaborn and scipy: 2.5 s
    of a CartPole run's 5 s budget on a 2-core machine. Stand-in parent packages let the
    env's own module load in 0.2 s; they are removed afterwards, so a later `import gymnax`
    still runs the real package and reuses the already-loaded submodules.
    """
    full = f"gymnax.environments.{module}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.find_spec("gymnax")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("gymnax is not installed: run `make install` (or pip install gymnax)")
    root = list(spec.submodule_search_locations)[0]
    stand_ins = []
    for name, path in (("gymnax", root), ("gymnax.environments", f"{root}/environments")):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [path]
            sys.modules[name] = stub
            stand_ins.append(name)
    try:
        return importlib.import_module(full)
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)


# Young & Tian's MinAtar games end only when the game does. gymnax truncates them at 1,000
# steps, which a trained agent reaches: late in our Asterix run, episodes of 900-976 steps
# scored 38-66 against a mean of ~10. deepq truncates them at 10,000 steps instead, far
# past any episode the papers' agents play. Freeway keeps its 2,500 steps, the game's own
# clock, and ends there as minatar's does: terminal, where gymnax truncates.
MINATAR_MAX_STEPS = 10_000


def make_gymnax(env_id: str, full_action_set: bool = False):
    """The gymnax env object and its params (gymnax's defaults; MinAtar's step limit above)."""
    module, cls = GYMNAX_ENVS[env_id]
    kwargs = {"use_minimal_action_set": not full_action_set} if "MinAtar" in env_id else {}
    env_cls = getattr(_import_gymnax_module(module), cls)
    if env_id == "Freeway-MinAtar":
        env = _freeway_that_ends(env_cls)(**kwargs)
        return env, env.default_params
    env = env_cls(**kwargs)
    params = env.default_params
    if "MinAtar" in env_id:
        params = params.replace(max_steps_in_episode=MINATAR_MAX_STEPS)
    return env, params


@functools.cache
def _freeway_that_ends(cls: type) -> type:
    """gymnax's Freeway, whose clock running out is a terminal state (minatar: `terminal`
    once its 2,500-step timer expires) rather than a time-limit truncation."""

    class Freeway(cls):
        def is_terminated(self, state, params):
            return state.time >= params.max_steps_in_episode

    return Freeway


def gymnasium_id_known(env_id: str) -> bool:
    import gymnasium as gym

    if env_id == "KarpathyPong-v0":  # deepq's own: envs/karpathy.py
        karpathy.register()
    if env_id.startswith("ALE/"):
        try:
            import ale_py

            gym.register_envs(ale_py)
        except ImportError:
            raise UserError(f"{env_id} needs ale-py: pip install ale-py") from None
    return env_id in gym.envs.registry


def make_gymnasium(env_id: str, **kwargs):
    """A single Gymnasium env, turning construction failures into UserError; a Discrete
    observation (Taxi, FrozenLake, CliffWalking) becomes its one-hot vector, as SB3 does."""
    import gymnasium as gym

    if not gymnasium_id_known(env_id):
        raise UserError(_unknown_id_message(env_id))
    try:
        env = gym.make(env_id, **kwargs)
    except Exception as exc:  # missing extras (box2d, mujoco, ...) and the like
        raise UserError(f"could not create {env_id}: {exc}".splitlines()[0]) from None
    for wrapper in observation_wrappers(env_id):
        env = wrapper(env)
    return env


@functools.cache
def observation_wrappers(env_id: str) -> tuple:
    """The wrappers a Gymnasium id's envs get (vector envs pass them to make_vec):
    FlattenObservation, which is the one-hot encoding, for a Discrete observation space."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        discrete = isinstance(env.observation_space, gym.spaces.Discrete)
    finally:
        env.close()
    return (gym.wrappers.FlattenObservation,) if discrete else ()


def _unknown_id_message(env_id: str) -> str:
    import difflib

    import gymnasium as gym

    names = list(GYMNAX_ENVS) + list(gym.envs.registry)
    close = difflib.get_close_matches(env_id, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see `deepq envs` for known ids"
    return f"unknown env id {env_id!r}: {hint}"

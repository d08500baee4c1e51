"""The env families, one adapter each: how an id is described, which env trains a run, which
env scores it and which env draws it.

    classic    gymnax's classic control: trained in JAX, scored and drawn on Gymnasium's same id
    minatar    MinAtar (Young & Tian 2019), in gymnax only: trained, scored and drawn in JAX
    gymnasium  any Gymnasium id with discrete actions: trained, scored and drawn on the host
    atari      an ALE game from pixels (envs/atari.py), on the host, scored by the DQN papers'
               protocol and drawn as the agent sees it

The host side of every family is a `HostEpisodes`: `n` envs stepped together with next-step
autoreset (after an episode ends, the next step only resets the env and ignores its action),
which the one host episode loop (`rollout.play_host`) plays for evaluation and recording, and
the Q traces' random walk steps.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import jax
import numpy as np

from deepq.config import Config
from deepq.envs import atari
from deepq.envs.atari import AtariEnvs
from deepq.envs.info import EnvInfo
from deepq.envs.makers import make_gymnasium, make_gymnax, observation_wrappers
from deepq.errors import UserError
from deepq.report import draw_planes


class HostEpisodes(ABC):
    """`n` envs on the host, stepped together; the step after an episode's end resets it."""

    num_envs: int

    @abstractmethod
    def reset(self, seeds: list[int]) -> np.ndarray:
        """Observations [n, ...] of fresh episodes, seeded by `seeds` (one per env)."""

    @abstractmethod
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(observations, rewards, ended) [n] after one step of every env."""

    @abstractmethod
    def frame(self) -> np.ndarray:
        """An RGB picture [H, W, 3] of env 0 now (for recordings)."""

    @abstractmethod
    def close(self) -> None:
        """Release the envs."""


class GymnasiumEpisodes(HostEpisodes):
    """A Gymnasium vector env (the id's own vectorised version when it has one; a sync one
    when drawing), observations in the run's dtype."""

    def __init__(self, env_id: str, n: int, dtype: str, drawn: bool = False):
        import gymnasium as gym

        make_gymnasium(env_id).close()  # validates the id with a clear error
        if drawn:  # pygame renders off screen: no sound card or display needed
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        self.vectorised = bool(gym.spec(env_id).vector_entry_point) and not drawn
        extra = {} if self.vectorised else {"wrappers": observation_wrappers(env_id)}
        if drawn:
            extra["render_mode"] = "rgb_array"
        self.envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point"
                                 if self.vectorised else "sync", **extra)
        self.num_envs = n
        self.dtype = dtype

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Seeds s, s+1, ... are passed as the one int s: a sync vector env seeds env i with
        s + i, and an id's own vector env (CartPole's) takes only an int, from which it
        draws every env's start."""
        seeds = [int(s) for s in seeds]
        consecutive = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        if not consecutive and self.vectorised:
            raise ValueError(f"{self.envs.spec.id}'s own vector env takes consecutive seeds")
        obs, _ = self.envs.reset(seed=seeds[0] if consecutive else seeds)
        return np.asarray(obs, self.dtype)

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, _ = self.envs.step(np.asarray(actions))
        return np.asarray(obs, self.dtype), np.asarray(reward), terminated | truncated

    def frame(self) -> np.ndarray:
        return self.envs.render()[0]

    def close(self) -> None:
        self.envs.close()


class AtariEpisodes(HostEpisodes):
    """ALE games as the papers evaluate them (no-op starts, game over ends an episode,
    unclipped rewards, the frame cap); drawn as the agent's newest 84x84 frame, 2x."""

    def __init__(self, cfg: Config, n: int):
        self.envs = AtariEnvs(cfg, n, training=False)
        self.num_envs = n

    def reset(self, seeds: list[int]) -> np.ndarray:
        self.obs = self.envs.reset(seeds)
        return self.obs

    def step(self, actions: np.ndarray):
        out = self.envs.step(actions)
        self.obs = out.obs
        return out.obs, out.reward, out.game_over

    def frame(self) -> np.ndarray:
        gray = self.obs[0, :, :, -1].repeat(2, axis=0).repeat(2, axis=1)
        return np.repeat(gray[:, :, None], 3, axis=2)

    def close(self) -> None:
        self.envs.close()


class GymnaxEpisode(HostEpisodes):
    """One gymnax env stepped from the host, each observation drawn as coloured planes
    (MinAtar's picture). gymnax resets inside the step that ends an episode."""

    num_envs = 1

    def __init__(self, cfg: Config):
        self.env, self.params = make_gymnax(cfg.env_id, cfg.full_action_set)
        self._step = jax.jit(self.env.step)

    def reset(self, seeds: list[int]) -> np.ndarray:
        k_reset, self.key = jax.random.split(jax.random.PRNGKey(seeds[0]))
        self.obs, self.state = self.env.reset(k_reset, self.params)
        self.t = 0
        return np.asarray(self.obs)[None]

    def step(self, actions: np.ndarray):
        self.obs, self.state, reward, terminated, truncated, _ = self._step(
            jax.random.fold_in(self.key, self.t), self.state, int(actions[0]), self.params)
        self.t += 1
        ended = bool(terminated) or bool(truncated) or self.t >= self.params.max_steps_in_episode
        return np.asarray(self.obs)[None], np.asarray([reward]), np.asarray([ended])

    def frame(self) -> np.ndarray:
        return draw_planes(np.asarray(self.obs))

    def close(self) -> None:
        """A JAX env holds nothing to release."""


class Family(ABC):
    """One env family: see the module docstring."""

    name: str
    backend: str  # where training steps the env: "gymnax" (in JAX) or "gymnasium" (host)
    pixels = False  # observations are ALE frames (frame replay, pixel presets)
    scored_in_jax = False  # evaluated in gymnax (no Gymnasium env of the id)
    random_baseline = False  # evaluation also reports a random agent's score

    @abstractmethod
    def describe(self, env_id: str, cfg: Config) -> EnvInfo:
        """The EnvInfo of `env_id` in this family (its spaces checked)."""

    def jax_env(self, cfg: Config) -> tuple[Any, Any]:
        """The gymnax env and its params that train (and, for MinAtar, score) a run."""
        raise NotImplementedError(f"the {self.name} family has no JAX env")

    @abstractmethod
    def episodes(self, cfg: Config, info: EnvInfo, n: int) -> HostEpisodes:
        """`n` reference envs on the host, for evaluation and the Q traces' states."""

    def drawn_episode(self, cfg: Config, info: EnvInfo) -> HostEpisodes:
        """One reference env whose `frame()` draws it, for recordings."""
        return self.episodes(cfg, info, 1)

    def record_epsilon(self, cfg: Config) -> float:
        """The recorded episode's epsilon (greedy, or the evaluation protocol's)."""
        return 0.0

    def video_speed(self, cfg: Config, fps: int, shrink: int) -> tuple[int, int]:
        """A recording's frames per second of play and its shrink factor, given the ones
        asked for (one frame per agent step)."""
        return fps, shrink


class Classic(Family):
    name, backend = "classic", "gymnax"

    def describe(self, env_id: str, cfg: Config) -> EnvInfo:
        env, params = make_gymnax(env_id, cfg.full_action_set)
        return EnvInfo(env_id, self.name, tuple(env.observation_space(params).shape),
                       int(env.action_space(params).n))

    def jax_env(self, cfg: Config):
        return make_gymnax(cfg.env_id, cfg.full_action_set)

    def episodes(self, cfg: Config, info: EnvInfo, n: int) -> HostEpisodes:
        return GymnasiumEpisodes(info.env_id, n, info.obs_dtype)

    def drawn_episode(self, cfg: Config, info: EnvInfo) -> HostEpisodes:
        return GymnasiumEpisodes(info.env_id, 1, info.obs_dtype, drawn=True)


class MinAtar(Classic):
    name = "minatar"
    scored_in_jax = True

    def describe(self, env_id: str, cfg: Config) -> EnvInfo:
        env, params = make_gymnax(env_id, cfg.full_action_set)
        return EnvInfo(env_id, self.name, tuple(env.observation_space(params).shape),
                       int(env.action_space(params).n), "bool")

    def episodes(self, cfg: Config, info: EnvInfo, n: int) -> HostEpisodes:
        raise NotImplementedError("MinAtar is scored in JAX (evaluate.evaluate_gymnax)")

    def drawn_episode(self, cfg: Config, info: EnvInfo) -> HostEpisodes:
        return GymnaxEpisode(cfg)

    def video_speed(self, cfg: Config, fps: int, shrink: int) -> tuple[int, int]:
        return 10, 1  # ten agent steps a second; the planes are drawn at their own size


class Gymnasium(Family):
    name, backend = "gymnasium", "gymnasium"

    def describe(self, env_id: str, cfg: Config) -> EnvInfo:
        import gymnasium as gym

        env = make_gymnasium(env_id)
        try:
            if not isinstance(env.action_space, gym.spaces.Discrete):
                raise UserError(
                    f"{env_id} has a {type(env.action_space).__name__} action space; deepq's "
                    "agents need a Discrete one: pick an env with discrete actions "
                    "(e.g. CartPole-v1)")
            if env.action_space.start != 0:
                raise UserError(f"{env_id}: Discrete action spaces must start at 0")
            shape = tuple(env.observation_space.shape or ())
            if not shape:
                raise UserError(
                    f"{env_id} has a {type(env.observation_space).__name__} observation "
                    "space; deepq needs a Box observation")
            dtype = str(env.observation_space.dtype)
            return EnvInfo(env_id, self.name, shape, int(env.action_space.n),
                           dtype if dtype in ("uint8", "int8") else "float32")
        finally:
            env.close()

    def episodes(self, cfg: Config, info: EnvInfo, n: int) -> HostEpisodes:
        return GymnasiumEpisodes(info.env_id, n, info.obs_dtype)

    def drawn_episode(self, cfg: Config, info: EnvInfo) -> HostEpisodes:
        return GymnasiumEpisodes(info.env_id, 1, info.obs_dtype, drawn=True)


class Atari(Family):
    name, backend = "atari", "gymnasium"
    pixels = True
    random_baseline = True

    def describe(self, env_id: str, cfg: Config) -> EnvInfo:
        cfg = cfg.replace(env_id=env_id)
        envs = AtariEnvs(cfg, 1)
        try:
            return EnvInfo(env_id, self.name, atari.obs_shape(cfg), envs.num_actions, "uint8")
        finally:
            envs.close()

    def episodes(self, cfg: Config, info: EnvInfo, n: int) -> HostEpisodes:
        return AtariEpisodes(cfg, n)

    def record_epsilon(self, cfg: Config) -> float:
        return cfg.eval_epsilon

    def video_speed(self, cfg: Config, fps: int, shrink: int) -> tuple[int, int]:
        return max(1, 60 // cfg.frame_skip), 1  # the game's speed: 60 emulator frames a second


FAMILIES: dict[str, Family] = {f.name: f for f in (Classic(), MinAtar(), Gymnasium(), Atari())}


def family(info: EnvInfo) -> Family:
    return FAMILIES[info.family]

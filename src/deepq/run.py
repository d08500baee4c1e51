"""A trained run: its config and one set of parameters per seed, loaded from its run dir.

    run = deepq.load("runs/cp")
    run.evaluate(episodes=100)          # {"mean": ..., "per_seed_mean": [...], ...}
    run.predict(obs)                    # greedy actions of seed 0
    run.record("cp.gif")                # one greedy episode
    run.export("cp.msgpack")            # a model file: deepq.load_policy(...).predict(obs)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepq import checkpoint
from deepq.agents import make_agent
from deepq.atomic import atomic_write_text
from deepq.config import Config
from deepq.drivers.base import saved_params
from deepq.envs import EnvInfo, family, family_of, resolve, seeds
from deepq.errors import UserError
from deepq.evaluate import evaluate, summarize
from deepq.policy import Policy
from deepq.render import episode_frames
from deepq.report import plot_runs, write_video
from deepq.rundir import (
    CONFIG_FILE,
    CURVES_FILE,
    EVAL_FILE,
    check_output_file,
    prepare_new_run,
    read_config,
)


class Run:
    """The trained agents of a run directory: one set of parameters per seed."""

    def __init__(self, path: str | Path, config: Config, params: Any,
                 info: EnvInfo | None = None):
        self.path = Path(path)
        self.config = config
        self.params = params  # leading seed axis
        self.info = info or resolve(config.env_id, config.backend, config.full_action_set,
                                    config)
        self.num_actions = self.info.num_actions
        self.agent = make_agent(config, self.num_actions)
        self._policies: dict[int, Policy] = {}  # predict's jitted players, one per seed
        self._key0 = None

    @classmethod
    def load(cls, path: str | Path) -> Run:
        cfg = read_config(Path(path))
        ckpt, raw = checkpoint.read_latest(Path(path))
        try:
            params = saved_params(cfg, raw["state"]["carry"])
        except (KeyError, TypeError):
            raise UserError(f"checkpoint {ckpt} has no agent parameters: retrain the run") from None
        params = jax.tree.map(jnp.asarray, params)
        run = cls(path, cfg, params)
        expected = jax.eval_shape(run.agent.init, jax.random.PRNGKey(0),
                                  jnp.zeros(run.info.obs_shape, run.info.obs_dtype)).params
        want = [x.shape for x in jax.tree.leaves(expected)]
        got = [x.shape[1:] for x in jax.tree.leaves(params)]
        if want != got or jax.tree.leaves(params)[0].shape[0] != cfg.num_seeds:
            raise UserError(f"checkpoint {ckpt} does not match {path}/{CONFIG_FILE}: the network "
                            "shapes differ; retrain the run")
        return run

    def evaluate(self, episodes: int | None = None, epsilon: float | None = None,
                 env_id: str | None = None, write: bool = False) -> dict:
        """Greedy (or epsilon) episodes of every seed on the run's reference env
        (evaluate.evaluate), or on the Gymnasium env `env_id` with the same spaces."""
        cfg = self.config
        episodes = cfg.eval_episodes if episodes is None else episodes
        epsilon = cfg.eval_epsilon if epsilon is None else epsilon
        env_id = env_id or cfg.env_id
        if episodes <= 0:
            raise UserError(f"--episodes must be positive, got {episodes}")
        if not 0.0 <= epsilon <= 1.0:
            raise UserError(f"--epsilon must be in [0, 1], got {epsilon}")
        other = None
        if env_id != cfg.env_id:
            self._check_fits(env_id)
            other = env_id
        returns = evaluate(self.agent.act, self.params, cfg, self.info, episodes, epsilon,
                           cfg.seed, env_id=other)
        result = summarize(returns, cfg.seeds, env_id, epsilon)
        if family(self.info).random_baseline and other is None:  # the papers' yardstick
            rand = evaluate(self.agent.act, self.params, cfg, self.info, episodes, 1.0,
                            seeds.random_baseline(cfg.seed))
            result["random_mean"] = float(rand.mean())
            result["random_std"] = float(rand.std())
        if write:
            atomic_write_text(self.path / EVAL_FILE, json.dumps(result, indent=2))
        return result

    def _check_fits(self, env_id: str) -> None:
        """The agent can play `env_id`: its observations and actions are this run's."""
        if family_of(env_id).scored_in_jax:
            raise UserError(f"--env {env_id} has no Gymnasium env to evaluate on: evaluate "
                            f"a run trained on {env_id} instead")
        other = resolve(env_id, "gymnasium" if self.info.backend == "gymnasium" else "auto")
        if other.obs_shape != self.info.obs_shape or other.num_actions != self.num_actions:
            raise UserError(
                f"--env {env_id} does not fit this run's agent: it has observations "
                f"{list(other.obs_shape)} and {other.num_actions} actions, the agent was "
                f"trained on {self.config.env_id} with {list(self.info.obs_shape)} and "
                f"{self.num_actions}; evaluate on an env with the same spaces")

    def predict(self, obs: Any, seed_index: int = 0, epsilon: float = 0.0,
                key: Any = None) -> np.ndarray | int:
        """The action of one seed's agent for one observation (an int), or the actions for
        a batch [B, ...]; jitted (policy.Policy), `key` PRNGKey(0) unless given."""
        if key is None:  # made once: a key costs a dispatch per call
            if self._key0 is None:
                self._key0 = jax.random.PRNGKey(0)
            key = self._key0
        return self.policy(seed_index).predict(obs, epsilon, key)

    def policy(self, seed_index: int = 0) -> Policy:
        """One seed's jitted player (made once per seed): `predict`, `save`."""
        self._check_seed_index(seed_index)
        if seed_index not in self._policies:
            params = jax.tree.map(lambda x: x[seed_index], self.params)
            self._policies[seed_index] = Policy(
                self.config, params, tuple(self.info.obs_shape), self.info.obs_dtype,
                self.num_actions, self.config.seeds[seed_index])
        return self._policies[seed_index]

    def record(self, out: str | Path, seed_index: int = 0, max_steps: int = 10_000,
               fps: int = 50, frame_every: int = 1, shrink: int = 1) -> Path:
        """Render one greedy episode of one seed to a .gif or .mp4."""
        out = Path(out)
        if out.suffix.lower() not in (".gif", ".mp4"):
            raise UserError(f"--out {out}: the video must end in .gif or .mp4")
        self._check_seed_index(seed_index)
        check_output_file(out)
        cfg = self.config
        params = jax.tree.map(lambda x: x[seed_index], self.params)
        frames = episode_frames(cfg, self.info, params, self.agent.act, max_steps, frame_every)
        fps, shrink = family(self.info).video_speed(cfg, fps, shrink)
        return write_video(frames, out, fps=max(1, fps // frame_every), shrink=shrink)

    def _check_seed_index(self, seed_index: Any) -> None:
        n = self.config.num_seeds
        if not isinstance(seed_index, int | np.integer) or not 0 <= seed_index < n:
            raise UserError(f"seed index {seed_index!r} out of range: the run has {n} seed(s), "
                            f"indices 0 to {n - 1}")

    def export(self, out: str | Path, seed_index: int = 0) -> Path:
        """One seed's model file (policy.py): its params and what rebuilds its network."""
        policy = self.policy(seed_index)
        check_output_file(Path(out))
        return policy.save(out)

    def plot(self, out: str | Path | None = None) -> Path:
        return plot_runs([self.path], out or self.path / CURVES_FILE)

    def save(self, path: str | Path) -> Path:
        """Copy this run's config and newest checkpoint to a new run dir."""
        dest = Path(path)
        prepare_new_run(dest, force=False)
        shutil.copy2(self.path / CONFIG_FILE, dest / CONFIG_FILE)
        (dest / checkpoint.CHECKPOINT_DIR).mkdir(exist_ok=True)
        src = checkpoint.latest(self.path)
        shutil.copy2(src, dest / checkpoint.CHECKPOINT_DIR / src.name)
        return dest


def load(path: str | Path) -> Run:
    return Run.load(path)

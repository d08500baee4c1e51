"""Training runs: the run directory, the loop around a driver, and the `Run` object.

    run = deepq.train(Config(env_id="CartPole-v1"), "runs/cp")
    run.evaluate(episodes=100)          # {"mean": ..., "per_seed_mean": [...], ...}
    run.predict(obs)                     # greedy actions of seed 0
    run = deepq.load("runs/cp")

The driver yields chunks; logging, checkpointing and the divergence check happen here,
between chunks, outside the compiled code.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepq import checkpoint
from deepq.config import Config
from deepq.errors import DivergedError, UserError

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
GIF_FILE = "episode.gif"
_OURS = (CONFIG_FILE, EVAL_FILE, SUMMARY_FILE, CURVES_FILE, GIF_FILE, "metrics.csv", "tb",
         checkpoint.CHECKPOINT_DIR, "qtrace.csv", "heldout_states.npy")


def make_driver(cfg: Config):
    from deepq.envs import resolve

    info = resolve(cfg.env_id, cfg.backend, cfg.full_action_set, cfg)
    if cfg.algo == "reinforce":
        from deepq.drivers.episodic import HostEpisodeDriver, JittedEpisodeDriver

        if info.atari:
            raise UserError(f"algo=reinforce does not take ALE ids' DQN preprocessing "
                            f"({cfg.env_id}): train Pong from pixels with --env KarpathyPong-v0")

        return (JittedEpisodeDriver if info.backend == "gymnax" else HostEpisodeDriver)(cfg, info)
    if info.backend == "gymnax":
        from deepq.drivers.jitted import JittedDriver

        return JittedDriver(cfg, info)
    from deepq.drivers.host import HostDriver

    return HostDriver(cfg, info)


# ---------------------------------------------------------------------------
# The run directory.


def _cannot_write(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write to output dir {path}: {exc.strerror}; pick another --out")


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".deepq-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def prepare_new_run(out: Path, force: bool) -> None:
    """A fresh run dir. An existing non-empty one needs --force (deepq files only are removed)."""
    try:
        exists = out.exists()  # raises for a path the OS cannot look up (a name over 255 bytes)
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    if exists and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: pick another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UserError(
                f"run dir {out} already exists: pass --resume {out} to continue it, or --force "
                "to overwrite it"
            )
        if not (out / CONFIG_FILE).exists():
            raise UserError(f"--force would overwrite {out}, which is not a deepq run dir "
                            "(no config.json): pick another --out")
        _check_writable(out)
        for name in _OURS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    _check_writable(out)


def read_config(run_dir: Path) -> Config:
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise UserError(f"run dir {run_dir} does not exist: train one with deepq train --out DIR")
    if not path.exists():
        raise UserError(f"{run_dir} is not a deepq run dir (no {CONFIG_FILE})")
    try:
        return Config.from_dict(json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path} is corrupt: restore it or retrain the run") from None


def write_config(run_dir: Path, cfg: Config, preset: str | None, backend: str) -> None:
    from deepq import __version__
    from deepq.config import PRESETS

    doc = {
        "deepq_version": __version__,
        "preset": preset,
        "citation": PRESETS[preset].citation if preset in PRESETS else None,
        "backend": backend,
        "config": cfg.to_dict(),
    }
    checkpoint.atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")


# ---------------------------------------------------------------------------
# Training.


def _all_finite(params: Any) -> np.ndarray:
    """Per seed: are all parameters finite? (params have a leading seed axis)."""
    import jax
    import jax.numpy as jnp

    leaves = jax.tree.leaves(params)
    per_leaf = [jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1) for x in leaves]
    return np.asarray(jnp.all(jnp.stack(per_leaf), axis=0))


class _Progress:
    """Live progress bar on stderr: steps, episodes, recent return, steps/s, ETA."""

    def __init__(self, total: int, done: int, enabled: bool, unit: str = "steps"):
        self.enabled = enabled and sys.stderr.isatty()
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn(unit + "  ep {task.fields[episodes]}  return {task.fields[ret]}"),
            TextColumn("{task.fields[sps]} steps/s"), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total, completed=done, episodes=0,
                                      ret="-", sps="-")

    def update(self, done: int, episodes: int, recent: float | None, sps: float) -> None:
        if self.enabled:
            ret = "-" if recent is None else f"{recent:.1f}"
            self.bar.update(self.task, completed=done, episodes=episodes, ret=ret,
                            sps=f"{sps:,.0f}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def train(
    config: Config | None = None,
    out: str | Path = "runs/latest",
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    preset: str | None = None,
    total_steps: int | None = None,
    total_episodes: int | None = None,
    artifacts: bool = True,
) -> Run:
    """Train (or resume) a run in `out`; returns the finished `Run`.

    With resume=True the config is the run dir's own; `total_steps` (`total_episodes` for
    reinforce) may extend it.
    """
    from deepq.qtrace import QTrace, heldout_states
    from deepq.report import MetricsWriter

    out = Path(out)
    started = time.perf_counter()
    if resume:
        cfg = read_config(out)
        if total_steps is not None:
            cfg = cfg.replace(total_steps=total_steps).validated()
        if total_episodes is not None:
            cfg = cfg.replace(total_episodes=total_episodes).validated()
        doc = json.loads((out / CONFIG_FILE).read_text())
        preset = doc.get("preset")
        driver = make_driver(cfg)
        template = driver.initial_state()
        state, meta = checkpoint.restore(checkpoint.latest(out), template)
        state = type(state)(state.carry, int(meta["iteration"]), int(meta["fill_start"]))
        if not meta.get("has_replay", True):
            state = state._replace(fill_start=state.iteration)
        episodes = [int(x) for x in meta["episodes"]]
        _check_writable(out)
        write_config(out, cfg, preset, driver.info.backend)
    else:
        cfg = (config or Config()).validated()
        driver = make_driver(cfg)  # validates the env before anything on disk changes
        prepare_new_run(out, force)
        write_config(out, cfg, preset, driver.info.backend)
        state = driver.initial_state()
        episodes = [0] * cfg.num_seeds

    clock = driver.clock  # env steps per seed; episodes per seed for reinforce
    resume_at = clock(state) if resume else None
    writer = MetricsWriter(out, cfg.seeds, window=driver.total // 100, resume_at=resume_at,
                           clock_column=driver.clock_column)
    states = heldout_states(out, cfg, driver.info)
    qtrace = None if states is None else QTrace(out, driver.agent, states, resume_at)
    if qtrace is not None and not resume:
        _log_qtrace(qtrace, writer, cfg, state, 0)
    bar = _Progress(driver.total * cfg.num_seeds, clock(state) * cfg.num_seeds, progress,
                    driver.clock_unit)
    last_saved = clock(state)
    recent: list[float] = []
    steps_per_sec = 0.0
    first_chunk_s = None
    train_started = time.perf_counter()
    try:
        prev = state
        prev_env_steps = sum(driver.env_steps(state))  # read now: chunks donate the state
        tick = time.perf_counter()
        for state, logs in driver.chunks(state):  # noqa: B020 (state advances chunk by chunk)
            finite = _all_finite(state.carry.learner.agent.params)
            now = time.perf_counter()
            first_chunk_s = first_chunk_s if first_chunk_s is not None else now - tick
            env_steps = sum(driver.env_steps(state))
            steps_per_sec = (env_steps - prev_env_steps) / max(now - tick, 1e-9)  # all seeds
            prev_env_steps = env_steps
            tick = now
            rows = driver.rows(logs, prev, episodes, round(steps_per_sec, 1))
            if not finite.all():
                bad = [s for s, ok in zip(cfg.seeds, finite) if not ok]
                last = checkpoint.list_checkpoints(out)
                kept = f"last good checkpoint kept: {last[-1]}" if last else "no checkpoint yet"
                raise DivergedError(
                    f"run diverged: non-finite parameters in seed(s) {bad} between "
                    f"{driver.clock_unit} "
                    f"{clock(prev)} and {clock(state)}; "
                    f"{kept}; lower learning_rate or set max_grad_norm"
                )
            done = clock(state)
            writer.write(rows, done)
            if qtrace is not None:
                _log_qtrace(qtrace, writer, cfg, state, done)
            recent = (recent + [r["return"] for r in rows])[-20 * cfg.num_seeds:]
            bar.update(done * cfg.num_seeds, sum(episodes),
                       float(np.mean(recent)) if recent else None, steps_per_sec)
            every = cfg.checkpoint_every
            if every and done // every > last_saved // every and done < driver.total:
                _save(out, cfg, state, episodes, driver)
                last_saved = done
            prev = state
        _save(out, cfg, state, episodes, driver)
    finally:
        bar.close()
        writer.close()
    train_s = time.perf_counter() - train_started

    run = Run(out, cfg, driver.params(state), driver.info)
    env_steps = driver.env_steps(state)
    summary = {
        "steps_per_seed": env_steps if driver.clock_unit == "episodes" else env_steps[0],
        "seeds": cfg.seeds,
        "episodes": episodes,
        "driver": driver.kind,
        "setup_seconds": round(train_started - started, 3),
        "first_chunk_seconds": round(first_chunk_s or 0.0, 3),
        "train_seconds": round(train_s, 3),
        "last_chunk_steps_per_sec": round(steps_per_sec, 1),
    }
    if cfg.select_every:
        summary["selected_scores"] = [float(x) for x in np.asarray(state.carry.best.score)]
        summary["stopped_early"] = state.iteration < cfg.iterations
    if artifacts:
        from deepq.report import start_plot_process

        plotter = start_plot_process(out, out / CURVES_FILE)  # runs beside eval and GIF
        t = time.perf_counter()
        run.evaluate(write=True)
        summary["eval_seconds"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        if cfg.gif:
            run.record(out / GIF_FILE, frame_every=2, shrink=2)  # small and quick to write
        if plotter.wait() != 0:
            run.plot()  # in this process, so that a failure reports its own error
        summary["artifact_seconds"] = round(time.perf_counter() - t, 3)
    summary["total_seconds"] = round(time.perf_counter() - started, 3)
    checkpoint.atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return run


def _log_qtrace(qtrace: Any, writer: Any, cfg: Config, state: Any, steps: int) -> None:
    values = qtrace.values(state.carry.learner.agent.params)
    qtrace.log(cfg.seeds, values, steps)
    writer.add_scalars("train/heldout_avg_max_q", values, steps)


def _save(out: Path, cfg: Config, state: Any, episodes: list[int], driver: Any) -> Path:
    has_replay = hasattr(state.carry.learner, "replay")
    meta = {
        "iteration": int(state.iteration),
        "fill_start": int(state.fill_start),
        "clock": int(driver.clock(state)),
        "clock_unit": driver.clock_unit,
        "episodes": list(episodes),
        "driver": driver.kind,
        "has_replay": bool(cfg.save_replay) and has_replay,
    }
    drop = ("carry.learner.replay",) if has_replay and not cfg.save_replay else ()
    return checkpoint.save(out, int(driver.clock(state)), state, meta, drop=drop)


# ---------------------------------------------------------------------------
# A finished (or loaded) run.


class Run:
    """The trained agents of a run directory: one set of parameters per seed."""

    def __init__(self, path: str | Path, config: Config, params: Any, info: Any = None):
        from deepq.agents import make_agent
        from deepq.envs import resolve

        self.path = Path(path)
        self.config = config
        self.params = params  # leading seed axis
        self.info = info or resolve(config.env_id, config.backend, config.full_action_set,
                                         config)
        self.num_actions = self.info.num_actions
        self.agent = make_agent(config, self.num_actions)

    @classmethod
    def load(cls, path: str | Path) -> Run:
        import jax
        import jax.numpy as jnp

        cfg = read_config(Path(path))
        ckpt = checkpoint.latest(Path(path))
        raw = checkpoint.read_raw(ckpt)
        try:
            carry = raw["state"]["carry"]
            params = (carry["best"] if cfg.select_every else carry["learner"]["agent"])["params"]
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
        """Greedy (or epsilon) episodes of every seed on the reference Gymnasium env
        (in gymnax for envs that only exist there, like MinAtar)."""
        from deepq.evaluate import evaluate, evaluate_reference, summarize

        cfg = self.config
        episodes = cfg.eval_episodes if episodes is None else episodes
        epsilon = cfg.eval_epsilon if epsilon is None else epsilon
        env_id = env_id or cfg.env_id
        if episodes <= 0:
            raise UserError(f"--episodes must be positive, got {episodes}")
        if not 0.0 <= epsilon <= 1.0:
            raise UserError(f"--epsilon must be in [0, 1], got {epsilon}")
        if env_id == cfg.env_id:
            returns = evaluate_reference(self.agent.act, self.params, cfg, self.info, episodes,
                                         epsilon, cfg.seed)
        else:
            returns = evaluate(self.agent.act, self.params, cfg.num_seeds, env_id, episodes,
                               epsilon, cfg.seed)
        result = summarize(returns, cfg.seeds, env_id, epsilon)
        if self.info.atari and env_id == cfg.env_id:  # the papers' yardstick, same protocol
            rand = evaluate_reference(self.agent.act, self.params, cfg, self.info, episodes,
                                      1.0, cfg.seed + 1)
            result["random_mean"] = float(rand.mean())
            result["random_std"] = float(rand.std())
        if write:
            checkpoint.atomic_write_text(self.path / EVAL_FILE, json.dumps(result, indent=2))
        return result

    def predict(self, obs: Any, seed_index: int = 0, epsilon: float = 0.0,
                key: Any = None) -> np.ndarray:
        """Actions of one seed's agent for a batch of observations [B, ...] (or one obs)."""
        import jax
        import jax.numpy as jnp

        obs = jnp.asarray(obs, self.info.obs_dtype)
        single = obs.ndim == len(self.info.obs_shape)
        batch = obs[None] if single else obs
        params = jax.tree.map(lambda x: x[seed_index], self.params)
        key = jax.random.PRNGKey(0) if key is None else key
        actions = np.asarray(self.agent.act(params, batch, key, epsilon))
        return actions[0] if single else actions

    def record(self, out: str | Path, seed_index: int = 0, max_steps: int = 10_000,
               fps: int = 50, frame_every: int = 1, shrink: int = 1) -> Path:
        """Render one greedy episode of one seed to a .gif or .mp4."""
        import os

        import jax

        from deepq.envs import make_gymnasium
        from deepq.report import write_video

        # pygame renders off screen: no sound card or display needed (and no SDL warning)
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        out = Path(out)
        if out.suffix.lower() not in (".gif", ".mp4"):
            raise UserError(f"--out {out}: the video must end in .gif or .mp4")
        if not 0 <= seed_index < self.config.num_seeds:
            raise UserError(f"seed index {seed_index} out of range: the run has "
                            f"{self.config.num_seeds} seed(s)")
        params = jax.tree.map(lambda x: x[seed_index], self.params)
        act = jax.jit(lambda p, o, k, t: self.agent.act(p, o[None], jax.random.fold_in(k, t),
                                                        0.0)[0])
        key = jax.random.PRNGKey(self.config.seed)
        if self.info.atari:  # the agent's own view: its newest preprocessed frame
            frames = _atari_frames(self.config, params, self.agent.act, max_steps, frame_every)
            return write_video(frames, out, fps=max(1, 60 // self.config.frame_skip
                                                    // frame_every), shrink=1)
        if self.info.reference_id is None:  # MinAtar: draw the observation planes
            frames = _gymnax_frames(self.config, params, act, key, max_steps, frame_every)
            return write_video(frames, out, fps=max(1, 10 // frame_every), shrink=1)
        env = make_gymnasium(self.config.env_id, render_mode="rgb_array")
        frames = []
        try:
            obs, _ = env.reset(seed=self.config.seed + 7)
            frames.append(env.render())
            for t in range(max_steps):
                action = int(act(params, np.asarray(obs, self.info.obs_dtype), key, t))
                obs, _, terminated, truncated, _ = env.step(action)
                if (t + 1) % frame_every == 0:
                    frames.append(env.render())
                if terminated or truncated:
                    break
        finally:
            env.close()
        return write_video(frames, out, fps=max(1, fps // frame_every), shrink=shrink)

    def plot(self, out: str | Path | None = None) -> Path:
        from deepq.report import plot_runs

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


def _gymnax_frames(cfg: Config, params: Any, act, key, max_steps: int,
                   frame_every: int) -> list[np.ndarray]:
    """One greedy episode of a gymnax-only env, each observation drawn as an image."""
    import jax

    from deepq.envs import make_gymnax
    from deepq.report import draw_planes

    env, env_params = make_gymnax(cfg.env_id, cfg.full_action_set)
    step = jax.jit(env.step)
    k_reset, k_env = jax.random.split(jax.random.PRNGKey(cfg.seed + 7))
    obs, state = env.reset(k_reset, env_params)
    frames = [draw_planes(np.asarray(obs))]
    for t in range(min(max_steps, env_params.max_steps_in_episode)):
        action = act(params, obs, key, t)
        obs, state, _, terminated, truncated, _ = step(jax.random.fold_in(k_env, t), state,
                                                      action, env_params)
        if (t + 1) % frame_every == 0:
            frames.append(draw_planes(np.asarray(obs)))
        if bool(terminated) or bool(truncated):
            break
    return frames


def _atari_frames(cfg: Config, params: Any, act_fn, max_steps: int,
                  frame_every: int) -> list[np.ndarray]:
    """One evaluation-protocol episode of an ALE game (epsilon = eval_epsilon, no-op
    starts), each agent step drawn as the newest 84x84 frame it saw, scaled up 2x."""
    import jax

    from deepq.envs.atari import AtariEnvs

    policy = jax.jit(lambda p, o, k: act_fn(p, o, k, cfg.eval_epsilon))
    envs = AtariEnvs(cfg, 1, training=False)

    def draw(obs: np.ndarray) -> np.ndarray:
        gray = obs[0, :, :, -1].repeat(2, axis=0).repeat(2, axis=1)
        return np.repeat(gray[:, :, None], 3, axis=2)

    key = jax.random.PRNGKey(cfg.seed + 7)
    try:
        obs = envs.reset([cfg.seed + 7])
        frames = [draw(obs)]
        for t in range(max_steps):
            out = envs.step(np.asarray(policy(params, obs, jax.random.fold_in(key, t))))
            obs = out.obs
            if (t + 1) % frame_every == 0:
                frames.append(draw(obs))
            if out.game_over[0]:
                break
    finally:
        envs.close()
    return frames


def load(path: str | Path) -> Run:
    return Run.load(path)

"""The training loop: a driver's chunks, and between them the logs, checkpoints, the
divergence check and the stop signals.

    run = deepq.train(env_id="CartPole-v1", out="runs/cp")                  # the env's preset
    run = deepq.train(deepq.config_for("CartPole-v1", "rainbow"), "runs/rb")
    run = deepq.train(out="runs/cp", resume=True)

Checkpoints: every `checkpoint_every` units of the run's clock, at least every
`checkpoint_minutes` of training, and at the end; a SIGINT (Ctrl-C) or SIGTERM saves one at
the next chunk boundary and stops the run (`Interrupted`), a second signal stops at once.
A SIGKILL loses at most `checkpoint_minutes` of training.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepq import checkpoint
from deepq.atomic import atomic_write_text
from deepq.config import Config
from deepq.drivers import make_driver
from deepq.drivers.base import Driver, RunState
from deepq.errors import (
    DivergedError,
    Interrupted,
    StorageError,
    UserError,
    raise_from_handler,
)
from deepq.policy import POLICY_FILE
from deepq.presets import config_for
from deepq.qtrace import QTrace, heldout_states, read_heldout
from deepq.report import (
    MetricsWriter,
    log_scalars,
    read_metrics,
    read_trace,
    start_plot_process,
)
from deepq.run import Run
from deepq.rundir import (
    CURVES_FILE,
    GIF_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    RunLock,
    check_new_run,
    check_writable,
    clear_run,
    read_config,
    write_config,
)
from deepq.tracking import Tracker, import_wandb


def train(
    config: Config | None = None,
    out: str | Path = "runs/latest",
    *,
    env_id: str | None = None,
    preset: str | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    artifacts: bool = True,
    on_chunk: Callable[[dict], None] | None = None,
    summary_extra: dict | None = None,
    track: str | None = None,
    **overrides: Any,
) -> Run:
    """Train (or resume) a run in `out`; returns the finished `Run`.

    The config is `config`, or the one `config_for(env_id, preset, **overrides)` resolves,
    as `deepq train --env ENV --preset P --set k=v` does. With resume=True the config is the
    run dir's own; `total_steps` (`total_episodes` for reinforce) may extend it.
    `on_chunk(progress)` is called after every chunk with a dict: clock, clock_unit, total,
    episodes (all seeds), recent_return (the mean of the last 20 episodes per seed, None
    before the first), steps_per_sec;
    `summary_extra` is merged into summary.json (e.g. the Ray node a trial ran on).
    `track`: a Weights & Biases project that gets the config, the chunks and the results.
    """
    out = Path(out)
    started = time.perf_counter()
    with _StopSignals(out) as stop:  # from the start: a signal never cuts a write in half
        # Everything is read and checked first; the run dir changes only under its lock.
        if resume:
            if force:
                raise UserError("--resume continues the run and --force would start it over: "
                                "drop one of them")
            cfg, extended = _resumed_config(out, overrides, config, env_id, preset)
        else:
            if config is not None and (env_id or preset or overrides):
                raise UserError("pass either a Config or env_id / preset / overrides, not both")
            cfg = config.validated() if config is not None else config_for(env_id, preset,
                                                                             **overrides)
        driver = make_driver(cfg)  # validates the env before anything on disk changes
        if track:
            import_wandb()  # the install line before anything on disk changes
        if not resume:
            check_new_run(out, force)
        with RunLock(out), _storage_faults(out, stop), _tracked(track, out, cfg,
                                                                resume) as tracker:
            hooks = [h for h in (on_chunk, tracker and tracker.chunk) if h is not None]
            if resume:
                state, episodes = _resumed_state(driver, out, extended)
            else:
                clear_run(out)
                write_config(out, cfg, driver.info.backend)
                state = driver.initial_state()
                episodes = [0] * cfg.num_seeds
            resumed_from = driver.clock(state) if resume else None
            state, timing = _train_loop(driver, out, state, episodes, resume, progress, stop,
                                        hooks)
            timing["resumed_from"] = resumed_from
            stop.training = False  # from here a signal stops the artifacts at once
            if stop.signum is not None:  # it came during the last chunk: training is complete
                raise Interrupted(f"stopped by {signal.Signals(stop.signum).name} after the "
                                  f"last chunk; the final checkpoint is saved: deepq train "
                                  f"--resume {out} writes the eval, curves and GIF", stop.signum)
            run = _finish(driver, out, state, episodes, timing, started, artifacts,
                          summary_extra or {})
            if tracker is not None:
                tracker.finish(out)
            return run


def _resumed_config(out: Path, overrides: dict, config: Any, env_id: Any,
                    preset: Any) -> tuple[Config, bool]:
    """The run dir's own config, its budget extended by `overrides` (checked, not written),
    and whether it was extended."""
    extend = {k: v for k, v in overrides.items() if v is not None}
    fixed = [k for k in extend if k not in ("total_steps", "total_episodes")]
    if config is not None or env_id or preset or fixed:
        raise UserError("resume=True continues the run dir's own config; only total_steps "
                        "(total_episodes for reinforce) may extend it")
    cfg = read_config(out)
    return (cfg.replace(**extend).validated() if extend else cfg), bool(extend)


def _resumed_state(driver: Driver, out: Path, extended: bool) -> tuple[RunState, list[int]]:
    """The newest checkpoint, after every file the resume reads is checked; only then the
    (extended) config is written. A resume that cannot continue changes nothing."""
    state, meta = driver.restore(out)
    done = driver.clock(state)
    if extended and driver.total < done:
        raise UserError(f"the newest checkpoint of {out} is at {driver.clock_unit} {done:,}: "
                        f"a budget of {driver.total:,} would end before it; give at least "
                        f"{done:,}")
    check_run_files(out)
    write_config(out, driver.cfg, driver.info.backend)
    return state, meta["episodes"]


def _train_loop(driver: Driver, out: Path, state: RunState, episodes: list[int], resume: bool,
                progress: bool, stop: _StopSignals,
                on_chunk: list[Callable[[dict], None]]) -> tuple[RunState, dict]:
    cfg, clock = driver.cfg, driver.clock
    resume_at = clock(state) if resume else None
    writer = MetricsWriter(out, cfg.seeds, window=driver.total // 100, resume_at=resume_at,
                           clock_column=driver.clock_column)
    states = heldout_states(out, cfg, driver.info) if driver.agent.q_values else None
    qtrace = None if states is None else QTrace(out, driver.agent, states, resume_at)
    if qtrace is not None and not resume:
        _log_qtrace(qtrace, writer, cfg, driver.params(state), 0)
    bar = _Progress(driver.total * cfg.num_seeds, clock(state) * cfg.num_seeds, progress,
                    driver.clock_unit)
    last_saved, last_saved_at = clock(state), time.monotonic()
    recent: list[float] = []
    steps_per_sec, first_chunk_s = 0.0, None
    train_started = time.perf_counter()
    try:
        prev = state
        prev_env_steps = sum(driver.env_steps(state))  # read now: chunks donate the state
        tick = time.perf_counter()
        for state, logs in driver.chunks(state):  # noqa: B020 (state advances chunk by chunk)
            finite = _all_finite(driver.params(state))
            now = time.perf_counter()
            first_chunk_s = first_chunk_s if first_chunk_s is not None else now - tick
            env_steps = sum(driver.env_steps(state))
            steps_per_sec = (env_steps - prev_env_steps) / max(now - tick, 1e-9)  # all seeds
            prev_env_steps, tick = env_steps, now
            rows = driver.rows(logs, prev, episodes, round(steps_per_sec, 1))
            if not finite.all():
                bad = [s for s, ok in zip(cfg.seeds, finite) if not ok]
                last = checkpoint.list_checkpoints(out)
                kept = f"last good checkpoint kept: {last[-1]}" if last else "no checkpoint yet"
                raise DivergedError(
                    f"run diverged: non-finite parameters in seed(s) {bad} between "
                    f"{driver.clock_unit} {clock(prev)} and {clock(state)}; {kept}; lower "
                    "learning_rate or set max_grad_norm")
            done = clock(state)
            writer.write(rows, done)
            if qtrace is not None:
                _log_qtrace(qtrace, writer, cfg, driver.params(state), done)
            recent = (recent + [r["return"] for r in rows])[-20 * cfg.num_seeds:]
            writer.add_scalars("perf/steps_per_sec", [steps_per_sec] * cfg.num_seeds, done)
            scores = driver.selection_scores(state)
            if scores is not None:
                writer.add_scalars("select/best_score", scores, done)
            recent_mean = float(np.mean(recent)) if recent else None
            bar.update(done * cfg.num_seeds, sum(episodes), recent_mean, steps_per_sec)
            for hook in on_chunk:
                hook({"clock": done, "clock_unit": driver.clock_unit, "total": driver.total,
                      "episodes": sum(episodes), "recent_return": recent_mean,
                      "steps_per_sec": steps_per_sec})
            every, minutes = cfg.checkpoint_every, cfg.checkpoint_minutes
            due = (every and done // every > last_saved // every) or \
                (minutes and time.monotonic() - last_saved_at >= 60 * minutes)
            if done < driver.total and (due or stop.signum is not None):
                path = driver.save(out, state, episodes)
                last_saved, last_saved_at = done, time.monotonic()
                if stop.signum is not None:
                    raise Interrupted(
                        f"stopped by {signal.Signals(stop.signum).name} at {driver.clock_unit} "
                        f"{done:,} of {driver.total:,}; checkpoint {path} saved: continue "
                        f"with deepq train --resume {out}", stop.signum)
            prev = state
        driver.save(out, state, episodes)
    finally:
        bar.close()
        writer.close()
    timing = {"setup_end": train_started, "first_chunk_s": first_chunk_s or 0.0,
              "train_s": time.perf_counter() - train_started,
              "steps_per_sec": steps_per_sec}
    return state, timing


def _finish(driver: Driver, out: Path, state: RunState, episodes: list[int], timing: dict,
            started: float, artifacts: bool, extra: dict) -> Run:
    """summary.json, and with `artifacts` eval.json, the GIF and curves.png."""
    cfg = driver.cfg
    run = Run(out, cfg, driver.result_params(state), driver.info)
    scores = driver.selection_scores(state)
    summary = {
        "steps_per_seed": driver.env_steps(state),
        "seeds": cfg.seeds,
        "episodes": episodes,
        "driver": driver.kind,
        "clock_unit": driver.clock_unit,
        "clock": driver.clock(state),
        "setup_seconds": round(timing["setup_end"] - started, 3),
        "first_chunk_seconds": round(timing["first_chunk_s"], 3),
        "train_seconds": round(timing["train_s"], 3),
        "last_chunk_steps_per_sec": round(timing["steps_per_sec"], 1),
        "selected_scores": scores,
        "stopped_early": driver.clock(state) < driver.total,
        "resumed_from": timing["resumed_from"],  # this process's start on the clock
        **extra,
    }
    run.export(out / POLICY_FILE)  # seed 0's model file (deepq export picks another)
    if artifacts:
        plotter = start_plot_process(out, out / CURVES_FILE)  # runs beside eval and GIF
        t = time.perf_counter()
        result = run.evaluate(write=True)
        log_scalars(out, cfg.seeds, "eval/mean_return", result["per_seed_mean"],
                    driver.clock(state))
        summary["eval_seconds"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        if cfg.gif:
            run.record(out / GIF_FILE, frame_every=2, shrink=2)  # small and quick to write
        if plotter.wait() != 0:
            run.plot()  # in this process, so that a failure reports its own error
        summary["artifact_seconds"] = round(time.perf_counter() - t, 3)
    summary["total_seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return run


# errnos of a write the machine refused: full disk or quota, file-size limit, I/O error,
# read-only file system, permissions changed under the run
WRITE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES,
                errno.EPERM)


@contextlib.contextmanager
def _tracked(project: str | None, out: Path, cfg: Config, resume: bool):
    """With `project`, a W&B run (tracking.Tracker) for the `with` block, else None; a run
    left before its tracker finished is closed as failed."""
    tracker = Tracker(project, out, cfg, resume) if project else None
    try:
        yield tracker
    finally:
        if tracker is not None and not tracker.finished:
            tracker.close()


def check_run_files(out: Path) -> None:
    """The files a resume reads and continues: metrics.csv, qtrace.csv and the held-out
    states must parse (each reader raises a UserError naming its file); the dir writable."""
    if (out / METRICS_FILE).exists():
        read_metrics(out)
    read_trace(out)
    read_heldout(out)
    check_writable(out)


@contextlib.contextmanager
def _storage_faults(out: Path, stop: _StopSignals):
    """A failed write (a full disk, an I/O error) becomes one StorageError line saying what
    is intact. Checkpoints are atomic: the newest one on disk is whole."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_FAULTS:
            raise
        where = exc.filename or out
        found = checkpoint.list_checkpoints(out)
        if stop.training is False:
            then = (f"training finished and its final checkpoint is saved: free space, then "
                    f"deepq train --resume {out} writes the eval, curves and GIF")
        elif found:
            then = (f"the newest checkpoint {found[-1]} is intact: free space, then deepq "
                    f"train --resume {out}")
        else:
            then = "no checkpoint was written yet: free space and start the run again"
        raise StorageError(f"cannot write {where}: {exc.strerror or exc}; {then}") from None


class _StopSignals:
    """SIGINT and SIGTERM while training: the first asks for a checkpoint at the next chunk
    boundary (`signum` is set; the loop saves and raises `Interrupted`); a second, or one
    outside the loop, raises `Interrupted` at once. Only the main thread can take signals;
    elsewhere the handlers stay as they are."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, out: Path):
        self.out = out
        self.signum: int | None = None
        self.training = True
        self._previous: dict = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.training and self.signum is None:
            self.signum = signum
            if sys.stderr.isatty():
                print("\ndeepq: saving a checkpoint at the end of this chunk, then stopping "
                      "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
            return
        name = signal.Signals(signum).name
        if checkpoint.list_checkpoints(self.out):
            message = (f"stopped by {name}; the newest checkpoint is in "
                       f"{self.out / checkpoint.CHECKPOINT_DIR}: continue with deepq train "
                       f"--resume {self.out}")
        else:
            message = (f"stopped by {name} before the first checkpoint of {self.out}: nothing "
                       "to resume; start the run again")
        raise_from_handler(Interrupted(message, signum))


def _all_finite(params: Any) -> np.ndarray:
    """Per seed: are all parameters finite? (params have a leading seed axis)."""
    leaves = jax.tree.leaves(params)
    per_leaf = [jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1) for x in leaves]
    return np.asarray(jnp.all(jnp.stack(per_leaf), axis=0))


def _log_qtrace(qtrace: QTrace, writer: MetricsWriter, cfg: Config, params: Any,
                steps: int) -> None:
    values = qtrace.values(params)
    qtrace.log(cfg.seeds, values, steps)
    writer.add_scalars("train/heldout_avg_max_q", values, steps)


class _Progress:
    """Progress on stderr: a live bar on a terminal; elsewhere (nohup, Slurm, CI logs) one
    line per chunk, and one at least every `every` seconds while a long chunk runs."""

    def __init__(self, total: int, done: int, enabled: bool, unit: str = "steps",
                 every: float | None = None):
        self.enabled, self.tty = enabled, sys.stderr.isatty()
        self.total, self.unit = total, unit
        self.every = float(os.environ.get("DEEPQ_LOG_SECONDS", 30)) if every is None else every
        self.start, self.start_done = time.monotonic(), done
        self.state = {"done": done, "episodes": 0, "recent": None, "sps": 0.0}
        if not enabled:
            return
        if not self.tty:
            self._last_line = time.monotonic()
            self._stop = threading.Event()
            self._lock = threading.Lock()
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()
            return
        from rich.console import Console
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
            transient=False, refresh_per_second=4, console=Console(stderr=True),
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total, completed=done, episodes=0,
                                      ret="-", sps="-")

    def update(self, done: int, episodes: int, recent: float | None, sps: float) -> None:
        if not self.enabled:
            return
        self.state = {"done": done, "episodes": episodes, "recent": recent, "sps": sps}
        if self.tty:
            ret = "-" if recent is None else f"{recent:.1f}"
            self.bar.update(self.task, completed=done, episodes=episodes, ret=ret,
                            sps=f"{sps:,.0f}")
        else:
            self._line()

    def _line(self, note: str = "") -> None:
        with self._lock:
            st, elapsed = self.state, time.monotonic() - self.start
            rate = (st["done"] - self.start_done) / elapsed if elapsed > 0 else 0.0
            eta = _clock(max(self.total - st["done"], 0) / rate) if rate > 0 else "-"
            ret = "-" if st["recent"] is None else f"{st['recent']:.1f}"
            pct = min(100 * st["done"] / max(self.total, 1), 100)
            print(f"train {self.unit} {st['done']:,}/{self.total:,} "
                  f"({pct:.0f}%)  episodes {st['episodes']:,}"
                  f"  return {ret}  {st['sps']:,.0f} steps/s  elapsed {_clock(elapsed)}  "
                  f"eta {eta}{note}", file=sys.stderr, flush=True)
            self._last_line = time.monotonic()

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            if time.monotonic() - self._last_line >= self.every:
                self._line("  (in a chunk)")

    def close(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.bar.stop()
        else:
            self._stop.set()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

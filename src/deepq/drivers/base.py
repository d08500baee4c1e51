"""The driver contract: what the training loop, checkpoints, `Run.load` and grids ask of a
driver, and the one state type every driver hands back.

A driver runs all seeds of one run side by side (a leading seed axis S on every leaf of its
carry) in chunks: between two chunks the host logs, checkpoints and checks for divergence.
Nothing outside a driver reads inside its carry; it asks the driver:

    initial_state()            -> RunState          a fresh run
    chunks(state)              -> (RunState, logs)  one chunk after another until the budget
    clock(state), total                             progress on the run's clock
    env_steps(state)           -> [per seed]        env steps taken so far
    rows(logs, prev, ...)      -> metrics rows      one per finished episode
    params(state)                                   the current params (seed axis first)
    result_params(state)                            what the run hands back (model selection)
    selection_scores(state)    -> [per seed] | None
    save(run_dir, state, ...)  -> Path              an atomic checkpoint
    restore(run_dir)           -> (RunState, meta)  the newest checkpoint

Model selection (like SB3's EvalCallback) is written here once: every `select_every` steps a
driver scores the current params with greedy episodes and `keep_better` keeps, per seed, the
params that scored best so far.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq import checkpoint
from deepq.config import Config
from deepq.errors import UserError


class Best(NamedTuple):
    """Model selection: the params that scored best in the greedy evaluations so far."""

    params: Any
    score: jnp.ndarray  # their mean greedy return; -inf before the first evaluation
    key: jax.Array  # for the selection episodes


class Carry(NamedTuple):
    """Every seed's state between chunks (leading seed axis on each leaf)."""

    learner: Any  # the algorithm's learner: its `agent.params` are the current params
    best: Best | None = None  # model selection; None for drivers without it
    env: Any = None  # the envs' own state when they live in JAX (the jitted driver)


class RunState(NamedTuple):
    """What a driver hands back after each chunk and what checkpoints hold."""

    carry: Carry
    iteration: int  # driver iterations done by every seed: vector-env steps, or batches


def init_best(params: Any, key: jax.Array) -> Best:
    return Best(params, jnp.full((), -jnp.inf, jnp.float32), key)


def keep_better(best: Best, params: Any, score: jnp.ndarray) -> Best:
    """Keep `params` if they score at least the best so far (ties go to the newer ones)."""
    better = score >= best.score
    kept = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, best.params)
    return best._replace(params=kept, score=jnp.maximum(score, best.score))


def reached_stop(cfg: Config, best: Best | None) -> bool:
    """Every seed's best selection score has reached `stop_at_return` (never without
    selection, or when it is inf)."""
    if not cfg.select_every or best is None:
        return False
    return bool(np.all(np.asarray(best.score) >= cfg.stop_at_return))


REPLAY_PATH = "carry.learner.replay"  # left out of checkpoints with save_replay=False


class Driver(abc.ABC):
    """One run's seeds, trained chunk by chunk. Subclasses give the loop and the clock."""

    kind: str  # "jitted" (the envs in JAX) or "host" (the envs in Python)
    clock_column: str  # the metrics.csv column the clock counts in
    clock_unit: str  # what the clock counts, for messages
    has_replay: bool = False  # the learner holds a replay buffer (at REPLAY_PATH)

    def __init__(self, cfg: Config, info: Any, agent: Any):
        self.cfg = cfg
        self.info = info
        self.agent = agent
        # The iteration the replay started filling at: later than 0 after a resume whose
        # checkpoint left the replay out (training then waits for a batch's worth again).
        self.fill_start = 0

    # -- the loop ---------------------------------------------------------------
    @abc.abstractmethod
    def initial_state(self) -> RunState:
        """Every seed's fresh state, iteration 0."""

    @abc.abstractmethod
    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        """Run chunk after chunk from `state` until the budget (or the stop score); yield the
        new state and the chunk's logs (read by `rows`). The state passed in may be donated."""

    @abc.abstractmethod
    def clock(self, state: RunState) -> int:
        """Progress on the run's clock (per seed), in `clock_unit`."""

    @property
    @abc.abstractmethod
    def total(self) -> int:
        """The budget on the run's clock."""

    @abc.abstractmethod
    def env_steps(self, state: RunState) -> list[int]:
        """Env steps each seed has taken."""

    @abc.abstractmethod
    def rows(self, logs: dict[str, np.ndarray], prev: RunState, episodes: list[int],
             steps_per_sec: float) -> list[dict]:
        """metrics.csv rows of a chunk's finished episodes; `episodes` (per seed) counts on."""

    # -- parameters -----------------------------------------------------------
    def params(self, state: RunState) -> Any:
        """Every seed's current params."""
        return state.carry.learner.agent.params

    def result_params(self, state: RunState) -> Any:
        """A run's result: the selected params when selection is on, else the last ones."""
        return saved_params(self.cfg, state.carry)

    def selection_scores(self, state: RunState) -> list[float] | None:
        """Each seed's best selection score, or None without model selection."""
        if not self.cfg.select_every or state.carry.best is None:
            return None
        return [float(x) for x in np.asarray(state.carry.best.score)]

    def stopped(self, state: RunState) -> bool:
        return reached_stop(self.cfg, state.carry.best)

    # -- checkpoints ----------------------------------------------------------
    def save(self, run_dir: Path, state: RunState, episodes: list[int]) -> Path:
        """An atomic checkpoint of `state` (without the replay when save_replay is off)."""
        with_replay = self.has_replay and self.cfg.save_replay
        meta = {
            "iteration": int(state.iteration),
            "clock": int(self.clock(state)),
            "clock_unit": self.clock_unit,
            "episodes": list(episodes),
            "driver": self.kind,
            "has_replay": with_replay,
        }
        drop = (REPLAY_PATH,) if self.has_replay and not with_replay else ()
        return checkpoint.save(run_dir, int(self.clock(state)), state, meta, drop=drop)

    def restore(self, run_dir: Path) -> tuple[RunState, dict]:
        """The newest checkpoint of `run_dir` as a RunState, and its metadata."""
        path = checkpoint.latest(run_dir)
        state, meta = checkpoint.restore(path, self.initial_state())
        try:
            iteration = int(meta["iteration"])
            meta["episodes"] = [int(x) for x in meta["episodes"]]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"checkpoint {path} has no readable progress in its metadata: "
                            "delete it to fall back to the previous one, or retrain") from None
        if self.has_replay and not meta.get("has_replay", True):
            self.fill_start = iteration
        return RunState(state.carry, iteration), meta


def host_logs(logs: NamedTuple, ran: int) -> dict[str, np.ndarray]:
    """A compiled chunk's logs as numpy, the first `ran` iterations of each.

    It waits for the chunk in short sleeps rather than in numpy's pull, which blocks inside
    XLA and holds Python's signal handlers until the chunk ends: a second Ctrl-C must stop a
    run at once, not after a chunk of minutes."""
    leaves = jax.tree.leaves(logs)
    pause = 0.001
    while not all(x.is_ready() for x in leaves):
        time.sleep(pause)
        pause = min(2 * pause, 0.05)
    return {k: np.asarray(v)[:, :ran] for k, v in logs._asdict().items()}


def saved_params(cfg: Config, carry: Any) -> Any:
    """The params a run hands back from its carry: the selected ones when model selection is
    on, else the last ones. `carry` is a Carry or a checkpoint's raw dict of it."""
    if isinstance(carry, dict):
        return (carry["best"] if cfg.select_every else carry["learner"]["agent"])["params"]
    return carry.best.params if cfg.select_every else carry.learner.agent.params

"""Grids and hyperparameter searches on a Ray cluster (Ray Tune), each trial a normal deepq
run dir with its seeds vmapped inside.

    deepq train --preset dqn,double,dueling --seeds 4 --executor ray --out runs/abl
    deepq train --env CartPole-v1 --seeds 4 --executor ray --out runs/lr \\
        --search learning_rate=loguniform:1e-5:1e-3 --num-samples 8

A grid member is one Tune trial; a search samples `--num-samples` configs from the
`--search` space and stops the weak ones early with ASHA (Li et al. 2020), fed with the
score every chunk reports: the mean training return of the last 20 episodes per seed.

Nothing is lost: a trial writes its deepq run dir under --out (a directory every node can
reach) with deepq's atomic checkpoints; a trial whose node dies is restarted by Tune
(`max_failures`) and resumes from its own newest checkpoint; `deepq train --resume OUT
--executor ray` finishes an interrupted grid (its unfinished members) or search (Tune's
own restore, each trial resuming from its checkpoint); a run dir's lock (rundir.RunLock)
keeps two processes from training one member.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepq import checkpoint
from deepq.atomic import atomic_write_text
from deepq.config import Config, parse_value
from deepq.cpu import keep_freed_memory
from deepq.errors import UserError
from deepq.grid import read_members, train_member, unfinished
from deepq.jaxcache import use_compilation_cache
from deepq.rundir import SUMMARY_FILE, RunLock
from deepq.training import train

RAY_INSTALL = 'pip install -e ".[ray]"'
SEARCH_FILE = "search.json"  # the search's space, base config and Tune's experiment path
BEST_FILE = "best_config.json"  # the best trial's config, a file --config reads
SCORE = "score"  # what ASHA and the best-trial choice compare
CLOCK = "clock"  # the run's clock: env steps per seed (episodes for REINFORCE)
KINDS = ("loguniform", "uniform", "choice", "grid")


def import_ray():
    """Ray and Ray Tune, or the line that says how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError(f"--executor ray needs Ray: {RAY_INSTALL}") from None
    return ray, tune


@dataclass(frozen=True)
class SearchDim:
    """One `--search KEY=KIND:ARGS`: loguniform:LO:HI, uniform:LO:HI, choice:A,B,... or
    grid:A,B,... (every value, in every sample)."""

    key: str
    kind: str
    values: tuple

    @classmethod
    def parse(cls, text: str) -> SearchDim:
        key, sep, spec = text.partition("=")
        kind, _, args = spec.partition(":")
        key = key.strip().replace("-", "_")
        if not sep or kind not in KINDS or not args:
            raise UserError(f"--search {text!r}: write KEY=KIND:ARGS with KIND one of "
                            f"{', '.join(KINDS)}, e.g. learning_rate=loguniform:1e-5:1e-3")
        if kind in ("loguniform", "uniform"):
            bounds = args.split(":")
            if len(bounds) != 2:
                raise UserError(f"--search {text!r}: {kind} takes LOW:HIGH")
            values = tuple(parse_value(key, b) for b in bounds)
            if not values[0] < values[1] or (kind == "loguniform" and values[0] <= 0):
                raise UserError(f"--search {text!r}: need 0 < LOW < HIGH" if kind ==
                                "loguniform" else f"--search {text!r}: need LOW < HIGH")
        else:
            values = tuple(parse_value(key, v) for v in args.split(",") if v.strip())
            if not values:
                raise UserError(f"--search {text!r}: list at least one value")
        return cls(key, kind, values)

    def domain(self, tune: Any) -> Any:
        lo, hi = self.values[0], self.values[-1]
        integer = isinstance(lo, int) and not isinstance(lo, bool)
        if self.kind == "loguniform":
            return tune.lograndint(lo, hi + 1) if integer else tune.loguniform(lo, hi)
        if self.kind == "uniform":
            return tune.randint(lo, hi + 1) if integer else tune.uniform(lo, hi)
        if self.kind == "choice":
            return tune.choice(list(self.values))
        return tune.grid_search(list(self.values))

    def to_dict(self) -> dict:
        return {"key": self.key, "kind": self.kind, "values": list(self.values)}


@dataclass(frozen=True)
class RayExecutor:
    """How grid members and search trials run on Ray: the cluster (`address`; None starts
    a local Ray), each trial's resources, where Tune keeps its own files, and how often a
    failed trial is restarted."""

    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    storage: str | None = None  # Tune's experiment files: a shared dir or a cloud URI
    max_failures: int = 3
    progress: bool = True

    def __post_init__(self):
        if not self.cpus_per_trial > 0 or not math.isfinite(self.cpus_per_trial):
            raise UserError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if not 0 <= self.gpus_per_trial < math.inf:
            raise UserError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")

    # -- the cluster ------------------------------------------------------------------------
    def _start(self) -> Any:
        ray, tune = import_ray()
        if not ray.is_initialized():
            cores = max(1, int(self.cpus_per_trial))  # the trial's JAX CPU devices
            env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={cores}"}
            if 0 < self.gpus_per_trial < 1:  # trials share a GPU: each takes its share
                env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 * self.gpus_per_trial:.3f}"
            for name in ("DEEPQ_JAX_CACHE", "DEEPQ_MALLOC"):
                if name in os.environ:
                    env[name] = os.environ[name]
            try:
                with warnings.catch_warnings():
                    # Ray forks to exec its own processes at once; JAX's warning is about a
                    # forked child that goes on using JAX, which these never do.
                    warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
                    ray.init(address=self.address, runtime_env={"env_vars": env},
                             include_dashboard=False, log_to_driver=False,
                             logging_level="error")
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {exc}; "
                                "start it with `ray start --head` or fix --address") from None
        return tune

    def _trainable(self, tune: Any, trial: Any, **fixed: Any) -> Any:
        """`trial` with the arguments every trial shares (kept out of the param space, which
        Tune prints) and each trial's resources."""
        return tune.with_resources(tune.with_parameters(trial, **fixed),
                                   {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial})

    def _run_config(self, tune: Any, out: Path, name: str) -> Any:
        return tune.RunConfig(
            name=name, storage_path=self.storage or str(out.resolve() / "tune"),
            failure_config=tune.FailureConfig(max_failures=self.max_failures),
            verbose=1 if self.progress else 0)

    # -- grids ------------------------------------------------------------------------------
    def run_grid(self, out: Path, members: list[dict], artifacts: bool = True,
                 track: str | None = None, **_ignored: Any) -> None:
        """Train `members` of the grid in `out`, one Tune trial each."""
        if not members:
            return
        tune = self._start()
        trainable = self._trainable(tune, _grid_trial, grid=str(Path(out).resolve()),
                                    artifacts=artifacts, track=track)
        param_space = {"member": tune.grid_search([m["name"] for m in members])}
        tuner = tune.Tuner(trainable, param_space=param_space,
                           tune_config=tune.TuneConfig(reuse_actors=False),
                           run_config=self._run_config(tune, Path(out), "grid"))
        _raise_failures(tuner.fit(), [m["name"] for m in unfinished(Path(out))])

    # -- searches ---------------------------------------------------------------------------
    def search(self, out: Path, base: Config, dims: list[SearchDim], num_samples: int,
               artifacts: bool = True) -> dict:
        """Sample `num_samples` configs of `base` over `dims` (each grid dimension in every
        sample), stop weak trials with ASHA, write the best config to OUT/best_config.json
        and return {"config", "score", "trial", "values", "run", "path"}."""
        tune = self._start()
        from ray.tune.schedulers import ASHAScheduler

        out = Path(out).resolve()
        total = base.total_episodes if base.algo == "reinforce" else base.total_steps
        scheduler = ASHAScheduler(time_attr=CLOCK, max_t=total, reduction_factor=3,
                                  grace_period=max(1, total // 8))
        tuner = tune.Tuner(
            self._search_trainable(tune, out, base, artifacts),
            param_space={d.key: d.domain(tune) for d in dims},
            tune_config=tune.TuneConfig(metric=SCORE, mode="max", scheduler=scheduler,
                                        num_samples=num_samples, reuse_actors=False),
            run_config=self._run_config(tune, out, "search"))
        out.mkdir(parents=True, exist_ok=True)
        with RunLock(out):
            atomic_write_text(out / SEARCH_FILE, json.dumps(
                {"base": base.to_dict(), "space": [d.to_dict() for d in dims],
                 "num_samples": num_samples, "experiment": self._experiment(out)},
                indent=2) + "\n")
            return self._best(tuner.fit(), out, base)

    def resume_search(self, out: Path, artifacts: bool = True) -> dict:
        """Finish the search in `out` (Tune's restore: every unfinished trial resumes from
        its own checkpoint); as `search`."""
        tune = self._start()
        out = Path(out).resolve()
        try:
            base = Config.from_dict(json.loads((out / SEARCH_FILE).read_text())["base"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{out / SEARCH_FILE} is missing or corrupt: start the search "
                            "again") from None
        with RunLock(out):
            tuner = tune.Tuner.restore(self._experiment(out),
                                       self._search_trainable(tune, out, base, artifacts),
                                       resume_unfinished=True, resume_errored=True)
            return self._best(tuner.fit(), out, base)

    def _experiment(self, out: Path) -> str:
        """Where Tune keeps the search's state: a path or a URI."""
        return f"{(self.storage or str(out / 'tune')).rstrip('/')}/search"

    def _search_trainable(self, tune: Any, out: Path, base: Config, artifacts: bool) -> Any:
        return self._trainable(tune, _search_trial, out=str(out), base=base.to_dict(),
                               artifacts=artifacts)

    def _best(self, results: Any, out: Path, base: Config) -> dict:
        """The trial with the best last score: its config written to OUT/best_config.json."""
        best = results.get_best_result(metric=SCORE, mode="max", scope="last")
        if best is None or best.metrics is None or SCORE not in best.metrics:
            raise UserError(f"no trial of the search in {out} reported a score: see "
                            f"{self._experiment(out)}")
        values = dict(best.config)
        cfg = base.replace(**values).validated()
        found = {"config": cfg.to_dict(), "preset": cfg.preset, "score": best.metrics[SCORE],
                 "trial": best.metrics.get("trial_id"), "values": values,
                 "run": best.metrics.get("run_dir")}
        atomic_write_text(out / BEST_FILE, json.dumps(found, indent=2) + "\n")
        return {**found, "path": str(out / BEST_FILE)}


def _reporter(**extra: Any):
    """on_chunk for a trial: the chunk's score to Tune (once episodes have ended)."""
    from ray import tune

    def report(progress: dict) -> None:
        if progress["recent_return"] is not None:
            tune.report({CLOCK: progress["clock"], SCORE: progress["recent_return"], **extra})
    return report


def _node() -> dict:
    import ray

    return {"node": ray.get_runtime_context().get_node_id()}


def _grid_trial(params: dict, grid: str, artifacts: bool, track: str | None) -> None:
    """A Tune trial: one member of a grid, resumed from its own newest checkpoint when a
    restart finds one."""
    keep_freed_memory()
    use_compilation_cache()
    out = Path(grid)
    member = next(m for m in read_members(out) if m["name"] == params["member"])
    if (out / member["name"] / SUMMARY_FILE).exists():
        return  # finished before a restart of the grid
    train_member(out, member, progress=False, artifacts=artifacts, on_chunk=_reporter(),
                 summary_extra=_node(), track=track)


def _search_trial(values: dict, out: str, base: dict, artifacts: bool) -> None:
    """A Tune trial of a search: the base config with the sampled values, in the run dir
    OUT/trial_<id>; a restarted trial resumes from its newest checkpoint."""
    from ray import tune

    keep_freed_memory()
    use_compilation_cache()
    trial_id = tune.get_context().get_trial_id()
    run_dir = Path(out) / f"trial_{trial_id}"
    if (run_dir / SUMMARY_FILE).exists():
        return
    kwargs = dict(progress=False, artifacts=artifacts, summary_extra=_node(),
                  on_chunk=_reporter(run_dir=str(run_dir), trial_id=trial_id))
    if checkpoint.list_checkpoints(run_dir):
        train(out=run_dir, resume=True, **kwargs)
    else:
        cfg = Config.from_dict({**base, **values})
        train(cfg, run_dir, force=True, **kwargs)


def _raise_failures(results: Any, left: list[str]) -> None:
    """After a grid's trials: one line naming the members that did not finish."""
    if results.errors or left:
        names = ", ".join(left) or "some members"
        first = str(results.errors[0]).strip().splitlines()[-1] if results.errors else ""
        raise UserError(f"{names} did not finish ({first or 'see the Tune logs'}); "
                        "deepq train --resume GRID --executor ray retries them")

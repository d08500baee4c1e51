"""Q-value traces (Mnih et al. 2013, section 5.1 and Figure 2).

Before training, a random policy collects a fixed set of states (`heldout_states.npy` in the
run dir, kept for resume). After every chunk the average over those states of max_a Q(s, a)
is logged per seed to `qtrace.csv` and TensorBoard: a smoother view of learning than the
episode returns, and an early sign of divergence or overestimation.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from deepq.atomic import atomic_write_bytes
from deepq.config import Config
from deepq.envs import family, seeds
from deepq.errors import UserError
from deepq.report import TRACE_COLUMNS, TRACE_FILE, read_trace, truncate_metrics

__all__ = ["QTrace", "collect_states", "heldout_states", "read_trace"]

STATES_FILE = "heldout_states.npy"


def collect_states(cfg: Config, info: Any, n: int, seed: int) -> np.ndarray:
    """`n` observations [n, *obs_shape] visited by a uniformly random policy in the run's
    own env: in gymnax when it trains there, else in its family's reference env on the host
    (the ALE with the run's preprocessing), episodes following one another."""
    if info.backend == "gymnax":
        return _gymnax_states(cfg, info, n, seed)
    rng = np.random.default_rng(seed)
    envs = family(info).episodes(cfg, info, 1)
    try:
        obs = envs.reset([seed])
        states = []
        for _ in range(n):
            states.append(obs[0])
            obs = envs.step(rng.integers(info.num_actions, size=1))[0]
    finally:
        envs.close()
    return np.stack(states).astype(info.obs_dtype)


def _gymnax_states(cfg: Config, info: Any, n: int, seed: int) -> np.ndarray:
    import jax

    env, params = family(info).jax_env(cfg)
    k_reset, k_run = jax.random.split(jax.random.PRNGKey(seed))
    obs, state = env.reset(k_reset, params)

    def step(carry, key):
        obs, state = carry
        k_action, k_step = jax.random.split(key)
        action = jax.random.randint(k_action, (), 0, info.num_actions)
        next_obs, state, _, _, _, _ = env.step(k_step, state, action, params)  # auto-resets
        return (next_obs, state), obs

    _, states = jax.lax.scan(step, (obs, state), jax.random.split(k_run, n))
    return np.asarray(states).astype(info.obs_dtype)


def heldout_states(run_dir: Path, cfg: Config, info: Any) -> np.ndarray | None:
    """The run's held-out states: read back when the run dir has them, else collected and
    written (atomically). None when `qtrace_states` is 0."""
    if cfg.qtrace_states == 0:
        return None
    path = Path(run_dir) / STATES_FILE
    states = read_heldout(run_dir)
    if states is not None and states.shape[1:] == tuple(info.obs_shape):
        return states
    states = collect_states(cfg, info, cfg.qtrace_states, seeds.heldout(cfg.seed))
    buffer = io.BytesIO()
    np.save(buffer, states)
    atomic_write_bytes(path, buffer.getvalue())
    return states


def read_heldout(run_dir: Path) -> np.ndarray | None:
    """heldout_states.npy, or None when the run dir has none."""
    path = Path(run_dir) / STATES_FILE
    if not path.exists():
        return None
    try:
        states = np.load(path, allow_pickle=False)
        if not isinstance(states, np.ndarray) or states.ndim < 2:
            raise ValueError
        return states
    except (OSError, ValueError, EOFError):
        raise UserError(f"{path} is damaged: delete it (deepq collects new held-out states; "
                        "the Q trace then continues on them)") from None


class QTrace:
    """Average max-Q of every seed on the held-out states, appended to qtrace.csv."""

    def __init__(self, run_dir: Path, agent: Any, states: np.ndarray,
                 resume_step: int | None = None):
        import jax

        self.path = Path(run_dir) / TRACE_FILE
        self.states = jax.numpy.asarray(states)
        q = lambda params, s: agent.q_values(params, s).max(axis=-1).mean()
        self._values = jax.jit(jax.vmap(q, in_axes=(0, None)))
        if resume_step is not None:  # a new run's dir holds no trace (prepare_new_run)
            truncate_metrics(self.path, resume_step)

    def values(self, params: Any) -> np.ndarray:
        """[S]: mean over the held-out states of max_a Q(s, a), per seed."""
        return np.asarray(self._values(params, self.states))

    def log(self, seeds: list[int], values: np.ndarray, step: int) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            if new:
                out.writerow(TRACE_COLUMNS)
            for seed, value in zip(seeds, values):
                out.writerow([seed, step, f"{float(value):.6g}"])

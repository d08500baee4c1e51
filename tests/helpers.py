import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEEPQ = [sys.executable, "-m", "deepq"]

# A small, fast CartPole config for integration tests (not a learning preset).
TINY = ["--set", "hidden_sizes=32", "--set", "buffer_size=2000", "--set", "batch_size=32",
        "--set", "learning_starts=200", "--set", "chunk_steps=500", "--set", "eval_episodes=5",
        "--set", "gif=false", "--set", "select_every=0", "--quiet"]

# metrics.csv's columns but the last (steps_per_sec, a timing)
METRICS_COLUMNS = ("seed", "env_step", "episode", "return", "length", "epsilon", "loss",
                   "q_mean")


def run_deepq(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, SDL_AUDIODRIVER="dummy")
    proc = subprocess.run([*DEEPQ, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"deepq {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def start_deepq(*args: str, **popen) -> subprocess.Popen:
    """`deepq ARGS` in the background (stdout and stderr to DEVNULL unless given)."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    env = dict(popen.pop("env", os.environ), SDL_AUDIODRIVER="dummy")
    return subprocess.Popen([*DEEPQ, *args], cwd=ROOT, env=env, **popen)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 240) -> bool:
    """Poll `condition()` every 5 ms until it holds (True), the process ends or time is up."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return bool(condition())
        time.sleep(0.005)
    return False


def kill_after_first_checkpoint(out: Path, *args: str, watch: Path | None = None) -> list[Path]:
    """Start `deepq train --out OUT ARGS`, SIGKILL it as soon as a checkpoint exists in
    `watch` (default OUT; a grid member's dir for a grid) and return the checkpoints there."""
    from deepq import checkpoint

    watch = out if watch is None else watch
    proc = start_deepq("train", "--out", str(out), *args)
    wait_for(lambda: checkpoint.list_checkpoints(watch), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return checkpoint.list_checkpoints(watch)


def flat_state(tree) -> dict:
    """A checkpoint's (or driver state's) state dict flattened to {"a/b/c": leaf}."""
    from flax import traverse_util

    return traverse_util.flatten_dict(tree, sep="/")


def metrics_rows(run_dir: Path) -> list[list[str]]:
    """metrics.csv's rows (header included) without the timing column."""
    import csv

    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:len(METRICS_COLUMNS)] == list(METRICS_COLUMNS)
    return [row[:len(METRICS_COLUMNS)] for row in rows]


def host_reference(run_dir: Path, cut: int, out: Path) -> dict:
    """A host-driver run of `run_dir`'s config that is never written to disk nor read back:
    played in memory to env step `cut`, its env episodes restarted there (what the host
    driver does on resume: its Gymnasium/ALE envs cannot be saved), then played to the end.

    Runs in a child process (with the CLI's compilation cache, so the programs compiled by
    the run under test are reused). Returns {"cut": flat state at `cut`, "final": flat final
    state, "rows": metrics rows as metrics.csv writes them, header first}."""
    from flax import serialization

    code = (f"import deepq; from tests.helpers import _host_reference; "  # deepq before jax
            f"_host_reference({str(run_dir)!r}, {int(cut)}, {str(out)!r})")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
    if proc.returncode != 0:
        raise AssertionError(f"the reference run failed:\n{proc.stderr}")
    doc = serialization.msgpack_restore(Path(out).read_bytes())
    return {"cut": flat_state(doc["cut"]), "final": flat_state(doc["final"]),
            "rows": json.loads(doc["rows"])}


def _host_reference(run_dir: str, cut: int, out: str) -> None:
    import jax
    from flax import serialization

    from deepq.drivers import make_driver
    from deepq.jaxcache import use_compilation_cache
    from deepq.rundir import read_config

    use_compilation_cache()
    cfg = read_config(Path(run_dir))
    driver = make_driver(cfg)
    assert driver.kind == "host", driver.kind
    episodes = [0] * cfg.num_seeds
    rows: list[dict] = []

    def play(state, stop=None):
        chunks = driver.chunks(state)
        prev = state
        for state, logs in chunks:  # noqa: B020 (the state advances chunk by chunk)
            rows.extend(driver.rows(logs, prev, episodes, 0.0))
            prev = state
            if driver.clock(state) == stop:
                chunks.close()  # closes the envs, as a process that ends does
                break
        return prev

    at_cut = play(driver.initial_state(), cut)
    assert driver.clock(at_cut) == cut, f"no chunk ends at step {cut}"
    cut_state = serialization.to_state_dict(jax.device_get(at_cut))  # before it is donated
    final = play(at_cut)
    fmt = [[f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in METRICS_COLUMNS]
           for r in rows]
    doc = {"cut": cut_state, "final": serialization.to_state_dict(jax.device_get(final)),
           "rows": json.dumps([list(METRICS_COLUMNS), *fmt])}
    Path(out).write_bytes(serialization.msgpack_serialize(doc))


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under `folder`: (inode, mtime_ns, contents), by relative path."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def algorithm_1(reward, discount, probs, support):
    """C51's projection of r + discount z onto the support (Bellemare et al. 2017,
    Algorithm 1, written with its floor/ceil loop)."""
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (len(support) - 1)
    m = np.zeros(len(support))
    for j, z in enumerate(support):
        b = (min(max(reward + discount * z, v_min), v_max) - v_min) / dz
        lo, up = int(np.floor(b)), int(np.ceil(b))
        if lo == up:
            m[lo] += probs[j]
        else:
            m[lo] += probs[j] * (up - b)
            m[up] += probs[j] * (b - lo)
    return m


def softmax(x):
    """Softmax over the last axis, in numpy."""
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

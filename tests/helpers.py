import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEEPQ = [sys.executable, "-m", "deepq.cli"]

# A small, fast CartPole config for integration tests (not a learning preset).
TINY = ["--set", "hidden_sizes=32", "--set", "buffer_size=2000", "--set", "batch_size=32",
        "--set", "learning_starts=200", "--set", "chunk_steps=500", "--set", "eval_episodes=5",
        "--set", "gif=false", "--set", "select_every=0", "--quiet"]


def run_deepq(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, SDL_AUDIODRIVER="dummy")
    proc = subprocess.run([*DEEPQ, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"deepq {' '.join(args)} failed:\n{proc.stderr}")
    return proc



def kill_after_first_checkpoint(out: Path, *args: str) -> list[Path]:
    """Start `deepq train --out OUT ARGS`, SIGKILL it as soon as a checkpoint exists and
    return the checkpoints it left."""
    from deepq import checkpoint

    proc = subprocess.Popen([*DEEPQ, "train", "--out", str(out), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not checkpoint.list_checkpoints(out) and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return checkpoint.list_checkpoints(out)

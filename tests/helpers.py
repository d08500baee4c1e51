import os
import subprocess
import sys
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


"""Raw env throughput of the ALE fast paths on this machine (random actions, no agent).

    .venv/bin/python benchmarks/atari_envs.py [--game pong] [--seconds 5]

Gymnasium's `AtariPreprocessing` needs opencv, which deepq does not depend on: run it with a
throwaway venv outside the repo that has the same ale-py, gymnasium and numpy plus
`opencv-python-headless` (without opencv those rows are skipped, it says so, and the table
is not rewritten).

Prints, and writes to results/atari_envs.md, agent steps/s (one step = 4 emulator frames with
frame skip 4) at 1, 2, 4 and 8 envs for:
- Gymnasium's single `ALE/<Game>-v5` env, no preprocessing;
- the Nature preprocessing by Gymnasium's wrappers (`AtariPreprocessing` +
  `FrameStackObservation`) in its `SyncVectorEnv` and `AsyncVectorEnv` (a process per env);
- `ale_py.AtariVectorEnv` (C++ threads) with the same preprocessing: grayscale, resize,
  max-pool, frame stack, no-op starts.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np

HERE = Path(__file__).resolve().parent


def rate(step, actions, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(actions())
        n += 1
    return n / (time.perf_counter() - start)


def wrapped_env(env_id: str) -> gym.Env:
    """The Nature preprocessing with Gymnasium's wrappers: skip 4, max of the last 2 frames,
    gray 84x84, up to 30 no-ops, a stack of 4."""
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
    return gym.wrappers.FrameStackObservation(env, 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="pong")
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    gym.register_envs(ale_py)
    rng = np.random.default_rng(0)
    env_id = f"ALE/{args.game.capitalize()}-v5"

    env = gym.make(env_id)  # v5 defaults: frameskip 4, sticky 0.25, RGB 210x160
    env.reset(seed=0)
    n_actions = env.action_space.n

    def single(a):
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()

    rows: list[tuple[str, int, float]] = []  # (path, envs, steps/s of all envs together)

    def record(path: str, n: int, steps: float) -> None:
        rows.append((path, n, steps))
        print(f"{path}, {n} env(s): {steps:8.0f} steps/s")

    record(f"Gymnasium {env_id}, v5 defaults, RGB, no preprocessing", 1,
           rate(single, lambda: int(rng.integers(n_actions)), args.seconds))
    env.close()
    try:
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
        kinds = (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv)
    except ImportError:
        print("Gymnasium wrappers: skipped, AtariPreprocessing needs opencv-python-headless;"
              " results/atari_envs.md is left as it was")
        kinds = ()
    for kind in kinds:
        for n in (1, 2, 4, 8):
            venv = kind([partial(wrapped_env, env_id)] * n)
            venv.reset(seed=0)
            steps = rate(venv.step, partial(rng.integers, n_actions, size=n), args.seconds)
            record(f"Gymnasium wrappers, {kind.__name__}", n, steps * n)
            venv.close()
    for n in (1, 2, 4, 8):
        venv = ale_py.AtariVectorEnv(args.game, n, repeat_action_probability=0.0, noop_max=30,
                                     use_fire_reset=False, reward_clipping=False)
        venv.reset(seed=0)
        steps = rate(venv.step, partial(rng.integers, n_actions, size=n), args.seconds)
        record("ale_py.AtariVectorEnv", n, steps * n)
        venv.close()
    if kinds:
        write_table(rows, args)


def write_table(rows: list[tuple[str, int, float]], args: argparse.Namespace) -> None:
    counts = sorted({n for _, n, _ in rows})
    paths = list(dict.fromkeys(path for path, _, _ in rows))
    rate_of = {(path, n): steps for path, n, steps in rows}
    lines = [f"# ALE env throughput, {args.game}, random actions",
             "",
             f"Measured {datetime.now(UTC).isoformat(timespec='seconds')} by "
             f"`benchmarks/atari_envs.py --game {args.game} --seconds {args.seconds:g}` on "
             f"{os.cpu_count()} cores (ale-py {ale_py.__version__}, gymnasium "
             f"{gym.__version__}). Agent steps/s of all envs together; every row but the "
             "first has the Nature preprocessing (skip 4, max of the last 2 frames, 84x84 "
             "gray, up to 30 no-ops, a stack of 4).",
             "",
             "| path | " + " | ".join(f"{n} env(s)" for n in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for path in paths:
        cells = [f"{rate_of[path, n]:,.0f}" if (path, n) in rate_of else "" for n in counts]
        lines.append(f"| {path} | " + " | ".join(cells) + " |")
    out = HERE / "results" / "atari_envs.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

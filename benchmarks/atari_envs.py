"""Raw env throughput of the ALE fast paths on this machine (random actions, no agent).

    .venv/bin/python benchmarks/atari_envs.py [--game pong] [--seconds 5]

Prints agent steps/s (one step = 4 emulator frames with frame skip 4) for Gymnasium's
single `ALE/<Game>-v5` env and for `ale_py.AtariVectorEnv` (C++ threads, preprocessing
included: grayscale, resize, max-pool, frame stack, no-op starts) at several env counts.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import ale_py
import gymnasium as gym
import numpy as np


def rate(step, actions, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(actions())
        n += 1
    return n / (time.perf_counter() - start)


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

    steps = rate(single, lambda: int(rng.integers(n_actions)), args.seconds)
    print(f"{env_id} gym.make, 1 env: {steps:8.0f} steps/s")
    env.close()
    for n in (1, 2, 4, 8):
        venv = ale_py.AtariVectorEnv(args.game, n, repeat_action_probability=0.0, noop_max=30,
                                     use_fire_reset=False, reward_clipping=False)
        venv.reset(seed=0)
        steps = rate(venv.step, partial(rng.integers, n_actions, size=n), args.seconds)
        print(f"AtariVectorEnv, {n} envs (84x84x4, maxpool): {steps * n:8.0f} steps/s "
              f"({os.cpu_count()} cores)")
        venv.close()


if __name__ == "__main__":
    main()

"""Hyperparameter sweep for the CartPole preset: each line of a file is one config.

    .venv/bin/python benchmarks/cartpole_sweep.py sweep.txt

A line holds `key=value` overrides of the `cartpole` preset (e.g. `num_seeds=16
learning_rate=2e-3`). Each config trains its seeds vmapped in one process (jitted driver),
then every seed is evaluated on 100 greedy Gymnasium episodes. Printed per config: seeds
solved (mean >= 475), training seconds, per-seed means and, with model selection on, the
step at which each seed's selection score first reached 500 (-1: never).
"""

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import sys
import time

import jax
import numpy as np

import deepq  # noqa: F401  (one JAX device per CPU core, before JAX starts)
from deepq.config import parse_overrides
from deepq.drivers.jitted import JittedDriver
from deepq.envs import resolve
from deepq.evaluate import evaluate
from deepq.presets import PRESETS


def sweep_line(line: str) -> str:
    cfg = PRESETS["cartpole"].config().replace(**parse_overrides(line.split())).validated()
    driver = JittedDriver(cfg, resolve(cfg.env_id))
    start = time.perf_counter()
    state, scores = driver.initial_state(), []
    for state, _ in driver.chunks(state):  # noqa: B020 (the state advances chunk by chunk)
        scores.append(np.asarray(state.carry.best.score))
    jax.block_until_ready(state.carry)
    seconds = time.perf_counter() - start
    scores = np.array(scores)  # [chunks, seeds]
    first = [int((np.argmax(s >= 500) + 1) * cfg.select_every) if (s >= 500).any() else -1
             for s in scores.T] if cfg.select_every else []
    means = evaluate(driver.agent.act, driver.params(state), cfg, driver.info, 100, 0.0,
                     cfg.seed).mean(axis=1)
    return (f"{int((means >= 475).sum())}/{cfg.num_seeds} solved  train {seconds:5.1f}s  "
            f"means {np.round(means).astype(int).tolist()}  first500 {first}  | {line}")


if __name__ == "__main__":
    for text in open(sys.argv[1]):
        text = text.strip()
        if text and not text.startswith("#"):
            print(sweep_line(text), flush=True)

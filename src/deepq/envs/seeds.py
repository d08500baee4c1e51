"""Every env seed and evaluation key a run derives, in one place, named by purpose.

A run with seeds s = seed, seed+1, ... trains seed s from PRNGKey(s). Its envs are seeded
apart by purpose, so that training, model selection, evaluation, Q traces and recordings
never replay one another's episodes, and every rerun (and resume) replays its own.
"""

from __future__ import annotations

import numpy as np

EVALUATION_OFFSET = 1_000_003  # evaluation episodes and keys: seed + this
HELDOUT_OFFSET = 2_000_003  # the random-policy states of Q traces (qtrace.py)
RECORDING_OFFSET = 7  # the recorded episode (render.py)
RANDOM_BASELINE_OFFSET = 1  # the ALE's random-agent evaluation runs from seed + 1


def evaluation(seed: int) -> int:
    return seed + EVALUATION_OFFSET


def random_baseline(seed: int) -> int:
    return seed + RANDOM_BASELINE_OFFSET


def heldout(seed: int) -> int:
    return seed + HELDOUT_OFFSET


def recording(seed: int) -> int:
    return seed + RECORDING_OFFSET


def host_training(seeds: list[int], num_envs: int, iteration: int) -> list[int]:
    """The host driver's envs after a (re)start at `iteration`: seed s, env e gets
    s * 10,007 + e + iteration, so they differ per seed, per env and per resume point."""
    return [s * 10_007 + e + iteration for s in seeds for e in range(num_envs)]


def host_selection(seed: int, iteration: int) -> int:
    """The host driver's model-selection episodes at `iteration` (evaluated from here)."""
    return seed + 7_919 * iteration


def episode_batch(seeds: list[int], batch: int, episodes: int) -> list[int]:
    """REINFORCE's host driver: the resets of batch `batch`, one per (seed, episode), hashes
    of that triple (numpy's SeedSequence), which never line up with the other purposes'."""
    return [int(np.random.SeedSequence([s, batch, e]).generate_state(1)[0])
            for s in seeds for e in range(episodes)]

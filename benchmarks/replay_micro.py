"""Microbenchmark: deepq's replay ring against flashbax's item buffer, add + uniform sample.

    .venv/bin/pip install flashbax   # not a deepq dependency; only this script needs it
    .venv/bin/python benchmarks/replay_micro.py

One jitted `lax.scan` of STEPS iterations, each adding one transition of MinAtar's shape
(10x10x4 bool observations) and sampling a batch of 32, on a full buffer of 100k, as the
jitted driver does every step of the `minatar` preset. Prints microseconds per iteration
(the best of REPEATS runs) and writes benchmarks/results/replay_micro.{md,json}.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp
from timing import best_seconds

from deepq import replay

CAPACITY, BATCH, STEPS, REPEATS = 100_000, 32, 5_000, 5
RESULTS = Path(__file__).resolve().parent / "results"


def example() -> replay.Transition:
    obs = jnp.zeros((10, 10, 4), bool)
    return replay.Transition(obs, jnp.zeros((), jnp.int32), jnp.zeros(()), obs,
                             jnp.zeros(()), jnp.zeros(()))


def item(i: jnp.ndarray) -> replay.Transition:
    obs = jnp.full((10, 10, 4), i % 2 == 0)
    return replay.Transition(obs, i % 6, i.astype(jnp.float32), ~obs, jnp.zeros(()),
                             jnp.zeros(()))


def timed(run, state) -> float:
    """Microseconds per step of the fastest run."""
    return best_seconds(run, state, REPEATS) / STEPS * 1e6


def deepq_ring() -> float:
    state = replay.init(CAPACITY, example())
    state = state._replace(size=jnp.int32(CAPACITY))

    @jax.jit
    def run(state):
        def body(s, i):
            s = replay.add_batch(s, jax.tree.map(lambda x: x[None], item(i)))
            batch = replay.sample(s, jax.random.fold_in(jax.random.PRNGKey(0), i), BATCH)
            return s, batch.reward.sum()
        return jax.lax.scan(body, state, jnp.arange(STEPS))

    return timed(run, state)


def flashbax_items() -> float:
    import flashbax as fbx

    buffer = fbx.make_item_buffer(CAPACITY, 1, BATCH, add_batches=True)
    state = buffer.init(example())
    fill = jax.vmap(item)(jnp.arange(CAPACITY))
    state = jax.jit(buffer.add)(state, fill)

    @jax.jit
    def run(state):
        def body(s, i):
            s = buffer.add(s, jax.tree.map(lambda x: x[None], item(i)))
            batch = buffer.sample(s, jax.random.fold_in(jax.random.PRNGKey(0), i))
            return s, batch.experience.reward.sum()
        return jax.lax.scan(body, state, jnp.arange(STEPS))

    return timed(run, state)


def main() -> None:
    try:
        import flashbax  # noqa: F401
    except ImportError:
        sys.exit("replay_micro.py: flashbax is not installed: .venv/bin/pip install flashbax")
    rows = {"deepq replay.add_batch + replay.sample": deepq_ring(),
            "flashbax make_item_buffer add + sample": flashbax_items()}
    RESULTS.mkdir(exist_ok=True)
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": platform.processor() or platform.machine(), "capacity": CAPACITY,
           "batch": BATCH, "steps": STEPS, "us_per_step": rows}
    (RESULTS / "replay_micro.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# Replay add + uniform sample, MinAtar-shaped transitions", "",
             f"Measured {doc['date']} by `benchmarks/replay_micro.py`: capacity {CAPACITY:,} "
             f"(full), batch {BATCH}, best of {REPEATS} scans of {STEPS:,} steps.", "",
             "| buffer | us per add + sample |", "|---|---:|"]
    lines += [f"| {name} | {us:.1f} |" for name, us in rows.items()]
    (RESULTS / "replay_micro.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

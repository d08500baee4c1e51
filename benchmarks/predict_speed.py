"""How long one action takes: deepq.load_policy(FILE).predict(obs) and Run.predict(obs), on
one CartPole observation at a time, as a user's own Gymnasium loop calls them.

    .venv/bin/python benchmarks/predict_speed.py

The policy is the `cartpole` preset's network with freshly initialised params (the time does
not depend on their values). Each figure is the median over REPEATS blocks of CALLS calls,
after a warm-up that compiles. Writes benchmarks/results/predict_speed.{md,json}.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import deepq
from deepq.presets import config_for
from deepq.run import Run

CALLS, REPEATS = 2_000, 7
RESULTS = Path(__file__).resolve().parent / "results"


def per_call_us(predict, obs: np.ndarray) -> float:
    for _ in range(200):
        predict(obs)
    blocks = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(CALLS):
            predict(obs)
        blocks.append((time.perf_counter() - start) / CALLS * 1e6)
    return statistics.median(blocks)


def main() -> None:
    cfg = config_for("CartPole-v1", None)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp) / "run", cfg, None)
        init = run.agent.init(jax.random.PRNGKey(0), jnp.zeros(4)).params
        run.params = jax.tree.map(lambda x: x[None], init)
        policy = deepq.load_policy(run.export(Path(tmp) / "policy.msgpack"))
        obs = np.zeros(4, np.float32)
        result = {"policy_predict_us": per_call_us(policy.predict, obs),
                  "run_predict_us": per_call_us(run.predict, obs)}
    result |= {"calls": CALLS, "repeats": REPEATS, "jax": jax.__version__,
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{len(jax.devices())} JAX CPU devices",
               "measured": datetime.now(UTC).strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "predict_speed.md").write_text(
        "| call | microseconds per action (median of 7 x 2,000) |\n|---|---:|\n"
        f"| `deepq.load_policy(FILE).predict(obs)` | {result['policy_predict_us']:.1f} |\n"
        f"| `Run.predict(obs)` | {result['run_predict_us']:.1f} |\n\n"
        f"CartPole-v1, one observation a call; {result['machine']}, JAX {result['jax']}, "
        f"{result['measured']}.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

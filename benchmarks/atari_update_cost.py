"""What one learner update costs on this CPU, for the Atari networks at several batch sizes.

    .venv/bin/python benchmarks/atari_update_cost.py            # writes results/atari_update_cost.*

For the 2013 CNN, the Nature CNN and the Nature CNN with LayerNorm (PQN's), at batch 32, 64,
128 and 256: milliseconds per DQN update (online and target forward, Double DQN's second
forward, backward, Adam; agents/dqn.py) on uint8 84x84x4 frames, one seed, and the forward
pass that acts (batch 1, the host driver's per-step call). Each case runs in a fresh
process once with one JAX CPU device (XLA's thread pool over both cores) and once with
deepq's default of one device per core. From the update cost follows the learner's time per
agent step at a fixed replay ratio (samples per env step): batch B every B/ratio steps.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NETS = [("dqn2013_cnn", False), ("nature_cnn", False), ("nature_cnn", True)]
BATCHES = [32, 64, 128, 256]
UPDATES = 20
REPEATS = 3


def measure(network: str, layer_norm: bool, batch: int) -> dict:
    """One case in this process: ms per update and per acting forward."""
    import jax
    import jax.numpy as jnp
    from timing import best_seconds

    from deepq.agents.dqn import make_agent
    from deepq.presets import config_for
    from deepq.replay import Batch

    cfg = config_for("ALE/Pong-v5", "nature", network=network, layer_norm=layer_norm,
                     batch_size=batch, optimizer="adam", learning_rate=1e-4,
                     double_dqn=True, max_grad_norm=10.0)
    agent = make_agent(cfg, 6)
    obs = jnp.zeros((84, 84, 4), jnp.uint8)
    state = agent.init(jax.random.PRNGKey(0), obs)
    key = jax.random.PRNGKey(1)
    frames = jax.random.randint(key, (batch, 84, 84, 4), 0, 256).astype(jnp.uint8)
    data = Batch(frames, jnp.zeros(batch, jnp.int32), jnp.ones(batch), frames,
                 jnp.full(batch, 0.99))

    @jax.jit
    def updates(state):
        def body(s, _):
            s, metrics = agent.update(s, data, key)
            return s, metrics["loss"]

        return jax.lax.scan(body, state, None, length=UPDATES)

    act = jax.jit(lambda o: agent.act(state.params, o, key, 0.05))
    update_s = best_seconds(updates, state, REPEATS) / UPDATES
    act_s = best_seconds(act, obs[None], REPEATS * 20)
    return {"update_ms": 1e3 * update_s, "act_ms": 1e3 * act_s}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        network, layer_norm, batch = sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
        print(json.dumps(measure(network, layer_norm, batch)))
        return
    rows = []
    for devices in ("1", "2"):
        for network, layer_norm in NETS:
            for batch in BATCHES:
                env = dict(os.environ, DEEPQ_CPU_DEVICES=devices, PYTHONPATH=str(Path(__file__)
                                                                               .parent))
                out = subprocess.run(
                    [sys.executable, "-c", "import deepq, atari_update_cost as a; a.main()",
                     "--case", network, "1" if layer_norm else "0", str(batch)],
                    env=env, capture_output=True, text=True, check=True)
                row = {"devices": int(devices), "network": network + ("+ln" if layer_norm else ""),
                       "batch": batch, **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(row, flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "atari_update_cost.json").write_text(json.dumps(
        {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
         "rows": rows}, indent=2))
    lines = [f"# Learner update cost, Atari networks ({machine})", "",
             "One seed; uint8 84x84x4 frames; a DQN update with Double DQN and Adam; `act`: "
             "one greedy forward of batch 1. `per step @8` and `@32`: learner ms per agent "
             "step at 8 and 32 replay samples per env step (batch B every B/8 or B/32 steps).",
             "", "| JAX CPU devices | network | batch | ms / update | ms / act | "
             "ms per step @8 | ms per step @32 |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        per8, per32 = r["update_ms"] * 8 / r["batch"], r["update_ms"] * 32 / r["batch"]
        lines.append(f"| {r['devices']} | {r['network']} | {r['batch']} | {r['update_ms']:.1f} "
                     f"| {r['act_ms']:.2f} | {per8:.2f} | {per32:.2f} |")
    (RESULTS / "atari_update_cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Microbenchmark: deepq's PatchConv against flax's nn.Conv in a whole DQN-style update.

    .venv/bin/python benchmarks/conv_micro.py

For the MinAtar net (10x10x4 input) and the Nature net (84x84x4 uint8 pixels), batch 32:
one update = online forward, target forward, backward, centered RMSProp, as agents/dqn.py
runs it. Each network is timed once unbatched (one seed, as the drivers run a one-seed
block) and once vmapped over 2 seeds (as `--seeds` runs a block of several). The two
layers compute the same function (tests/test_minatar.py checks PatchConv against
`lax.conv_general_dilated`). Prints milliseconds per update (best of REPEATS scans) and
writes benchmarks/results/conv_micro.{md,json}.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from timing import best_seconds

from deepq.networks import CONV_NETS, ConvQNet

REPEATS = 3
RESULTS = Path(__file__).resolve().parent / "results"


class XlaConvQNet(nn.Module):
    """ConvQNet with flax's nn.Conv (VALID) in place of PatchConv."""

    convs: tuple
    hidden: int
    num_actions: int
    scale: float = 1.0

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32) * self.scale
        for features, kernel, stride in self.convs:
            x = nn.relu(nn.Conv(features, (kernel, kernel), (stride, stride), "VALID")(x))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.num_actions)(x)


def update_fn(net, opt):
    def loss(params, target, obs, next_obs):
        q = net.apply(params, obs)[:, 0]
        y = jax.lax.stop_gradient(jnp.max(net.apply(target, next_obs), axis=-1))
        return jnp.mean(optax.huber_loss(q - 0.99 * y))

    def update(state, batch):
        params, target, opt_state = state
        grads = jax.grad(loss)(params, target, *batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), target, opt_state

    return update


def time_update(net, shape, dtype, seeds: int, updates: int) -> float:
    opt = optax.rmsprop(2.5e-4, decay=0.95, eps=0.01, centered=True)
    key = jax.random.PRNGKey(0)
    obs = jax.random.bernoulli(key, 0.1, (32,) + shape).astype(dtype)

    def init(k):
        params = net.init(k, obs)
        return params, params, opt.init(params)

    update = update_fn(net, opt)
    batch = (obs, obs[::-1])
    if seeds == 1:
        state = init(key)
        step = update
    else:
        state = jax.vmap(init)(jax.random.split(key, seeds))
        step = jax.vmap(update, in_axes=(0, None))

    @jax.jit
    def run(state):
        return jax.lax.fori_loop(0, updates, lambda _, s: step(s, batch), state)

    return best_seconds(run, state, REPEATS) / updates * 1e3


def main() -> None:
    load = os.getloadavg()[0]
    cases = [("minatar_cnn", (10, 10, 4), jnp.bool_, 500),
             ("nature_cnn", (84, 84, 4), jnp.uint8, 10)]
    rows = []
    for name, shape, dtype, updates in cases:
        spec = CONV_NETS[name]
        for seeds in (1, 2):
            row = {"network": name, "seeds": seeds}
            for layer, net in (("PatchConv", ConvQNet(num_actions=6, **spec)),
                               ("nn.Conv", XlaConvQNet(num_actions=6, **spec))):
                row[layer] = time_update(net, shape, dtype, seeds, updates)
            rows.append(row)
            print(row, flush=True)
    RESULTS.mkdir(exist_ok=True)
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "load_average_at_start": load, "ms_per_update": rows}
    (RESULTS / "conv_micro.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# PatchConv against nn.Conv: ms per DQN update, batch 32", "",
             f"Measured {doc['date']} by `benchmarks/conv_micro.py` (best of {REPEATS}), "
             f"{doc['cores']} cores, 1-minute load average {load:.1f} at the start (other "
             "processes sharing the CPU inflate both columns alike).", "",
             "| network | seeds | PatchConv | nn.Conv | nn.Conv / PatchConv |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['network']} | {r['seeds']} | {r['PatchConv']:.2f} | {r['nn.Conv']:.2f} | "
              f"{r['nn.Conv'] / r['PatchConv']:.1f}x |" for r in rows]
    (RESULTS / "conv_micro.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

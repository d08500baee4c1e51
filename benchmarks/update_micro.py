"""Microbenchmark: microseconds per DQN update for several MLP sizes, batch sizes, seeds.

    .venv/bin/python benchmarks/update_micro.py
"""

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import time

import jax
import jax.numpy as jnp

from deepq.agents.dqn import make_agent
from deepq.config import Config
from deepq.replay import Batch

CASES = [((64, 64), 64, 1), ((64, 64), 32, 1), ((64, 64), 128, 1), ((32, 32), 64, 1),
         ((128, 128), 64, 1), ((64,), 64, 1), ((64,), 128, 1), ((64, 64), 64, 16),
         ((64,), 128, 16)]
UPDATES = 2000


def time_update(hidden: tuple[int, ...], batch_size: int, seeds: int) -> float:
    cfg = Config(hidden_sizes=hidden, batch_size=batch_size, double_dqn=True)
    agent = make_agent(cfg, 2)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = jax.vmap(lambda k: agent.init(k, jnp.zeros(4)))(keys)
    shape = (seeds, batch_size)
    batch = Batch(jnp.ones(shape + (4,)), jnp.zeros(shape, jnp.int32), jnp.ones(shape),
                   jnp.ones(shape + (4,)), jnp.full(shape, 0.99))

    @jax.jit
    def run(state):
        def body(s, _):
            s, metrics = jax.vmap(agent.update, in_axes=(0, 0, None))(s, batch, keys[0])
            return s, metrics["loss"]

        return jax.lax.scan(body, state, None, length=UPDATES)

    jax.block_until_ready(run(state))
    start = time.perf_counter()
    jax.block_until_ready(run(state))
    return (time.perf_counter() - start) / UPDATES


if __name__ == "__main__":
    print("| hidden | batch | seeds | us / update (all seeds) |\n|---|---|---|---|")
    for hidden, batch, seeds in CASES:
        us = time_update(hidden, batch, seeds) * 1e6
        print(f"| {hidden} | {batch} | {seeds} | {us:.1f} |")

"""deepq: deep Q-learning agents as pure JAX functions, with two drivers and a command line.

    import deepq
    run = deepq.train(deepq.Config(env_id="CartPole-v1"), "runs/cp")
    print(run.evaluate(episodes=100)["mean"])
"""

import os
import sys


def _one_jax_device_per_cpu_core() -> None:
    """Expose each CPU core as a JAX device, so that the jitted driver can give every core
    a block of the vmapped seeds (one core runs one XLA computation at a time). It must be
    set before JAX starts; it does not touch GPU runs. DEEPQ_CPU_DEVICES=1 turns it off."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = int(os.environ.get("DEEPQ_CPU_DEVICES", min(cores or 1, 16)))
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


_one_jax_device_per_cpu_core()

from deepq.config import PRESETS, Config, base_config  # noqa: E402
from deepq.errors import DivergedError, UserError  # noqa: E402

__version__ = "0.1.0"


def train(config: Config | None = None, out="runs/latest", **kwargs):
    """Train a run; see deepq.run.train."""
    from deepq.run import train as _train

    return _train(config, out, **kwargs)


def load(path):
    """Load a trained run directory; see deepq.run.Run."""
    from deepq.run import Run

    return Run.load(path)


__all__ = ["Config", "PRESETS", "base_config", "train", "load", "UserError", "DivergedError",
           "__version__"]

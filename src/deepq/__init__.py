"""deepq: deep Q-learning agents as pure JAX functions, with two drivers and a command line.

    import deepq
    run = deepq.train(deepq.Config(env_id="CartPole-v1"), "runs/cp")
    print(run.evaluate(episodes=100)["mean"])
"""

import ctypes
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


def _keep_freed_memory() -> None:
    """Keep memory that XLA frees inside the process. XLA's CPU runtime allocates every
    call's buffers afresh, and glibc returns big blocks to the OS (mmap, heap trim, one
    arena per thread), so each call page-faults them in again: 11,200 faults per Nature-DQN
    update, 45 ms a call against 33 ms without. One arena that never shrinks and no mmap.
    Linux/glibc only; DEEPQ_MALLOC=default leaves malloc alone."""
    if os.environ.get("DEEPQ_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
    libc.mallopt(m_trim_threshold, 2**31 - 1)
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_arena_max, 1)


_one_jax_device_per_cpu_core()
_keep_freed_memory()

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

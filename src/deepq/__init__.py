"""deepq: deep Q-learning agents as pure JAX functions, with two drivers and a command line.

    import deepq
    run = deepq.train(env_id="CartPole-v1", out="runs/cp")    # the env's preset, as the CLI
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

from deepq._version import __version__  # noqa: E402
from deepq.config import Config  # noqa: E402
from deepq.errors import DivergedError, Interrupted, StorageError, UserError  # noqa: E402

# The rest of the API imports JAX and the envs; it loads on first use, so that processes
# which only step envs (envs/pools.py's workers) or read a run's files start light.
_LAZY = {"PRESETS": "deepq.presets", "config_for": "deepq.presets", "train": "deepq.training",
         "load": "deepq.run", "Run": "deepq.run"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepq' has no attribute {name!r}")


__all__ = ["Config", "PRESETS", "config_for", "train", "load", "Run", "UserError",
           "DivergedError", "Interrupted", "StorageError", "__version__"]

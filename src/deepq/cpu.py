"""The process settings deepq's command line opts in to on the CPU. They must be made before
JAX is imported, and they act on the whole process, so `import deepq` leaves them alone; a
library user who wants the command line's speed calls

    import deepq.cpu; deepq.cpu.setup_process()    # first, before anything imports JAX
"""

from __future__ import annotations

import ctypes
import os
import sys


def setup_process() -> None:
    """Both settings below: one JAX device per CPU core, and malloc that keeps freed memory."""
    use_cpu_cores()
    keep_freed_memory()


def use_cpu_cores(count: int | None = None) -> None:
    """Expose `count` CPU cores (default: all this process may use, at most 16;
    `DEEPQ_CPU_DEVICES`) as JAX devices, so that the jitted driver can give every core a
    block of the vmapped seeds (one core runs one XLA computation at a time). No effect once
    JAX is imported or XLA_FLAGS names a device count; GPU runs are not touched."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = count or int(os.environ.get("DEEPQ_CPU_DEVICES", min(cores or 1, 16)))
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def keep_freed_memory() -> None:
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

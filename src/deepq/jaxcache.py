"""JAX's persistent compilation cache, shared by every deepq process (the command line and
Ray trials): a rerun of the same config skips XLA compilation."""

from __future__ import annotations

import os
from pathlib import Path


def use_compilation_cache() -> None:
    """Cache compiled programs in `DEEPQ_JAX_CACHE` (default ~/.cache/deepq/jax; "off"
    disables it)."""
    cache = os.environ.get("DEEPQ_JAX_CACHE", str(Path.home() / ".cache" / "deepq" / "jax"))
    if cache.lower() in ("", "0", "off"):
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

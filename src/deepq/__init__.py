"""deepq: deep Q-learning agents as pure JAX functions, with two drivers and a command line.

    import deepq
    run = deepq.train(env_id="CartPole-v1", out="runs/cp")    # the env's preset, as the CLI
    print(run.evaluate(episodes=100)["mean"])

`import deepq` changes nothing process-wide; `deepq.cpu.setup_process()`, called before JAX
is imported, makes the command line's CPU settings (one JAX device per core, malloc).
"""

from deepq._version import __version__
from deepq.config import Config
from deepq.errors import DivergedError, Interrupted, StorageError, UserError

# The rest of the API imports JAX and the envs; it loads on first use, so that processes
# which only step envs (envs/pools.py's workers) or read a run's files start light.
_LAZY = {"PRESETS": "deepq.presets", "config_for": "deepq.presets", "train": "deepq.training",
         "load": "deepq.run", "Run": "deepq.run", "load_policy": "deepq.policy",
         "Policy": "deepq.policy"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepq' has no attribute {name!r}")


__all__ = ["Config", "PRESETS", "config_for", "train", "load", "Run", "load_policy", "Policy",
           "UserError",
           "DivergedError", "Interrupted", "StorageError", "__version__"]

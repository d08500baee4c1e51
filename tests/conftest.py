"""The test processes make the command line's CPU settings (two JAX devices on a 2-core
machine), as `deepq` does, before any test module imports JAX."""

from deepq.cpu import setup_process

setup_process()

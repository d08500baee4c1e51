"""The `deepq` command (and `python -m deepq`): the command line's process settings
(deepq.cpu), made before anything imports JAX, then the command line itself."""

import sys

from deepq.cpu import setup_process

setup_process()

from deepq.cli import main  # noqa: E402  (it imports JAX: after the settings)

if __name__ == "__main__":
    sys.exit(main())

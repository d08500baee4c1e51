"""The `deepq` command (and `python -m deepq`): the command line's process settings
(deepq.cpu), made before anything imports JAX, then the command line itself."""

import os
import signal
import sys

from deepq.cpu import setup_process

setup_process()

from deepq import cli  # noqa: E402  (it imports JAX: after the settings)

STOPPED = {128 + signal.SIGINT, 128 + signal.SIGTERM}


def main() -> int:
    """`deepq.cli.main`, then, for a run stopped by a signal, an exit that skips the
    interpreter's teardown: XLA's CPU client waits there for a compiled chunk still running
    in its threads, which can take minutes. Everything of the run is written and closed by
    then."""
    code = cli.main()
    if code in STOPPED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())

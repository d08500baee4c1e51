"""Errors a user can fix. The command line prints each as one line on stderr and exits with
its code: 2 bad input, 3 diverged, 74 a failed write (EX_IOERR), 128 + signal."""

from __future__ import annotations

import gc
import os
import threading
from types import FrameType


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""


class DivergedError(Exception):
    """Training produced a non-finite loss or parameters."""


class Interrupted(BaseException):
    """A run stopped by SIGINT or SIGTERM; the message says what was saved. The command line
    exits 128 + `signum`, the shell's convention (130 for Ctrl-C, 143 for SIGTERM). Like
    KeyboardInterrupt it is not an Exception, so that code which reports failures (a reader
    calling a file corrupt, an env maker naming a missing extra) never takes it for one."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StorageError(Exception):
    """A write failed (the disk is full, an I/O error): the message says what is intact and
    how to go on. The command line exits 74 (sysexits' EX_IOERR)."""


def raise_from_handler(exc: Interrupted, frame: FrameType | None) -> None:
    """Raise `exc` from a signal handler, unless the handler interrupted one of the garbage
    collector's callbacks (JAX registers one): CPython prints an exception raised there as
    "Exception ignored" and drops it. Then the same signal is sent again 50 ms later, by when
    the collection has returned, and its handler runs again."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks:
            again = threading.Timer(0.05, os.kill, (os.getpid(), exc.signum))
            again.daemon = True
            again.start()
            return
        frame = frame.f_back
    raise exc

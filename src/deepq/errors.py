"""Errors a user can fix. The command line prints each as one line on stderr and exits with
its code: 2 bad input, 3 diverged, 74 a failed write (EX_IOERR), 128 + signal."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any


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


def raise_from_handler(exc: Interrupted) -> None:
    """Raise `exc` from a signal handler. Python runs a handler between any two bytecodes,
    also inside a garbage-collector or weakref callback or a __del__ (JAX registers a gc
    callback), where CPython hands the exception to sys.unraisablehook, prints "Exception
    ignored" and goes on. The hook installed here takes such an Interrupted and sends its
    signal again 50 ms later, when the handler runs in ordinary code and the raise stops the
    run."""
    if not getattr(sys.unraisablehook, "resends_interrupts", False):
        sys.unraisablehook = _resending_hook(sys.unraisablehook)
    raise exc


def _resending_hook(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            again = threading.Timer(0.05, os.kill, (os.getpid(), unraisable.exc_value.signum))
            again.daemon = True
            again.start()
        else:
            previous(unraisable)

    hook.resends_interrupts = True
    return hook

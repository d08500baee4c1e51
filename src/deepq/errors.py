"""Errors a user can fix. The command line prints each as one line on stderr and exits with
its code: 2 bad input, 3 diverged, 74 a failed write (EX_IOERR), 128 + signal."""


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

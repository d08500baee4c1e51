"""Errors a user can fix. The command line prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""


class DivergedError(Exception):
    """Training produced a non-finite loss or parameters."""


class Interrupted(Exception):
    """A run stopped by SIGINT or SIGTERM; the message says what was saved. The command line
    exits 128 + `signum`, the shell's convention (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

"""Errors a user can fix. The command line prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""


class DivergedError(Exception):
    """Training produced a non-finite loss or parameters."""

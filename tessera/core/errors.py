"""Errors a user can fix: the command line prints them without a traceback and exits with status 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input (a mapping that cannot work, a missing file): the message names the file and what was expected."""

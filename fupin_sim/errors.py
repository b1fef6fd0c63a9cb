"""Errors a user can act on: each names the file and the place in it.

Every failure caused by user input (a scenario file, a register table, a command-line
argument) is raised as an :class:`InputError` so the command line can print it as one
clear message instead of a traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad user input, located by file and place (key path, or row and column)."""

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None):
        self.file = None if file is None else str(file)
        self.where = where
        self.detail = message
        prefix = ": ".join(p for p in (self.file, where) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def close_match(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{found[0]}'?)" if found else ""

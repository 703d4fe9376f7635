"""Exceptions with one-sentence messages.

A ``UserError`` says what is wrong in the user's input (config, path, flag) and how to fix it; the
CLI prints it without a traceback and exits with status 2. ``GankitError`` is the base of every
error gankit raises on purpose (e.g. a run that diverged), printed the same way with status 1.
"""


class GankitError(Exception):
    """An expected failure with a message meant for the user."""


class UserError(GankitError):
    """A mistake in the user's input, not a bug in gankit."""

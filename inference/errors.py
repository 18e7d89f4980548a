"""The one domain exception of the inference engine.

Every problem a user can cause or fix (a missing or unreadable video, missing weights, a bad
option) reaches the caller as ``InferenceError`` with a message that says what to do; the CLI
catches it once, prints it and exits with status 1.
"""
from __future__ import annotations


class InferenceError(Exception):
    """A run of the engine could not start or finish (bad input, missing weights, bad options)."""


class Cancelled(InferenceError):
    """The run was cancelled (cancel event set or Ctrl-C); nothing was written."""

"""What an operation refuses (a bad request: the CLI's exit 2) and what it could not do (exit 1)."""
from __future__ import annotations


class ServiceError(Exception):
    """An operation did not happen; the message is for the user as it stands."""


class BadRequest(ServiceError):
    """The request itself is wrong: an unknown kind, a rating out of range, a path outside every root."""


class Failed(ServiceError):
    """The request was fine but could not be done: a missing file, an unreadable export, a failed download."""

"""Worker tasks that misbehave on request: how a decoder crashing or hanging on a hostile file looks."""
from __future__ import annotations

import os
import time


def square_or_die(items: list[int]) -> list[int | str]:
    """Squares; the worker process exits abruptly on -1 and hangs on -2."""
    if -1 in items:
        os._exit(1)
    if -2 in items:
        time.sleep(3600)
    return [item * item for item in items]

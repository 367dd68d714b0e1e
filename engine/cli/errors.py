"""One line on stderr for bad input (the command then returns 2)."""
from __future__ import annotations

import sys


def fail(message) -> None:
    """Bad input: one line on stderr (the caller returns 2)."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)

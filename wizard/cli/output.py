"""Terminal output helpers shared by the CLI commands: colour only on a
terminal (NO_COLOR honoured), and scrubbing of secrets from any text."""

from __future__ import annotations

import os
import sys

SYMBOLS = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-", "pending": "·", "running": "…"}
COLOURS = {"pass": "32", "warn": "33", "fail": "31", "skip": "2", "pending": "2", "running": "36"}


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, colour: bool) -> str:
    if not colour or status not in COLOURS:
        return text
    return f"\x1b[{COLOURS[status]}m{text}\x1b[0m"


def scrub(text: str, secrets) -> str:
    """Replace every secret value in text by a mask."""
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(s, "********")
    return text


def group4(value: str) -> str:
    """'5f8d2c1a-7b3e-...' -> '5f8d 2c1a 7b3e ...' for reading aloud."""
    bare = value.replace("-", "")
    return " ".join(bare[i:i + 4] for i in range(0, len(bare), 4))

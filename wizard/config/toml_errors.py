"""TOML syntax errors in plain words, for people who edit the config by hand.

The standard reader (tomllib / tomli) says where it stopped ("at line 3,
column 6" or "at end of document") and why, in a parser's words ("Expected ']'
at the end of a table declaration"). ``explain(text, exc)`` turns that into the
line, the (1-based) column and a sentence that says what to write instead,
with a hint that fits the problem. It never quotes the line: it may hold a
secret.
"""

from __future__ import annotations

import re

_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")

# (pattern of the reader's message, what it means for the person editing the file)
_PLAIN = [
    (r"Expected '=' after a key", "a key without '= value' (or a table header without '[')",
     "Write each setting as key = value, texts in double quotes, and table headers as [name]."),
    (r"Expected '\]\]' at the end of an array", "a [[name]] header without its closing ']]'",
     "Close the header: [[name]] on a line of its own."),
    (r"Expected '\]' at the end of a table", "a [name] header without its closing ']'",
     "Close the header: [name] on a line of its own."),
    (r"Unclosed array", "a list [...] without its closing ']'",
     "Close the list with ']' (items separated by commas)."),
    (r"Unclosed inline table", "an inline table {...} without its closing '}'",
     "Close it with '}' on the same line."),
    (r"Illegal character '\\n'|Unterminated string", "a text without its closing quote",
     "End the text with the same quote it starts with, on the same line."),
    (r"Invalid value", "a value TOML does not know",
     "Put texts in double quotes (\"...\"); write numbers, true/false and dates (YYYY-MM-DD) without quotes."),
    (r"Expected newline or end of document after a statement", "more after the value on the same line",
     "Write one key = value per line, and texts in double quotes."),
    (r"Invalid statement", "a line that is neither key = value nor a [table] header",
     "Delete the line or write it as key = value."),
    (r"Cannot declare .* twice", "a table that appears twice",
     "Keep one [name] header per table and put all its settings under it."),
    (r"Cannot overwrite a value|Cannot mutate", "a key that appears twice",
     "Each key may appear only once in a table."),
]


def _at_end(where) -> bool:
    """The reader stopped "at end of document" (an unclosed list, a key without a value...)."""
    return bool(where) and where.group(1) is None


def position(text: str, exc: Exception) -> tuple[int, int]:
    """(line, 1-based column) where the reader stopped; the end of the text for
    "at end of document"."""
    m = _WHERE.search(str(exc))
    line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line and col and not _at_end(m):      # tomli 2.1+ (Python 3.10) gives these even at the end
        return int(line), int(col)
    if m and m.group(1):
        return int(m.group(1)), int(m.group(2))
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()                       # a final newline starts no line of its own
    return max(len(lines), 1), len(lines[-1]) + 1 if lines else 1


def explain(text: str, exc: Exception) -> tuple[int, str]:
    """(line, message) for a TOMLDecodeError of ``text``."""
    line, col = position(text, exc)
    said = _WHERE.sub("", getattr(exc, "msg", None) or str(exc)).strip().rstrip(".")
    where = "at the end of the file" if _at_end(_WHERE.search(str(exc))) else f"at column {col}"
    for pattern, what, hint in _PLAIN:
        if re.search(pattern, said):
            return line, f"TOML syntax error {where}: {what}. {hint}"
    return line, f"TOML syntax error {where}: {said}. Check quotes around texts and '=' between key and value."

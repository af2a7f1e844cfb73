"""Read-back of IDs over the phone (support calls).

An engineer reads a GUID aloud to someone who types it. To make that safe:

* ``groups(value)`` splits it into groups of four ("5f8d 2c1a 7b3e ...");
* ``check_char(value)`` gives one **check letter** for the whole value, read
  last ("... 5c6d, check K"). A typed value with its check letter is
  verified by ``parse_readback``: any single mis-typed character, and any
  swap of two neighbouring characters, is caught;
* ``spell(text)`` gives the NATO-style spelling ("f foxtrot", "8 eight").

The check letter
----------------
Over the value's hexadecimal digits d_1 .. d_n (dashes, spaces and braces
ignored, case ignored), with weights w_i = ((i - 1) mod 16) + 1, i.e. 1..16,
1..16 for a 32-digit GUID::

    c = (w_1*d_1 + w_2*d_2 + ... + w_n*d_n) mod 17
    check letter = CHECK_ALPHABET[c]      # "GHJKLMNPQRTUVWXYZ"

17 is prime and every weight is 1..16, so changing one digit changes the sum
by w*(d - d'), which is never a multiple of 17: every single-character error
is detected. Neighbouring weights differ by 1 (or 15 at the wrap), so a swap
of two different neighbouring digits is detected too. The check letters are
never hexadecimal digits (and I, O and S are left out as they look like 1, 0
and 5), so the check letter cannot be mistaken for part of the ID.

The same function works on one group (``check_char("5f8d")``) for callers
that want a letter per group; ``render_readback`` shows one per value.
"""

from __future__ import annotations

import re

HEX = "0123456789abcdef"
CHECK_ALPHABET = "GHJKLMNPQRTUVWXYZ"   # 17 letters, none hexadecimal, no I/O/S
CHECK_MODULUS = len(CHECK_ALPHABET)     # 17, prime
assert CHECK_MODULUS == 17

NATO = {
    "a": "alpha", "b": "bravo", "c": "charlie", "d": "delta", "e": "echo", "f": "foxtrot",
    "g": "golf", "h": "hotel", "i": "india", "j": "juliet", "k": "kilo", "l": "lima",
    "m": "mike", "n": "november", "o": "oscar", "p": "papa", "q": "quebec", "r": "romeo",
    "s": "sierra", "t": "tango", "u": "uniform", "v": "victor", "w": "whiskey", "x": "x-ray",
    "y": "yankee", "z": "zulu",
}
DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
          "6": "six", "7": "seven", "8": "eight", "9": "nine"}
SYMBOL_NAMES = {
    "-": "dash", ".": "dot", "@": "at", "_": "underscore", "~": "tilde", " ": "space",
    "/": "slash", ":": "colon", "{": "open brace", "}": "close brace", "+": "plus",
    "=": "equals", "#": "hash", "!": "exclamation mark", "?": "question mark",
    "*": "star", "&": "ampersand", "%": "percent", "$": "dollar", ",": "comma",
    "'": "apostrophe", '"': "double quote", "\\": "backslash", "(": "open bracket",
    ")": "close bracket", "[": "open square bracket", "]": "close square bracket",
}

_SEPARATORS = re.compile(r"[\s{}()\[\]\-:,;.=/_]+")
_CHECK_WORD = re.compile(r"\b(?:check(?:\s*(?:letter|char(?:acter)?))?)\b", re.IGNORECASE)


def _bare(value: str) -> str:
    """The value without separators, lower-case."""
    return _SEPARATORS.sub("", value).lower()


def groups(value: str, size: int = 4) -> list[str]:
    """'5f8d2c1a-7b3e-...' -> ['5f8d', '2c1a', '7b3e', ...] (separators dropped, lower-case)."""
    bare = _bare(value)
    return [bare[i:i + size] for i in range(0, len(bare), size)]


def check_char(value: str) -> str:
    """The check letter of a hexadecimal value (a GUID, a group, a thumbprint).

    Raises ValueError when the value has a character that is not hexadecimal
    (after dropping spaces, dashes and braces)."""
    bare = _bare(value)
    if not bare or any(c not in HEX for c in bare):
        raise ValueError(f"not a hexadecimal value: {value!r}")
    total = sum(((i % 16) + 1) * HEX.index(c) for i, c in enumerate(bare))
    return CHECK_ALPHABET[total % CHECK_MODULUS]


def format_readback(value: str) -> str:
    """'5f8d 2c1a 7b3e 4a9d 8c6f 1e2d 3b4a 5c6d check K': what is read aloud."""
    return " ".join(groups(value)) + f" check {check_char(value)}"


def spell_char(ch: str) -> str:
    """'5' -> '5 five', 'f' -> 'f foxtrot', 'F' -> 'F capital foxtrot', '-' -> '- dash'."""
    low = ch.lower()
    if low in NATO:
        return f"{ch} capital {NATO[low]}" if ch.isupper() else f"{ch} {NATO[low]}"
    if ch in DIGITS:
        return f"{ch} {DIGITS[ch]}"
    if ch in SYMBOL_NAMES:
        return f"{ch} {SYMBOL_NAMES[ch]}"
    return f"{ch} (U+{ord(ch):04X})"


def spell(text: str) -> list[str]:
    """NATO-style spelling, one entry per character:
    spell('5f-8') == ['5 five', 'f foxtrot', '- dash', '8 eight']."""
    return [spell_char(ch) for ch in text]


def explain_readback(text: str) -> tuple[str | None, str | None]:
    """Parse a GUID read back (see ``parse_readback``). Returns (guid, None) or
    (None, a plain-words reason) for the field's message."""
    from wizard.config.fields import clean

    raw, _ = clean(text or "")
    raw = _CHECK_WORD.sub(" ", raw)
    bare = _bare(raw)
    given_check = None
    if len(bare) > 1 and bare[-1].isalpha() and bare[-1] not in HEX:
        given_check, bare = bare[-1].upper(), bare[:-1]
    if given_check is not None and given_check not in CHECK_ALPHABET:
        return None, (f"'{given_check}' is not a check letter (check letters are "
                      f"{', '.join(CHECK_ALPHABET)}).")
    bad = sorted({c for c in bare if c not in HEX})
    if bad:
        return None, (f"'{bad[0]}' is not a hexadecimal character: an ID has only 0-9 and a-f. "
                      "Read that group again.")
    if len(bare) != 32:
        return None, (f"{len(bare)} hexadecimal characters, but an ID has 32 (eight groups of four). "
                      "A group was missed or repeated: read the groups again.")
    if given_check is not None:
        expected = check_char(bare)
        if given_check != expected:
            return None, (f"The check letter {given_check} does not match: a character was typed wrong. "
                          "Read the groups again, one at a time.")
    guid = f"{bare[:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:20]}-{bare[20:]}"
    return guid, None


def parse_readback(text: str) -> str | None:
    """A GUID typed as read back -> canonical 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'.

    Accepts spaces, dashes, braces, surrounding quotes, any case, and the check
    letter appended ('... 5c6d K', '... 5c6d check K'). Returns None when it is
    not 32 hexadecimal digits or when the check letter does not match."""
    return explain_readback(text)[0]


def render_readback(label: str, value: str, *, spelled: bool = False, per_line: int = 4,
                    parts: list[tuple[str, str]] | None = None) -> str:
    """The large read-back text for one value (the TUI shows it big).

    A GUID (or other hexadecimal ID) is shown in numbered groups of four,
    ``per_line`` groups a line, with its check letter; with ``spelled=True``
    each group is followed by its spelling. Any other value (a domain, an
    address) is shown as it is, and spelled when asked. A phrase around values
    ('127.0.0.1, port 587 (SMTP, STARTTLS)') gives its values as ``parts``,
    [(what, value)] (``setup_parts``): only those are spelled, each under its name."""
    from wizard.config.fields import normalise_guid

    value = (value or "").strip()
    lines = [label]
    if not value:
        lines.append("  (not set)")
        return "\n".join(lines)
    guid = normalise_guid(value)
    bare = _bare(value)
    is_hex = guid is not None or (len(bare) >= 8 and all(c in HEX for c in bare))
    if not is_hex:
        lines.append(f"  {value}")
        if spelled and parts is not None:
            for what, part in parts:
                words = spell(part)
                lines.append(f"    {what} {part}:")
                lines += ["      " + ",  ".join(words[i:i + 4]) for i in range(0, len(words), 4)]
        elif spelled:
            words = spell(value)
            lines += ["    " + ",  ".join(words[i:i + 4]) for i in range(0, len(words), 4)]
        return "\n".join(lines)
    parts = groups(guid or value)
    if spelled:
        for n, g in enumerate(parts, 1):
            lines.append(f"  {n}. {g}   " + ", ".join(s.split(" ", 1)[1] for s in spell(g)))
    else:
        for start in range(0, len(parts), per_line):
            lines.append("  " + "  ".join(parts[start:start + per_line]))
    check = check_char(bare)
    lines.append(f"  check {check} ({NATO[check.lower()]})")
    return "\n".join(lines)


# -- the rest of a setup, read out on a call ----------------------------------------------

USER_FLOW_WORDS = {"password": "own user name & password", "client_secret": "the system's sign-in"}


def server_parts(cfg, incoming: bool = False) -> tuple[str, list[tuple[str, str]]]:
    """(phrase, its values): ('outlook.office365.com, port 443 (EWS)',
    [('server', 'outlook.office365.com'), ('port', '443')])."""
    from wizard.config.clouds import resolve
    from wizard.config.endpoints import mail_endpoint
    protocol = (cfg.incoming if incoming else cfg.outgoing).protocol
    if protocol == "graph":
        url = resolve(cfg).graph_url
        return f"Microsoft Graph, {url}", [("address", url)]
    _, server, port = mail_endpoint(cfg, "in" if incoming else "out")   # where the runtime connects
    word = {"smtp": "SMTP, STARTTLS", "imap": "IMAP, TLS", "ews": "EWS"}.get(protocol, protocol.upper())
    return f"{server}, port {port} ({word})", [("server", server), ("port", str(port))]


def server_line(cfg, incoming: bool = False) -> str:
    """'outlook.office365.com, port 443 (EWS)': where a protocol connects, as said on a call."""
    return server_parts(cfg, incoming)[0]


def expiry_line(when, today=None) -> str:
    """'2027-05-30 (175 days left)', or what to do when it is unknown or past."""
    from datetime import date
    if when is None:
        return "not known: look it up under Certificates & secrets (Expires column)"
    days = (when - (today or date.today())).days
    if days < 0:
        return f"{when.isoformat()} (EXPIRED {-days} days ago)"
    return f"{when.isoformat()} ({days} days left)"


def setup_items(cfg, today=None) -> list[tuple[str, str]]:
    """What a support call reads back besides the IDs and mailboxes: the servers and
    ports, the secret's expiry, the incoming accounts and the per-user overrides
    ([[users]]). Never a secret or password (only whether one is set)."""
    return [(label, text) for label, text, _ in setup_entries(cfg, today)]


def setup_parts(cfg, today=None) -> dict[str, list[tuple[str, str]]]:
    """{label: [(what, value)]}: the values inside each of ``setup_items``' phrases,
    the only parts spelled out (a host, a port, a date, an address, a name)."""
    return {label: parts for label, _, parts in setup_entries(cfg, today)}


def setup_entries(cfg, today=None) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(label, phrase, the phrase's values) for ``setup_items`` and ``setup_parts``."""
    items = [("Outgoing server", *server_parts(cfg))]
    i = cfg.incoming
    if i.accounts or i.protocol == "imap":
        items.append(("Incoming server", *server_parts(cfg, incoming=True)))
    expiry = None
    if cfg.auth.flow == "client_secret":
        expiry = ("Secret expires", cfg.auth.secret_expires)
    elif cfg.auth.flow == "certificate" and cfg.auth.certificate_expires:
        expiry = ("Certificate expires", cfg.auth.certificate_expires)
    if expiry is not None:
        label, when = expiry
        items.append((label, expiry_line(when, today), [("date", when.isoformat())] if when else []))
    for n, acc in enumerate(i.accounts, 1):
        parts, values = [acc.address or "(no address yet)"], [("address", acc.address)] if acc.address else []
        if acc.username:
            parts.append(f"user {acc.username}")
            values.append(("user", acc.username))
        if acc.types:
            parts.append("types " + ", ".join(acc.types))
            values += [("type", t) for t in acc.types]
        if acc.available_to and acc.available_to != "all":
            parts.append(f"available to {acc.available_to}")
            values.append(("available to", acc.available_to))
        items.append((f"Incoming account {n}", "; ".join(parts), values))
    for n, user in enumerate(cfg.users, 1):
        parts = [user.name or "(no name yet)", USER_FLOW_WORDS.get(user.flow, user.flow)]
        values = [("name", user.name)] if user.name else []
        if user.flow == "password":
            parts.append(f"user {user.username or '(not set)'}")
            parts.append("password set" if user.password else "password NOT set")
            if user.username:
                values.append(("user", user.username))
        parts.append(f"sender {user.sender or user.username or 'the system sender'}")
        if user.sender:
            values.append(("sender", user.sender))
        items.append((f"Per-user setting {n}", "; ".join(parts), values))
    return items

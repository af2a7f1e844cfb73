"""Validation and clean-up of the values a user types or pastes.

Every function takes the raw text and returns a ``Checked`` value: the cleaned
value, an error message (which names what is expected), and notes about what
was cleaned. The TUI shows these under the field; the config loader and the
CLI use the same functions so a value is judged the same everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# A verified domain: labels of letters, digits and hyphens, at least one dot.
DOMAIN_RE = re.compile(
    r"^(?=.{4,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
)
EMAIL_RE = re.compile(r"^[^@\s\"'<>]+@[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?\.[a-zA-Z]{2,63}$")
HOST_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$")
# Current client secret Value format: 40 characters with "8Q~" (or another
# digit+letter) followed by "~" at positions 4-6 (1-based), per the docs page.
SECRET_VALUE_RE = re.compile(r"^.{3}\d[A-Za-z]~.{34}$")
SECRET_MAX_MONTHS = 24
QUOTES = "\"'`\u201c\u201d\u2018\u2019"


@dataclass
class Checked:
    value: object
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def clean(raw: str) -> tuple[str, list[str]]:
    """Strip the whitespace, line breaks and quotes that pasting brings along."""
    notes: list[str] = []
    text = raw if isinstance(raw, str) else str(raw)
    stripped = text.strip()
    if stripped != text:
        notes.append("removed surrounding spaces or line breaks")
    text = stripped
    while len(text) >= 2 and text[0] in QUOTES and text[-1] in QUOTES:
        text = text[1:-1].strip()
        if "removed surrounding quotes" not in notes:
            notes.append("removed surrounding quotes")
    return text, notes


def normalise_guid(text: str) -> str | None:
    """Accept a GUID typed in any grouping (spaces, dashes, braces) and return
    the canonical 8-4-4-4-12 lower-case form, or None when it is not one."""
    bare = re.sub(r"[\s{}()\-]", "", text)
    if not re.fullmatch(r"[0-9a-fA-F]{32}", bare):
        return None
    bare = bare.lower()
    return f"{bare[:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:20]}-{bare[20:]}"


def check_client_id(raw: str) -> Checked:
    text, notes = clean(raw)
    if not text:
        return Checked(text, "Application (client) ID is empty: copy it from the app's Overview page in the Azure portal (a GUID like 1b2c3d4e-...).", notes)
    guid = normalise_guid(text)
    if guid is None:
        return Checked(text, "Application (client) ID must be a GUID (8-4-4-4-12 hexadecimal characters), as shown on "
                             "the app's Overview page." + _not_a_guid_because(text), notes)
    if guid != text:
        notes.append("normalised to the 8-4-4-4-12 form")
    return Checked(guid, None, notes)


def check_tenant_id(raw: str) -> Checked:
    text, notes = clean(raw)
    if not text:
        return Checked(text, "Directory (tenant) ID is empty: copy it from the app's Overview page (a GUID), or type a verified domain such as contoso.com.", notes)
    guid = normalise_guid(text)
    if guid is not None:
        if guid != text:
            notes.append("normalised to the 8-4-4-4-12 form")
        return Checked(guid, None, notes)
    if text.lower() in ("common", "organizations", "consumers"):
        return Checked(text, f"Directory (tenant) ID '{text}' is not allowed: the guides register a single-tenant app, so use the tenant's GUID or verified domain.", notes)
    if DOMAIN_RE.match(text):
        return Checked(text.lower(), None, notes)
    return Checked(text, "Directory (tenant) ID must be a GUID (8-4-4-4-12 hexadecimal characters) or a verified "
                         "domain such as contoso.com." + _not_a_guid_because(text, domain_too=True), notes)


def check_client_secret(raw: str) -> Checked:
    text, notes = clean(raw)
    if not text:
        return Checked(text, "Client secret is empty: paste the secret's Value from Certificates & secrets (it is shown only once, right after you create it).", notes)
    if text.startswith(("env:", "file:")):
        return Checked(text, None, notes)
    if normalise_guid(text) is not None:
        return Checked(
            text,
            "This is the Secret ID, not the secret Value. In Certificates & secrets the "
            "table has two columns: copy the one named 'Value' (about 40 characters, "
            "with '~' in it). If the Value is already hidden, create a new secret "
            "(Azure steps 20-22).",
            notes,
        )
    if any(c.isspace() for c in text):
        return Checked(text, "Client secret contains spaces or line breaks inside it: paste the Value again in one piece.", notes)
    warning = None
    if not SECRET_VALUE_RE.match(text):
        warning = (f"This does not look like a current client secret Value: {_secret_shape_problem(text)}. "
                   f"{SECRET_SHAPE} Check that the whole Value was copied.")
    return Checked(text, None, notes, warning)


# What SECRET_VALUE_RE checks, in words (the warning names the part that differs).
SECRET_SHAPE = ("A Value made in the Azure portal today has 40 characters, and its characters 4 to 6 are a digit, "
                "a letter and '~' (as in 'abc8Q~...').")


def _secret_shape_problem(text: str) -> str:
    """Which part of SECRET_SHAPE ``text`` misses, without showing any of it
    beyond its length (the value is a secret)."""
    if len(text) != 40:
        return f"it has {len(text)} characters, not 40"
    if not text[3].isdigit():
        return "its 4th character is not a digit"
    if not text[4].isascii() or not text[4].isalpha():
        return "its 5th character is not a letter"
    return "its 6th character is not '~'"


def describe_character(ch: str) -> str:
    """'U+200B ZERO WIDTH SPACE (invisible)': a character named so that it can be
    found and deleted, also when it cannot be seen or looks like another one."""
    import unicodedata
    name = unicodedata.name(ch, "")
    text = f"U+{ord(ch):04X}" + (f" {name}" if name else "")
    if unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp", "Cc") or ch.isspace():
        return text + " (invisible)"
    plain = unicodedata.normalize("NFKC", ch)
    if plain != ch and plain.isascii() and plain.isprintable():
        return text + f" (looks like '{plain}' but is another character)"
    if not ch.isascii():
        return text + f" ('{ch}', which looks like a Latin letter or digit but is not one)"
    return f"'{ch}'"


def _not_a_guid_because(text: str, *, domain_too: bool = False) -> str:
    """The first character that cannot be part of a GUID (or a domain), named
    with its position, so a pasted look-alike or invisible character is found;
    else what is wrong with the number of digits."""
    allowed = set("0123456789abcdefABCDEF-{}() ")
    if domain_too:
        allowed |= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.")
    for n, ch in enumerate(text, 1):
        if ch not in allowed and not (ch.isascii() and ch.isspace()):
            if domain_too and ch.isascii():
                return ""       # an ASCII text that is neither: the sentence above says it all
            if ch.isascii() and ch.isprintable():
                return f" Character {n}, '{ch}', is not a hexadecimal digit (0-9, a-f)."
            return (f" It contains {describe_character(ch)} as character {n}: delete it or type the ID again "
                    "(copy it from the Azure portal, not from a document or chat).")
    if domain_too:
        return ""
    digits = sum(c in "0123456789abcdefABCDEF" for c in text)
    if digits != 32:
        return f" It has {digits} hexadecimal digits; a GUID has 32."
    return ""


def check_secret_expiry(raw: str | date | None, today: date | None = None, *, label: str = "Secret",
                        max_months: int | None = SECRET_MAX_MONTHS) -> Checked:
    """A client secret's (or certificate's) expiry: not past, not beyond what
    Azure allows, and a warning 30 days ahead."""
    today = today or date.today()
    what = label.lower()
    if raw is None or raw == "":
        return Checked(None, None, [], f"No expiry date given: the wizard cannot warn you before the {what} expires.")
    if isinstance(raw, date):
        when = raw
        notes: list[str] = []
    else:
        text, notes = clean(raw)
        try:
            when = date.fromisoformat(text)
        except ValueError:
            return Checked(text, f"{label} expiry must be a date as YYYY-MM-DD (the 'Expires' column in Certificates & secrets).", notes)
    if when < today:
        if label == "Secret":
            return Checked(when, f"Secret expiry {when.isoformat()} is in the past: that secret no longer works (AADSTS7000222). Create a new one (Azure steps 20-22).", notes)
        return Checked(when, f"{label} expiry {when.isoformat()} is in the past: create and upload a new {what}.", notes)
    if max_months is not None and when > _add_months(today, max_months):
        return Checked(when, f"{label} expiry {when.isoformat()} is more than {max_months} months ahead; Azure allows at most {max_months} months. Check the date in the 'Expires' column.", notes)
    days = (when - today).days
    warning = f"The {what} expires in {days} days: create the next one soon." if days < 30 else None
    return Checked(when, None, notes, warning)


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    day = min(d.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
    return date(year, month, day)


def check_email(raw: str, label: str = "E-mail address") -> Checked:
    text, notes = clean(raw)
    if not text:
        return Checked(text, f"{label} is empty: type an address such as erp@contoso.com.", notes)
    if not EMAIL_RE.match(text):
        return Checked(text, f"{label} '{text}' is not an e-mail address (expected name@domain, e.g. erp@contoso.com).", notes)
    if len(text) > 254 or len(text.split("@")[0]) > 64:    # RFC 5321 limits; Exchange refuses longer ones
        return Checked(text, f"{label} is {len(text)} characters long: an e-mail address has at most 64 before "
                             "the @ and 254 in all.", notes)
    return Checked(text, None, notes)


def check_username(raw: str) -> Checked:
    text, notes = clean(raw)
    if not text:
        return Checked(text, "User name is empty: type the service account's sign-in name (user@contoso.com).", notes)
    if not EMAIL_RE.match(text):
        return Checked(text, "User name must be the account's sign-in name in UPN form (user@contoso.com); DOMAIN\\user does not work with OAuth.", notes)
    return Checked(text, None, notes)


def check_password(raw: str) -> Checked:
    # Passwords are never stripped: spaces may be part of them.
    text = raw if isinstance(raw, str) else str(raw)
    if text == "":
        return Checked(text, "Password is empty: type the service account's password.")
    return Checked(text, None)


def check_server(raw: str) -> Checked:
    text, notes = clean(raw)
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            notes.append("removed the https:// prefix (only the host name is needed)")
    text = text.split("/")[0] if "/" in text else text
    if not text:
        return Checked(text, "Server is empty: for Exchange Online it is outlook.office365.com.", notes)
    if not HOST_RE.match(text):
        return Checked(text, f"Server '{text}' is not a host name (expected e.g. outlook.office365.com).", notes)
    return Checked(text.lower(), None, notes)


def check_int(raw: str | int, label: str, lo: int, hi: int) -> Checked:
    if isinstance(raw, bool):
        return Checked(raw, f"{label} must be a whole number from {lo} to {hi}.")
    if isinstance(raw, int):
        value = raw
        notes: list[str] = []
    else:
        text, notes = clean(raw)
        text = text.replace(",00", "").replace(".00", "")
        try:
            value = int(text)
        except ValueError:
            return Checked(text, f"{label} must be a whole number from {lo} to {hi}.", notes)
    if not lo <= value <= hi:
        return Checked(value, f"{label} must be from {lo} to {hi} (got {value}).", notes)
    return Checked(value, None, notes)


def check_port(raw: str | int) -> Checked:
    return check_int(raw, "Port", 1, 65535)


def check_poll_minutes(raw: str | int) -> Checked:
    return check_int(raw, "Polling interval (minutes)", 1, 1440)


MASK = "********"       # always the same length: a mask never tells a value's length
HINT_CHARS = 3          # the Azure portal shows a client secret's first 3 characters (its "hint")


def mask_secret(value: str | None) -> str:
    """A client secret as the Azure portal shows it: its first 3 characters
    (the hint on Certificates & secrets), then a fixed mask: 'abc********'.
    Short values (not a portal Value) show nothing of themselves.
    ``env:``/``file:`` references are not secrets and are shown as they are."""
    if not value:
        return ""
    if value.startswith(("env:", "file:")):
        return value
    return (value[:HINT_CHARS] if len(value) >= 16 else "") + MASK


def mask_password(value: str | None) -> str:
    """A password shows nothing of itself, not even its length: a fixed mask
    ('' when not set; ``env:``/``file:`` references as they are)."""
    if not value:
        return ""
    if value.startswith(("env:", "file:")):
        return value
    return MASK

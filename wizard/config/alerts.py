"""The optional ``[alerts]`` section of the config (schema v1, an extension):

    [alerts]
    to = ["it-ops@contoso.com"]      # who gets the alert mails (sent through the config's own mailbox)
    days_before = [30, 14, 7, 1]     # optional: when to warn before a secret, certificate or EWS date

A config without the section sends no alert. Only the standard library and
``config.fields`` here (``schema`` imports this module, not the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DAYS = (30, 14, 7, 1)
MAX_DAYS = 730          # a client secret lives at most 24 months


@dataclass
class Alerts:
    to: list[str] = field(default_factory=list)
    days_before: list[int] = field(default_factory=lambda: list(DEFAULT_DAYS))

    @property
    def enabled(self) -> bool:
        return bool(self.to)

    def thresholds(self) -> list[int]:
        """The days, largest first, each once."""
        return sorted({d for d in self.days_before if isinstance(d, int) and not isinstance(d, bool)},
                      reverse=True)


def to_data(alerts: Alerts) -> dict:
    """What the file holds: ``to``, and ``days_before`` only when it is not the default."""
    data: dict = {}
    if alerts.to:
        data["to"] = list(alerts.to)
    if list(alerts.days_before) != list(DEFAULT_DAYS):
        data["days_before"] = list(alerts.days_before)
    return data


def problems(alerts: Alerts, present: bool) -> list[tuple[str, str, bool]]:
    """(field, message, is_warning) for each problem in the section; ``present``:
    the file has an [alerts] table (an empty one is worth a word)."""
    from wizard.config.fields import check_email
    out: list[tuple[str, str, bool]] = []
    for n, address in enumerate(alerts.to):
        if not isinstance(address, str):
            out.append((f"alerts.to[{n}]", "must be an address in quotes, e.g. to = [\"it-ops@contoso.com\"]",
                        False))
            continue
        checked = check_email(address, "Alert recipient")
        if checked.error:
            out.append((f"alerts.to[{n}]", checked.error, False))
    if present and not alerts.to:
        out.append(("alerts.to", "is empty or missing: no alert mail is sent. Give the addresses to warn, e.g. "
                                 "to = [\"it-ops@contoso.com\"], or remove [alerts].", True))
    if not alerts.days_before:
        out.append(("alerts.days_before", "is empty: give the days before an expiry to warn on, e.g. "
                                          "days_before = [30, 14, 7, 1] (or leave the key out for that default).",
                    False))
    for n, days in enumerate(alerts.days_before):
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_DAYS:
            shown = days if isinstance(days, (int, float)) and not isinstance(days, bool) else type(days).__name__
            out.append((f"alerts.days_before[{n}]", f"must be a whole number of days from 0 to {MAX_DAYS}, "
                                                    f"not {shown!s}, e.g. days_before = [30, 14, 7, 1]", False))
    return out

"""The dates that end a working setup, read from the config (no network):
the client secret's and the certificate's expiry, the EWS retirement (EWS on
Exchange Online only) and, for delegated flows, when the sign-in was last used."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date


@dataclass
class Facts:
    secret_expires: date | None = None
    certificate_expires: date | None = None
    ews_shutdown: date | None = None            # EWS in Exchange Online switched off (guide data)
    refresh_last_used: float | None = None      # seconds since the epoch; delegated flows only
    delegated: bool = False
    relay: dict | None = None                   # the relay's queue ([relay] set up): queued, retrying, dead, ...

    def expiries(self) -> list[tuple[str, date]]:
        """(kind, date) of each known end date: "secret", "certificate", "ews"."""
        pairs = [("secret", self.secret_expires), ("certificate", self.certificate_expires),
                 ("ews", self.ews_shutdown)]
        return [(k, d) for k, d in pairs if d is not None]


WHAT = {"secret": "The client secret", "certificate": "The certificate",
        "ews": "EWS in Exchange Online (switched off by Microsoft)"}


def timestamp(day: date) -> int:
    """Seconds since the epoch at the start of ``day`` (UTC): the moment a
    Prometheus rule compares with time()."""
    return calendar.timegm(day.timetuple())


def gather(cfg) -> Facts:
    from wizard.identity import usage
    from wizard.guide.retirement import ews_on_exchange_online
    facts = Facts(delegated=cfg.auth.flow in usage.DELEGATED)
    if cfg.auth.flow == "client_secret":
        facts.secret_expires = cfg.auth.secret_expires
    if cfg.auth.flow == "certificate":
        facts.certificate_expires = cfg.auth.certificate_expires or _certificate_expiry(cfg.auth.certificate)
    if ews_on_exchange_online(cfg):
        from wizard.guide.steps import load_guide
        facts.ews_shutdown = load_guide().ews_retirement.shutdown
    if facts.delegated:
        facts.refresh_last_used = usage.last_used(cfg)
    if getattr(cfg, "relay", None) is not None:
        from wizard.relay.status import counts
        facts.relay = counts(cfg.relay, cfg.outgoing.protocol)
    return facts


def _certificate_expiry(path: str) -> date | None:
    """The expiry of the certificate in the key file, when it holds one."""
    if not path:
        return None
    from wizard.identity.certificates import certificate_info
    try:
        return certificate_info(path).expires
    except Exception:       # no certificate in the file, unreadable: the check's own steps say so
        return None

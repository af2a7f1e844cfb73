"""The local relay (``mailwizard relay``) from the business system's side: where it fits,
and what to type into the system's SMTP and IMAP (or POP3) settings, in the system's own field names.

- ``offer(cfg, answers)``: one paragraph of why the relay fits this setup, or "" where it does
  not: Monitor G5 over EWS on Exchange Online (EWS blocked unless allowed, off for good on the
  retirement's shutdown date), Efecte ESM, or another system that only speaks SMTP + IMAP with a
  password (the recommender's answer, or the SMTP + IMAP choice).
- ``settings(cfg, client, password)``: [(heading, [(field, value)])] for the system.
- ``sheet_lines(cfg)``: the same for every client, for ``mailwizard export sheet``.

No Textual and no ``wizard.relay`` here (a lower layer): the screens and exports call this.
"""

from __future__ import annotations

from datetime import date

# Exchange Team blog, 2026-01-27 (docs/microsoft-365.md): SMTP AUTH with Basic authentication is
# disabled by default for existing tenants at the end of December 2026.
BASIC_SMTP_OFF = "the end of December 2026"
UPSTREAMS = {   # what the dialog offers (the relay also takes EWS while it lives); IMAP pass-through needs incoming IMAP
    "graph": "Microsoft Graph: sends exactly once; no IMAP",
    "smtp+imap": "SMTP + IMAP (XOAUTH2): sends at least once; IMAP",
}
G5_SMTP_METHOD = "Server based, via SMTP"   # Monitor G5 help, System settings > E-mail > E-mail method
NOT_STORED = "(shown once when the client was added; only its hash is stored)"


def offer(cfg, answers=None, today: date | None = None) -> str:
    """Why the relay fits this config ("" when it does not). ``answers``: the recommender's
    ``Answers`` when it was used."""
    from wizard.guide.retirement import ews_on_exchange_online
    if cfg.microsoft.exchange == "on_premises":
        return ""
    if cfg.system == "monitor_g5":
        if not ews_on_exchange_online(cfg):
            return ""
        from wizard.guide.steps import load_guide
        r = load_guide().ews_retirement
        today = today or date.today()
        state = {"before": f"is blocked from {r.blocked_from.isoformat()} unless the tenant allows this app "
                           f"and is switched off for good on {r.shutdown.isoformat()}",
                 "during": "is blocked unless the tenant allows this app and is switched off for good on "
                           f"{r.shutdown.isoformat()}",
                 "after": f"was switched off for good on {r.shutdown.isoformat()}"}[r.phase(today)]
        return (f"Monitor G5 speaks EWS to Exchange Online, which {state}. Monitor also sends over SMTP and reads over IMAP with a user name "
                "and password: point those at the local relay (mailwizard relay on this server), and the relay "
                "signs in to Exchange Online with OAuth and keeps every accepted message until it is delivered.")
    speaks_only_smtp = (answers is not None and tuple(answers.speaks) == ("smtp+imap",)) if answers is not None \
        else _choice(cfg) == "smtp+imap"
    if cfg.system == "efecte_esm" or speaks_only_smtp:
        name = "Efecte ESM" if cfg.system == "efecte_esm" else "This system"
        return (f"{name} speaks SMTP and IMAP with a password. Exchange Online disables Basic authentication for "
                f"SMTP by default at {BASIC_SMTP_OFF}, and OAuth in the system itself needs delegated sign-in "
                "(no MFA). With the local relay the system keeps a plain relay password on this server, and "
                "mailwizard signs in to Exchange Online with OAuth and keeps every accepted message until it is "
                "delivered.")
    return ""


def _choice(cfg) -> str:
    from wizard.guide.recommend import choice_of
    return choice_of(cfg.outgoing.protocol, cfg.incoming.protocol)


def _host(listen: str) -> tuple[str, str]:
    from wizard.config.relay import split_listen
    try:
        host, port = split_listen(listen)
    except ValueError:
        return listen, "?"
    if host in ("0.0.0.0", "::"):
        host = "(this server's name or address)"
    return host, str(port)


def endpoints(relay) -> dict[str, tuple[str, str, str]]:
    """{"smtp": (host, port, security), "imap": ..., "pop3": ...}: IMAP and POP3 only when their
    ``imap_listen`` / ``pop3_listen`` is set."""
    out = {}
    if relay.certificate:
        smtp_sec = "SSL/TLS (implicit)" if relay.tls == "implicit" else "STARTTLS"
    else:
        smtp_sec = "none: plain text, on this machine only"
    out["smtp"] = (*_host(relay.listen), smtp_sec)
    if relay.imap_listen:
        out["imap"] = (*_host(relay.imap_listen),
                       "SSL/TLS (implicit)" if relay.certificate else "none: plain text, on this machine only")
    if relay.pop3_listen:
        out["pop3"] = (*_host(relay.pop3_listen),
                       "SSL/TLS (implicit)" if relay.certificate else "none: plain text, on this machine only")
    return out


def settings(cfg, client, password: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """What to type into the business system for ``client`` (a ``RelayClient``); POP3 last, when
    ``pop3_listen`` is set (for a system that reads over POP3 instead of IMAP)."""
    out = _smtp_imap(cfg, client, password)
    pop3 = endpoints(cfg.relay).get("pop3")
    if pop3:
        out.append(("POP3 (reading, instead of IMAP)", [
            ("POP3 server", pop3[0]), ("Port", pop3[1]), ("Security", pop3[2]),
            ("Authentication", "USER/PASS or AUTH PLAIN"), ("User name", client.name), ("Password", password),
            ("(reads the INBOX of)", client.own_mailbox),
        ]))
    return out


def _smtp_imap(cfg, client, password: str) -> list[tuple[str, list[tuple[str, str]]]]:
    ends = endpoints(cfg.relay)
    smtp, imap = ends["smtp"], ends.get("imap")
    sender = ", ".join(client.senders) or "(none)"
    if cfg.system == "monitor_g5":
        out = [("Monitor G5: System settings > System overall > E-mail", [
            ("E-mail method", G5_SMTP_METHOD),
            ("Server address (Exchange/SMTP)", smtp[0]),
            ("Port (Exchange/SMTP)", smtp[1]),
            ("Use SSL", f"on ({smtp[2]})" if cfg.relay.certificate else "off"),
            ("User name (SMTP)", client.name),
            ("Password (SMTP)", password),
            ("(sends as)", sender),
        ])]
        if imap:
            out.append(("Monitor G5: Settings for incoming e-mail", [
                ("Service", "IMAP (instead of Exchange Online)"),
                ("Server name", imap[0]),
                ("Port", imap[1]),
                ("(encryption)", imap[2]),
                ("E-mail accounts: E-mail", client.own_mailbox),
                ("User name (Exchange)", client.name),
                ("Password", password),
            ]))
        return out
    if cfg.system == "efecte_esm":
        out = [("Efecte ESM: Maintenance > System settings > Edit Platform Settings", [   # guide 004's keys
            ("mail.transport.oauth.enabled", "false (the relay does the OAuth)"),
            ("mail.store.oauth.enabled", "false" if imap else "(leave as it is: the relay does not read)"),
        ]), ("Efecte ESM: the basic mail settings", [
            ("SMTP server", f"{smtp[0]}:{smtp[1]}; security {smtp[2]}"),
            *([("IMAP server", f"{imap[0]}:{imap[1]}; security {imap[2]}")] if imap else []),
            ("User name", client.name),
            ("Password", password),
            ("Mailbox", client.own_mailbox),
        ])]
        return out
    out = [("SMTP (sending)", [
        ("SMTP server", smtp[0]), ("Port", smtp[1]), ("Security", smtp[2]),
        ("Authentication", "yes: PLAIN or LOGIN"), ("User name", client.name), ("Password", password),
        ("Sender (From)", sender),
    ])]
    if imap:
        out.append(("IMAP (reading)", [
            ("IMAP server", imap[0]), ("Port", imap[1]), ("Security", imap[2]),
            ("User name", client.name), ("Password", password), ("Mailbox", client.own_mailbox),
        ]))
    return out


def as_text(sections, indent: str = "  ") -> str:
    lines = []
    for heading, rows in sections:
        width = max((len(k) for k, _ in rows), default=0)
        lines.append(heading)
        lines += [f"{indent}{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def _ews_upstream(cfg) -> str:
    if cfg.microsoft.exchange == "on_premises":
        return "EWS (exactly once)"
    from wizard.guide.steps import load_guide
    shutdown = load_guide().ews_retirement.shutdown
    return (f"EWS (exactly once) until Exchange Online switches EWS off for good on {shutdown.isoformat()}: "
            "set [outgoing] protocol = \"graph\" before then")


def sheet_lines(cfg) -> list[str]:
    """The relay part of the settings sheet ([] without a [relay] section)."""
    relay = cfg.relay
    if relay is None:
        return []
    title = "The local relay (mailwizard relay): what the system types in"
    out = ["", title, "-" * len(title)]
    up = "Microsoft Graph (exactly once)" if cfg.outgoing.protocol == "graph" else \
        "SMTP XOAUTH2 (at least once)" if cfg.outgoing.protocol == "smtp" else _ews_upstream(cfg)
    also = [f"{name} {value}" for name, value in (("IMAP", relay.imap_listen), ("POP3", relay.pop3_listen)) if value]
    out.append(f"  The relay listens on {relay.listen}" + (f" ({', '.join(also)})" if also else "")
               + f"; it delivers over {up}.")
    if not relay.clients:
        out.append("  No client yet: `mailwizard relay add-client NAME --from ADDR` prints its password once.")
    for client in relay.clients:
        out += ["", f"  client {client.name}"]
        out += ["  " + line for line in as_text(settings(cfg, client, NOT_STORED)).splitlines()]
    return out

"""Which sign-in flow and which mail protocol fit a setup, and why.

From a few answers (can the consuming system sign in as an app? is MFA
enforced on the service account? Conditional Access or security defaults?
which protocols does the system speak? Exchange Online or on-premises?) this
recommends:
- a flow: certificate > client secret when the system can sign in as an app;
  device code for delegated access (works with MFA); user name & password
  only where nothing else is possible (Efecte ESM, guide 004);
- a protocol: Microsoft Graph for new Exchange Online setups; EWS only where
  the system speaks nothing else (with the retirement status from
  ``wizard.guide.retirement``); SMTP + IMAP (XOAUTH2) for systems like Efecte ESM.

Protocol choices are "ews", "graph" and "smtp+imap"; ``split`` turns one into
the (outgoing, incoming) pair of the config. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from wizard.config.schema import ALL_FLOWS, APP_ONLY_FLOWS, Config

CHOICES = ("ews", "graph", "smtp+imap")
CHOICE_LABELS = {
    "ews": "EWS (Exchange Web Services)",
    "graph": "Microsoft Graph",
    "smtp+imap": "SMTP + IMAP (XOAUTH2)",
}
GUIDANCE = {
    "ews": "Only if the system speaks nothing else: EWS in Exchange Online is being retired.",
    "graph": "Recommended for new Exchange Online setups: REST over HTTPS, Mail.Send / Mail.ReadWrite.",
    "smtp+imap": "For systems that send over SMTP (587 STARTTLS) and read over IMAP (993), e.g. Efecte ESM.",
}
# What each system can do (the guides and the products' own settings).
SYSTEM_FLOWS = {
    "monitor_g5": ("client_secret", "password"),
    "efecte_esm": ("password",),
    "generic": tuple(ALL_FLOWS),
}
SYSTEM_PROTOCOLS = {
    "monitor_g5": ("ews",),
    "efecte_esm": ("smtp+imap",),
    "generic": CHOICES,
}
DEFAULTS = {   # (protocol, flow) preselected when the system is chosen
    "monitor_g5": ("ews", "client_secret"),
    "efecte_esm": ("smtp+imap", "password"),
    "generic": ("graph", "client_secret"),
}
PASSWORD_LIMITS = ("the user name & password flow cannot do MFA, fails under Conditional Access and "
                   "security defaults, does not work for federated (ADFS) users, and Microsoft discourages it")


def split(choice: str) -> tuple[str, str]:
    """'smtp+imap' -> ('smtp', 'imap'); 'graph' -> ('graph', 'graph')."""
    if choice == "smtp+imap":
        return "smtp", "imap"
    if choice not in CHOICES:
        raise ValueError(f"unknown protocol choice '{choice}'; expected one of: {', '.join(CHOICES)}")
    return choice, choice


def choice_of(outgoing: str, incoming: str) -> str:
    """The config's (outgoing, incoming) protocols as one choice."""
    if outgoing in ("smtp", "imap") or incoming in ("smtp", "imap"):
        return "smtp+imap"
    return outgoing if outgoing in CHOICES else "ews"


def defaults(system: str) -> tuple[str, str]:
    """(protocol choice, flow) to preselect for a system."""
    return DEFAULTS.get(system, DEFAULTS["generic"])


@dataclass(frozen=True)
class Answers:
    system: str = "generic"
    app_only: bool = True               # the system can sign in as an app (client credentials)
    mfa: bool = False                   # MFA is enforced for the service account
    conditional_access: bool = False    # Conditional Access policies or security defaults are on
    speaks: tuple[str, ...] = CHOICES   # the protocols the system speaks (CHOICES items)
    exchange: str = "online"            # "online" | "on_premises"


@dataclass
class Recommendation:
    flow: str
    flow_reason: str
    protocol: str                       # a CHOICES item
    protocol_reason: str
    warnings: list[str] = field(default_factory=list)
    answers: Answers | None = None      # what it was based on

    def text(self, *, brief: bool = False) -> str:
        """The recommendation in plain words; ``brief``: each warning's first sentence only."""
        lines = [f"Sign-in: {ALL_FLOWS[self.flow]}. {self.flow_reason}",
                 f"Protocol: {CHOICE_LABELS[self.protocol]}. {self.protocol_reason}"]
        for w in self.warnings:
            lines.append("! " + (w.split(". ")[0].rstrip(".") + "." if brief else w))
        return "\n".join(lines)


def recommend_flow(a: Answers) -> tuple[str, str, list[str]]:
    allowed = SYSTEM_FLOWS.get(a.system, SYSTEM_FLOWS["generic"])
    blocked = a.mfa or a.conditional_access
    if a.app_only and "certificate" in allowed:
        return "certificate", ("The system can sign in as an app: a certificate is the safest way (the private "
                               "key never leaves the server, no secret to copy, you choose the validity)."), []
    if a.app_only and "client_secret" in allowed:
        return "client_secret", ("The system can sign in as an app with a client secret: no user password, and "
                                 "MFA or password changes on users do not break it. Renew the secret before it "
                                 "expires (at most 24 months)."), []
    if "device_code" in allowed:
        why = "MFA is enforced" if a.mfa else ("Conditional Access is on" if a.conditional_access else
                                                "the system signs in as a user")
        return "device_code", (f"Delegated access and {why}: the device code flow signs in once on any device "
                               "(MFA works) and keeps a refresh token; no password is stored."), []
    if "password" in allowed:
        warnings = []
        if blocked:
            warnings.append("MFA / Conditional Access will block the user name & password flow (AADSTS50076, "
                            "53003): the tenant admin must exclude this service account (a dedicated mailbox "
                            "account, sign-in allowed only from the server) or the system cannot connect.")
        return "password", ("The system supports only user name & password (delegated), so it is the only "
                            f"choice, although {PASSWORD_LIMITS}."), warnings
    return allowed[0], "The only method the system supports.", []


def recommend_protocol(a: Answers, today: date | None = None) -> tuple[str, str, list[str]]:
    spoken = [c for c in CHOICES if c in a.speaks and c in SYSTEM_PROTOCOLS.get(a.system, CHOICES)]
    spoken = spoken or list(SYSTEM_PROTOCOLS.get(a.system, CHOICES))
    on_prem = a.exchange == "on_premises"
    if on_prem:
        if "ews" in spoken:
            return "ews", ("Exchange Server on-premises keeps EWS (the Exchange Online retirement does not "
                           "apply), and Microsoft Graph reaches only Exchange Online mailboxes."), []
        if "smtp+imap" in spoken:
            return "smtp+imap", "Exchange Server on-premises: SMTP + IMAP, which the system speaks.", []
    if "graph" in spoken and not on_prem:
        return "graph", ("Microsoft Graph is Microsoft's API for new Exchange Online setups; EWS is being "
                         "retired and SMTP/IMAP need SMTP AUTH allowed per mailbox."), []
    if "smtp+imap" in spoken:
        return "smtp+imap", ("The system sends over SMTP and reads over IMAP (OAuth 2.0, XOAUTH2); SMTP is "
                             "capped at 30 messages a minute and 10,000 recipients a day, and SMTP AUTH must "
                             "be allowed for the mailbox."), []
    warning = retirement_warning("ews", a.exchange, a.system, today)
    return "ews", "The system speaks nothing but EWS today.", [warning] if warning else []


def recommend(a: Answers, today: date | None = None) -> Recommendation:
    flow, flow_reason, w1 = recommend_flow(a)
    protocol, protocol_reason, w2 = recommend_protocol(a, today)
    return Recommendation(flow, flow_reason, protocol, protocol_reason, w1 + w2, a)


def retirement_warning(choice: str, exchange: str = "online", system: str = "generic",
                       today: date | None = None, client_id: str = "") -> str:
    """The EWS retirement status for a protocol choice ("" when it does not apply)."""
    from wizard.guide.retirement import OK, ews_status

    cfg = Config(system=system)
    cfg.outgoing.protocol, cfg.incoming.protocol = split(choice)
    cfg.microsoft.exchange, cfg.microsoft.client_id = exchange, client_id
    level, message = ews_status(cfg, today)
    return "" if level == OK else message


def password_warning(chosen: str, system: str, *, mfa: bool = False, conditional_access: bool = False,
                     recommended: str | None = None) -> str:
    """The warning shown when the user picks user name & password against the advice ("" when none)."""
    if chosen != "password":
        return ""
    allowed = SYSTEM_FLOWS.get(system, SYSTEM_FLOWS["generic"])
    better = recommended or next((f for f in ("certificate", "client_secret", "device_code") if f in allowed), None)
    blocked = mfa or conditional_access
    if better in (None, "password"):
        if not blocked:
            return ""
        return ("User name & password is the only method this system supports, but MFA / Conditional Access "
                "will block it: the tenant admin must exclude the service account.")
    text = f"User name & password chosen against the advice ({ALL_FLOWS[better]} fits this system): {PASSWORD_LIMITS}."
    if blocked:
        text += " With MFA or Conditional Access on, this sign-in will fail (AADSTS50076 / 53003)."
    return text


def flow_is_app_only(flow: str) -> bool:
    return flow in APP_ONLY_FLOWS


# -- the permissions the chosen flow and protocols need (registration stage) ----

MANIFEST_FLOW = {"client_secret": "client_secret", "certificate": "client_secret",
                 "password": "password", "device_code": "password"}   # same permissions


def permissions(flow: str, outgoing: str, incoming: str) -> list:
    """The API permissions (``wizard.guide.manifest.Permission``) for a flow over the
    outgoing and incoming protocols, without duplicates, Exchange first."""
    from wizard.guide.manifest import permissions_for

    out: list = []
    for protocol in dict.fromkeys((outgoing, incoming)):
        for p in permissions_for(MANIFEST_FLOW.get(flow, flow), protocol):
            if p not in out:
                out.append(p)
    return sorted(out, key=lambda p: (p.api != "Office 365 Exchange Online", p.name == "User.Read"))


def manifest(flow: str, outgoing: str, incoming: str) -> tuple[str | None, list]:
    """(the ``requiredResourceAccess`` JSON to paste, or None, and the
    permissions that have no verified ID and must be added by hand)."""
    import json

    perms = permissions(flow, outgoing, incoming)
    by_hand = [p for p in perms if p.id is None]
    if by_hand:
        return None, by_hand
    entries: dict[str, list[dict]] = {}
    for p in perms:
        entries.setdefault(p.resource_app_id, []).append({"id": p.id, "type": p.manifest_type})
    body = [{"resourceAppId": res, "resourceAccess": access} for res, access in entries.items()]
    return f'"requiredResourceAccess": {json.dumps(body, indent=2)}', []

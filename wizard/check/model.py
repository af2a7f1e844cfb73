"""What the connection test reports: its steps (Step, Report), their titles and
order, the time bounds (Tuning), and the scrubbing that keeps secrets out of them."""

from __future__ import annotations

from dataclasses import dataclass, field



TITLES = {
    "config": "Check the settings", "dns": "Find the servers (DNS)", "tcp": "Connect to the servers",
    "tls": "Secure connection (TLS)", "token": "Sign in to Microsoft", "claims": "Check the token's permissions",
    "mailbox": "Open the sender mailbox", "send": "Send a test message",
}
SMTP_MAILBOX_TITLE = "Sign in to the SMTP server as the sender"
SERVICE = {"ews": "EWS", "graph": "Microsoft Graph", "smtp": "SMTP", "imap": "IMAP"}
SENDER_CODES = ("MailboxNotEnabledForRESTAPI", "ErrorInvalidUser", "554 5.2.252", "ErrorSendAsDenied")
CHAIN = ("config", "dns", "tcp", "tls", "token", "claims", "mailbox", "send")
EXO_HOSTS = ("outlook.office365.com", "outlook.office365.us", "webmail.apps.mil", "partner.outlook.cn",
             "outlook.office.com")


@dataclass
class Step:
    id: str
    title: str
    status: str = "pending"         # pending|running|pass|warn|fail|skip
    ms: float = 0
    summary: str = ""
    code: str | None = None
    fix: str | None = None
    guide_step: str | None = None
    screen: str | None = None
    details: dict = field(default_factory=dict)


@dataclass
class Report:
    ok: bool
    steps: list[Step]

    def to_json(self) -> dict:
        return {"ok": self.ok, "steps": [{"id": s.id, "status": s.status, "ms": s.ms, "summary": s.summary,
                                          "code": s.code, "fix": s.fix} for s in self.steps]}


ENV_TIMEOUT = "MAILWIZARD_TIMEOUT"      # "CONNECT[,READ]" seconds per request
ENV_MAX_WAIT = "MAILWIZARD_MAX_WAIT"    # seconds: cap of each wait between retries


@dataclass
class Tuning:
    """Bounds of the test; tests shrink them and inject ``sleep``."""
    timeout: tuple = (5.0, 20.0)          # connect, read (s)
    auth_attempts: int = 3                # identity platform 5xx/429
    auth_max_wait: float = 10.0
    busy_wait: float = 5.0                # one EWS ErrorServerBusy back-off, at most
    propagation_wait: float = 60.0        # 403 right after a new registration: retry this long
    propagation_interval: float = 15.0
    sleep: object = None                  # None: time.sleep, interrupted by cancel
    tick: float = 1.0                     # countdown step while waiting (on_step is called each tick)

    @classmethod
    def from_env(cls, environ=None) -> "Tuning":
        """Defaults, changed by MAILWIZARD_TIMEOUT ("5" or "5,20": connect and
        read timeout of each request, seconds) and MAILWIZARD_MAX_WAIT (the
        longest single wait between retries, seconds; the number of retries
        stays the same). Raises ValueError naming the variable when a value is
        not a positive number."""
        import os
        env = os.environ if environ is None else environ
        t = cls()
        raw = (env.get(ENV_TIMEOUT) or "").strip()
        if raw:
            parts = [_positive(x, ENV_TIMEOUT) for x in raw.split(",")]
            if len(parts) > 2:
                raise ValueError(f"{ENV_TIMEOUT}={raw!r}: give CONNECT or CONNECT,READ seconds, e.g. 5,20")
            t.timeout = (parts[0], parts[-1])
        raw = (env.get(ENV_MAX_WAIT) or "").strip()
        if raw:
            cap = _positive(raw, ENV_MAX_WAIT)
            retries = max(1, round(t.propagation_wait / t.propagation_interval))
            t.auth_max_wait = min(t.auth_max_wait, cap)
            t.busy_wait = min(t.busy_wait, cap)
            t.propagation_interval = min(t.propagation_interval, cap)
            t.propagation_wait = t.propagation_interval * retries
            t.tick = min(t.tick, cap)
        return t


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):        # also refuses nan
        raise ValueError(f"{name}={text.strip()!r} is not a positive number of seconds")
    return value



def secs(seconds: float) -> str:
    """Seconds for a countdown: whole seconds, tenths below 10 s when not whole."""
    if seconds >= 10 or abs(seconds - round(seconds)) < 0.05:
        return str(int(round(seconds)))
    return f"{seconds:.1f}"


def resolved(value: str) -> str | None:
    from wizard.config.schema import ConfigError, resolve_secret
    try:
        return resolve_secret(value or "", "auth.client_secret").strip()
    except ConfigError:
        return None


# Fields chosen on stage 1 (system, sign-in method, protocol, on-premises), though
# their sections' other fields are typed on stages 3 and 4.
TARGET_FIELDS = ("system", "auth.flow", "outgoing.protocol", "incoming.protocol", "microsoft.exchange")


def screen_of(field_name: str) -> str:
    """The stage that holds the field (where the wizard changes it)."""
    if field_name in TARGET_FIELDS:
        return "target"
    if field_name.startswith(("microsoft.tenant_id", "microsoft.client_id", "auth.")):
        return "ids"
    if field_name.startswith(("outgoing.", "incoming.", "send_to", "users[", "users.")):
        return "mail"
    return "target"


def scrub_text(text, secrets):
    if not isinstance(text, str):
        return text
    for s in sorted(secrets, key=len, reverse=True):
        if s and s in text:
            text = text.replace(s, "********")
    return text


def scrub_value(value, secrets):
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {k: scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, secrets) for v in value]
    return value


def scrub_step(step: Step, secrets) -> None:
    for name in ("summary", "code", "fix"):
        setattr(step, name, scrub_text(getattr(step, name), secrets))
    step.details = scrub_value(step.details, secrets)


__all__ = ["Step", "Report", "Tuning"]

"""The connection test: a fixed list of steps, each explained in plain words.

config -> dns -> tcp -> tls -> token -> claims -> mailbox -> send (with send_to)
-> mailbox:<address> for each incoming account. A step after a failed one is
skipped; incoming accounts are each checked once the sender mailbox passed.
Never raises for service or network errors, and never puts a secret or token
in any text. No msal/exchangelib/textual import at module level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import netcheck
from .catalogue import Diagnosis, lookup

TITLES = {
    "config": "Check the settings", "dns": "Find the servers (DNS)", "tcp": "Connect to the servers",
    "tls": "Secure connection (TLS)", "token": "Sign in to Microsoft", "claims": "Check the token's permissions",
    "mailbox": "Open the sender mailbox", "send": "Send a test message",
}
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


def plan(cfg, send_to=None) -> list[Step]:
    ids = list(CHAIN if send_to else CHAIN[:-1])
    ids += [f"mailbox:{a.address}" for a in cfg.incoming.accounts if a.address]
    return [Step(i, TITLES.get(i, f"Open mailbox {i.partition(':')[2]}")) for i in ids]


def run_check(cfg, *, send_to=None, on_step=None, cancel=None, tuning: Tuning | None = None) -> Report:
    if tuning is None:          # the TUI honours MAILWIZARD_TIMEOUT / MAILWIZARD_MAX_WAIT as the CLI does
        try:
            tuning = Tuning.from_env()
        except ValueError:      # the CLI reports a bad value (exit 2); the engine never raises
            tuning = Tuning()
    run = _Run(cfg, send_to, on_step, cancel, tuning)
    return run.go()


class _Run:
    def __init__(self, cfg, send_to, on_step, cancel, tuning):
        from .config import secrets_of
        self.cfg, self.send_to, self.on_step, self.cancel, self.t = cfg, send_to, on_step, cancel, tuning
        self.steps = plan(cfg, send_to)
        self.secrets = set(secrets_of(cfg))
        self.token = None
        self.failed_chain = False
        self.cancelled = False
        from .auth import DiscoveryCache
        self.http_cache = DiscoveryCache()   # one tenant discovery per run, however many sign-ins
        self.secrets.update(netcheck.proxy_secrets())

    # -- plumbing ---------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        if self.t.sleep is not None:
            self.t.sleep(seconds)
        elif self.cancel is not None:
            self.cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def countdown(self, step: Step, seconds: float, text) -> None:
        """Wait ``seconds`` while the step shows ``text(remaining)`` as its
        running summary, refreshed every ``tuning.tick`` seconds through
        on_step (the TUI shows it: a visible countdown). Stops early on cancel."""
        left = float(seconds)
        while left > 1e-9 and not self.cancel_set():
            step.summary = text(left)
            self.emit(step)
            chunk = min(self.t.tick, left)
            self.sleep(chunk)
            left -= chunk

    def emit(self, step: Step) -> None:
        _scrub_step(step, self.secrets)
        if self.on_step:
            try:
                self.on_step(step)
            except Exception:   # a broken display must not break the test
                pass

    def apply(self, step: Step, d: Diagnosis, status: str = "fail", summary: str | None = None) -> None:
        step.status, step.code, step.fix = status, d.code, d.fix
        step.summary = summary or d.cause
        step.guide_step, step.screen = d.guide_step, d.screen
        for k in ("service_message", "trace_id", "correlation_id"):
            if getattr(d, k):
                step.details[k] = getattr(d, k)

    def go(self) -> Report:
        for step in self.steps:
            if self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
            if self.cancelled:
                step.status, step.summary = "skip", "Skipped: the test was cancelled."
                self.emit(step)
                continue
            if self.blocked(step.id):
                step.status, step.summary = "skip", "Skipped: an earlier step failed."
                self.emit(step)
                continue
            step.status = "running"
            self.emit(step)
            start = time.monotonic()
            try:
                getattr(self, "do_" + step.id.partition(":")[0])(step)
            except Exception as exc:   # our own bug: report it, never raise
                self.apply(step, lookup("internal", cfg=self.cfg,
                                        service_message=f"{type(exc).__name__}: {exc}"))
            step.ms = round((time.monotonic() - start) * 1000, 1)
            if step.status == "fail" and step.id in CHAIN:
                self.failed_chain = True
            self.emit(step)
        ok = not self.cancelled and all(s.status != "fail" for s in self.steps)
        return Report(ok, self.steps)

    def blocked(self, step_id: str) -> bool:
        if step_id.startswith("mailbox:"):
            return any(s.status == "fail" for s in self.steps if s.id in CHAIN[:-1])
        return self.failed_chain

    @property
    def flow(self) -> str:
        return self.cfg.auth.flow

    @property
    def ews(self) -> bool:
        return self.cfg.outgoing.protocol == "ews"

    # -- the steps --------------------------------------------------------------
    def do_config(self, step: Step) -> None:
        from .config import validate
        from .fields import check_email, normalise_guid
        cfg = self.cfg
        if cfg.auth.flow == "client_secret" and normalise_guid(_resolved(cfg.auth.client_secret) or "x"):
            return self.apply(step, lookup("secret.id_pasted", cfg=cfg))
        problems = validate(cfg)
        if cfg.outgoing.server.lower() in EXO_HOSTS:   # EWS retirement applies to Exchange Online only
            from .retirement import ews_problem
            problems += [p for p in [ews_problem(cfg)] if p]
        if self.send_to and not check_email(self.send_to).ok:
            from .config import Problem
            problems.append(Problem("send_to", check_email(self.send_to, "Test recipient").error))
        errors = [p for p in problems if not p.warning]
        if errors:
            p = errors[0]
            d = lookup("config.invalid", cfg=cfg)
            d.screen = _screen_of(p.field)
            d.fix = f"{p.message} ({d.fix})"
            step.details["field"] = p.field
            step.details["problems"] = [f"[{e.field}] {e.message}" for e in errors]
            return self.apply(step, d, summary=f"{p.field}: {p.message}")
        warnings = [p for p in problems if p.warning]
        expiring = [p for p in warnings if p.field == "auth.secret_expires"]
        if expiring:
            return self.apply(step, lookup("secret.expiring", cfg=cfg), "warn", expiring[0].message)
        if warnings:
            step.status, step.summary = "warn", f"{warnings[0].field}: {warnings[0].message}"
            step.fix, step.screen = "Check the named field.", _screen_of(warnings[0].field)
            return
        step.status, step.summary = "pass", "All settings are filled in and look right."

    def targets(self) -> list[tuple[str, str, int]]:
        return netcheck.targets(self.cfg, ews=self.ews)

    def do_dns(self, step: Step) -> None:
        found = []
        for label, host, port in self.targets():
            if host in step.details:
                continue
            try:
                addrs, via = netcheck.resolve(self.cfg, host, port, self.t.timeout[0])
            except Exception as exc:
                return self.apply(step, netcheck.diagnose(exc, self.cfg, host, port, "net.dns", label))
            step.details[host] = addrs
            found.append(f"{host} -> {addrs[0]}" + (f" (via proxy {via})" if via else ""))
        step.status, step.summary = "pass", "Found " + "; ".join(found)

    def do_tcp(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            try:
                via = netcheck.connect(self.cfg, host, port, self.t.timeout)
            except Exception as exc:
                proxy = netcheck.proxy_for(host)
                if proxy:
                    d = lookup("net.proxy", cfg=self.cfg, host=host,
                               service_message=f"proxy {proxy[0]}:{proxy[1]}: {exc}")
                    step.details["proxy"] = f"{proxy[0]}:{proxy[1]}"
                    summary = f"{d.cause} Proxy {proxy[0]}:{proxy[1]}: " + (
                        f"it answered {exc.status} {exc.reason}." if isinstance(exc, netcheck.ProxyRefused)
                        else f"{type(exc).__name__}: {exc}.")
                    return self.apply(step, d, summary=summary)
                return self.apply(step, netcheck.diagnose(exc, self.cfg, host, port, "net.timeout", label))
            done.append(f"{host}:{port}" + (f" (CONNECT through proxy {via})" if via else ""))
            if via:
                step.details["proxy"] = via
        step.status, step.summary = "pass", "Connected to " + ", ".join(done)

    def do_tls(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            try:
                info = netcheck.handshake(self.cfg, host, port, self.t.timeout)
            except Exception as exc:
                return self.apply(step, netcheck.diagnose(exc, self.cfg, host, port, "tls.error", label))
            step.details[host] = info
            done.append(f"{host} ({info.get('version', 'TLS')}" + (f", through proxy {info['proxy']}" if info.get("proxy") else "")
                        + (f", certificate valid until {info['not_after']}" if info.get("not_after") else "") + ")")
        step.status, step.summary = "pass", "Trusted certificate for " + "; ".join(done)

    def do_token(self, step: Step) -> None:
        from .auth import AuthError, Retry, acquire_token

        pending = {}

        def on_retry(attempt, wait):
            pending.update(attempt=attempt + 1, wait=wait)

        def sleep(seconds):
            nxt, total = pending.get("attempt", 2), self.t.auth_attempts
            self.countdown(step, seconds, lambda left: (
                f"The identity platform is busy; trying again in {_secs(left)} s (attempt {nxt} of {total})."))
        retry = Retry(attempts=self.t.auth_attempts, max_wait=self.t.auth_max_wait, sleep=sleep)
        try:
            tok = acquire_token(self.cfg, retry=retry, timeout=self.t.timeout, on_retry=on_retry,
                                http_cache=self.http_cache)
        except AuthError as exc:
            return self.apply(step, exc.diagnosis)
        self.token = tok
        self.secrets.add(tok.access_token)
        mins = tok.expires_in // 60
        who = (f"user {self.cfg.auth.username} (delegated)" if self.flow == "password"
               else f"app {self.cfg.microsoft.client_id} (app-only" + (", certificate)" if self.flow == "certificate" else ")"))
        if self.flow == "device_code":    # the saved sign-in of `mailwizard login` (wizard/device_code.py)
            who = f"user {tok.claims.get('upn') or self.cfg.auth.username or '?'} (delegated, saved device code sign-in)"
        step.details.update(expires_in=tok.expires_in, attempts=tok.attempts)
        if tok.notes:
            step.details["note"] = " ".join(tok.notes)
        step.status = "pass"
        step.summary = f"Signed in as {who}; token valid for {mins} min." + (
            " Microsoft discourages this flow (no MFA)." if tok.notes else "")

    def do_claims(self, step: Step) -> None:
        from .claims import check_claims, granted
        claims = self.token.claims
        if not claims:
            return self.apply(step, lookup("claims.decode", cfg=self.cfg))
        findings = check_claims(claims, self.cfg, self.flow)
        step.details["granted"] = granted(claims)
        step.details["findings"] = [f.code for f in findings]
        for status in ("fail", "warn"):
            first = next((f for f in findings if f.status == status), None)
            if first:
                return self.apply(step, first.diagnosis, status)
        step.status, step.summary = "pass", f"Token for {claims.get('aud')} has the right permission ({granted(claims)})."

    def do_mailbox(self, step: Step) -> None:
        if step.id == "mailbox":
            return self.mailbox(step, self.cfg.outgoing.sender, self.token.access_token, propagate=True)
        address = step.id.partition(":")[2]
        acc = next(a for a in self.cfg.incoming.accounts if a.address == address)
        token = self.token.access_token
        if self.flow == "password" and acc.username and acc.username.lower() != self.cfg.auth.username.lower():
            from .auth import AuthError, Retry, acquire_token
            try:
                tok = acquire_token(self.cfg, username=acc.username, password=acc.password or self.cfg.auth.password,
                                    retry=Retry(attempts=1, sleep=self.sleep), timeout=self.t.timeout,
                                    http_cache=self.http_cache)
            except AuthError as exc:
                return self.apply(step, exc.diagnosis)
            token = tok.access_token
            self.secrets.add(token)
        self.mailbox(step, address, token, propagate=False)

    def mailbox(self, step: Step, address: str, token: str, propagate: bool) -> None:
        from .ews_client import EwsError, check_mailbox
        if not self.ews:
            d = lookup("ews.protocol", cfg=self.cfg, service=self.cfg.outgoing.protocol.upper())
            step.status, step.summary, step.fix = "skip", d.cause, d.fix
            return
        budget = self.t.propagation_wait if propagate else 0.0
        interval = self.t.propagation_interval
        attempts = 1 + (max(1, int(-(-budget // interval))) if budget > 0 and interval > 0 else 0)
        attempt = 1
        while True:
            try:
                info = check_mailbox(self.cfg, token, address, flow=self.flow, timeout=self.t.timeout,
                                     busy_wait=self.t.busy_wait, sleep=self.busy_sleep(step))
                break
            except EwsError as exc:
                d = exc.diagnosis
                if d.code != "ews.403" or budget <= 0 or self.cancel_set():
                    if d.code == "ews.403" and attempt > 1:
                        d.cause += f" Tried {attempt} times over {_secs(step.details.get('waited_s', 0))} s."
                    return self.apply(step, d)
                wait = min(interval, budget)
                budget -= wait
                attempt += 1
                step.details["waited_s"] = step.details.get("waited_s", 0) + wait
                step.details["attempts"] = attempt
                self.countdown(step, wait, lambda left, n=attempt: (
                    f"EWS answered 403: new app permissions can take minutes to arrive; retrying in "
                    f"{_secs(left)} s (attempt {n} of {attempts})."))
        step.details.update(total=info.total, unread=info.unread)
        step.status = "pass"
        step.summary = f"Opened the inbox of {address}: {info.total} messages, {info.unread} unread."
        if propagate and self.cfg.outgoing.server.lower() in EXO_HOSTS:
            d = lookup("ews.retirement", cfg=self.cfg)
            self.apply(step, d, "warn", step.summary + " Note: " + d.cause)

    def busy_sleep(self, step: Step):
        """The wait after EWS ErrorServerBusy, as a countdown on the step."""
        return lambda seconds: self.countdown(step, seconds, lambda left: (
            f"Exchange is busy (ErrorServerBusy); trying again in {_secs(left)} s (attempt 2 of 2)."))

    def cancel_set(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def do_send(self, step: Step) -> None:
        from .ews_client import EwsError, send_test_message
        if not self.ews:
            d = lookup("ews.protocol", cfg=self.cfg, service=self.cfg.outgoing.protocol.upper())
            step.status, step.summary, step.fix = "skip", d.cause, d.fix
            return
        sender = self.cfg.outgoing.sender
        try:
            subject = send_test_message(self.cfg, self.token.access_token, sender, self.send_to, flow=self.flow,
                                        timeout=self.t.timeout, busy_wait=self.t.busy_wait,
                                        sleep=self.busy_sleep(step))
        except EwsError as exc:
            return self.apply(step, exc.diagnosis)
        step.status, step.summary = "pass", f"Sent \"{subject}\" from {sender} to {self.send_to}."


def _secs(seconds: float) -> str:
    """Seconds for a countdown: whole seconds, tenths below 10 s when not whole."""
    if seconds >= 10 or abs(seconds - round(seconds)) < 0.05:
        return str(int(round(seconds)))
    return f"{seconds:.1f}"


def _resolved(value: str) -> str | None:
    from .config import ConfigError, resolve_secret
    try:
        return resolve_secret(value or "", "auth.client_secret").strip()
    except ConfigError:
        return None


def _screen_of(field_name: str) -> str:
    if field_name.startswith(("microsoft.tenant_id", "microsoft.client_id", "auth.")):
        return "ids"
    if field_name.startswith(("outgoing.", "incoming.", "send_to")):
        return "mail"
    return "target"


def _scrub_text(text, secrets):
    if not isinstance(text, str):
        return text
    for s in sorted(secrets, key=len, reverse=True):
        if s and s in text:
            text = text.replace(s, "********")
    return text


def _scrub_value(value, secrets):
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, secrets) for v in value]
    return value


def _scrub_step(step: Step, secrets) -> None:
    for name in ("summary", "code", "fix"):
        setattr(step, name, _scrub_text(getattr(step, name), secrets))
    step.details = _scrub_value(step.details, secrets)


__all__ = ["Step", "Report", "Tuning", "plan", "run_check"]

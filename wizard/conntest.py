"""The connection test: a fixed list of steps, each explained in plain words.

config -> dns -> tcp -> tls -> token -> claims -> mailbox -> send (with send_to)
-> mailbox:<address> for each incoming account. A step after a failed one is
skipped; incoming accounts are each checked once the sender mailbox passed.
Never raises for service or network errors, and never puts a secret or token
in any text. No msal/exchangelib/textual import at module level.

Every protocol the config uses is tested the way the runtime uses it (the
runtime's own clients in ``wizard.runtime`` do the Graph, SMTP and IMAP work):

- dns/tcp/tls: the login host and each mail server of the config (EWS host;
  Graph host; SMTP host, port 587, TLS after STARTTLS; IMAP host, port 993).
- token: one token per API the config needs (Exchange for EWS/SMTP/IMAP,
  Graph for Graph; two when outgoing and incoming use different APIs).
- claims: each token's audience, tenant, expiry and permissions for its
  protocols (``claims.PERMISSIONS``).
- mailbox (the sender): EWS GetFolder of the inbox; Graph ``GET
  /users/{sender}/mailFolders/inbox``; SMTP STARTTLS + ``AUTH XOAUTH2`` as the
  runtime signs in to send from the sender (no message).
- send (with send_to): EWS CreateItem; Graph ``sendMail``; SMTP a message.
- mailbox:<address>: EWS GetFolder; Graph as above; IMAP ``AUTHENTICATE
  XOAUTH2`` + ``SELECT INBOX`` (read-only) and a count of unseen mail. An Efecte
  ESM config naming no incoming mailbox is read as naming the service
  account's own (``wizard.mailboxes``); that step then warns.
- user:<name>: each [[users]] override signs in as `send --from NAME` does and
  opens its sender mailbox (``wizard.usercheck``).
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


def plan(cfg, send_to=None) -> list[Step]:
    from .mailboxes import with_default_incoming
    from .usercheck import title, user_steps
    cfg = with_default_incoming(cfg)        # Efecte ESM reads the service account's mailbox by default
    ids = list(CHAIN if send_to else CHAIN[:-1])
    ids += [f"mailbox:{a.address}" for a in cfg.incoming.accounts if a.address]
    ids += user_steps(cfg)                  # user:NAME per [[users]] override
    titles = dict(TITLES)
    if cfg.outgoing.protocol == "smtp":
        titles["mailbox"] = SMTP_MAILBOX_TITLE
    return [Step(i, title(i) if i.startswith("user:") else titles.get(i, f"Open mailbox {i.partition(':')[2]}"))
            for i in ids]


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
        from .mailboxes import default_incoming, with_default_incoming
        self.implied = default_incoming(cfg)     # an ESM config naming no incoming mailbox: this one is read
        cfg = with_default_incoming(cfg)
        self.cfg, self.send_to, self.on_step, self.cancel, self.t = cfg, send_to, on_step, cancel, tuning
        self.steps = plan(cfg, send_to)
        self.secrets = set(secrets_of(cfg))
        self.token = None           # the outgoing protocol's token (TokenResult)
        self.tokens: dict = {}      # api ("exchange" | "graph") -> TokenResult of the config's sign-in
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
        if step_id.startswith(("mailbox:", "user:")):
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
            from .diagnose import warning_fix
            step.screen = _screen_of(warnings[0].field)
            step.fix = warning_fix(warnings[0].field, step.screen)
            return
        step.status, step.summary = "pass", "All settings are filled in and look right."

    def targets(self) -> list[tuple[str, str, int]]:
        return netcheck.targets(self.cfg)

    def net_diagnosis(self, exc, host, port, default, label) -> Diagnosis:
        d = netcheck.diagnose(exc, self.cfg, host, port, default, label)
        if label in netcheck.DIRECT and netcheck.proxy_for(host) and d.code.startswith(("net.", "tls.")):
            d.cause += f" ({SERVICE[label]}, reached directly: the runtime does not use a proxy for it.)"
        return d

    def do_dns(self, step: Step) -> None:
        found = []
        for label, host, port in self.targets():
            if host in step.details:
                continue
            try:
                addrs, via = netcheck.resolve(self.cfg, host, port, self.t.timeout[0],
                                              direct=label in netcheck.DIRECT)
            except Exception as exc:
                return self.apply(step, self.net_diagnosis(exc, host, port, "net.dns", label))
            step.details[host] = addrs
            found.append(f"{host} -> {addrs[0]}" + (f" (via proxy {via})" if via else ""))
        step.status, step.summary = "pass", "Found " + "; ".join(found)

    def do_tcp(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            direct = label in netcheck.DIRECT
            try:
                via = netcheck.connect(self.cfg, host, port, self.t.timeout, direct=direct)
            except Exception as exc:
                proxy = None if direct else netcheck.proxy_for(host)
                if proxy:
                    d = lookup("net.proxy", cfg=self.cfg, host=host,
                               service_message=f"proxy {proxy[0]}:{proxy[1]}: {exc}")
                    step.details["proxy"] = f"{proxy[0]}:{proxy[1]}"
                    summary = f"{d.cause} Proxy {proxy[0]}:{proxy[1]}: " + (
                        f"it answered {exc.status} {exc.reason}." if isinstance(exc, netcheck.ProxyRefused)
                        else f"{type(exc).__name__}: {exc}.")
                    return self.apply(step, d, summary=summary)
                return self.apply(step, self.net_diagnosis(exc, host, port, "net.timeout", label))
            done.append(f"{host}:{port}" + (f" ({SERVICE[label]})" if label in SERVICE else "")
                        + (f" (CONNECT through proxy {via})" if via else ""))
            if via:
                step.details["proxy"] = via
        step.status, step.summary = "pass", "Connected to " + ", ".join(done)

    def do_tls(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            try:
                info = netcheck.handshake(self.cfg, host, port, self.t.timeout, starttls=label == "smtp",
                                          direct=label in netcheck.DIRECT)
            except Exception as exc:
                return self.apply(step, self.net_diagnosis(exc, host, port, "tls.error", label))
            step.details[f"{host}:{port}" if host in step.details else host] = info
            done.append(f"{host}" + (f":{port}" if port != 443 else "")
                        + (f" ({SERVICE[label]}" + (" after STARTTLS, " if info.get("starttls") else ", ")
                           if label in SERVICE else " (")
                        + f"{info.get('version', 'TLS')}"
                        + (f", through proxy {info['proxy']}" if info.get("proxy") else "")
                        + (f", certificate valid until {info['not_after']}" if info.get("not_after") else "") + ")")
        step.status, step.summary = "pass", "Trusted certificate for " + "; ".join(done)

    # -- tokens -----------------------------------------------------------------
    @property
    def out_api(self) -> str:
        from .claims import api_of
        return api_of(self.cfg.outgoing.protocol)

    @property
    def in_api(self) -> str:
        from .claims import api_of
        return api_of(self.cfg.incoming.protocol)

    def do_token(self, step: Step) -> None:
        from .auth import AuthError, Retry, acquire_token
        from .claims import API_NAMES, apis

        pending = {}

        def on_retry(attempt, wait):
            pending.update(attempt=attempt + 1, wait=wait)

        def sleep(seconds):
            nxt, total = pending.get("attempt", 2), self.t.auth_attempts
            self.countdown(step, seconds, lambda left: (
                f"The identity platform is busy; trying again in {_secs(left)} s (attempt {nxt} of {total})."))
        wanted_apis = apis(self.cfg)
        for api in wanted_apis:      # one token per API: Exchange (EWS, SMTP, IMAP) and/or Graph
            retry = Retry(attempts=self.t.auth_attempts, max_wait=self.t.auth_max_wait, sleep=sleep)
            try:
                tok = acquire_token(self.cfg, retry=retry, timeout=self.t.timeout, on_retry=on_retry,
                                    http_cache=self.http_cache, api=api)
            except AuthError as exc:
                return self.apply(step, exc.diagnosis)
            self.tokens[api] = tok
            self.secrets.add(tok.access_token)
        tok = self.tokens[wanted_apis[0]]
        self.token = self.tokens.get(self.out_api, tok)
        mins = min(t.expires_in for t in self.tokens.values()) // 60
        who = (f"user {self.cfg.auth.username} (delegated)" if self.flow == "password"
               else f"app {self.cfg.microsoft.client_id} (app-only" + (", certificate)" if self.flow == "certificate" else ")"))
        if self.flow == "device_code":    # the saved sign-in of `mailwizard login` (wizard/device_code.py)
            who = f"user {tok.claims.get('upn') or self.cfg.auth.username or '?'} (delegated, saved device code sign-in)"
        step.details.update(expires_in=tok.expires_in, attempts=tok.attempts)
        if len(wanted_apis) > 1:
            step.details["apis"] = wanted_apis
        notes = list(dict.fromkeys(n for t in self.tokens.values() for n in t.notes))
        if notes:
            step.details["note"] = " ".join(notes)
        step.status = "pass"
        what = "token" if len(wanted_apis) == 1 else \
            "tokens for " + " and ".join(API_NAMES[a] for a in wanted_apis) + ","
        step.summary = f"Signed in as {who}; {what} valid for {mins} min." + (
            " Microsoft discourages this flow (no MFA)." if notes else "")

    def do_claims(self, step: Step) -> None:
        from .claims import check_claims, granted
        findings, passed = [], []
        for api, tok in self.tokens.items():
            claims = tok.claims
            if not claims:
                return self.apply(step, lookup("claims.decode", cfg=self.cfg))
            findings += check_claims(claims, self.cfg, self.flow, api=api)
            passed.append(f"Token for {claims.get('aud')} has the right permission ({granted(claims)}).")
            step.details["granted" if len(self.tokens) == 1 else f"granted_{api}"] = granted(claims)
        step.details["findings"] = [f.code for f in findings]
        for status in ("fail", "warn"):
            first = next((f for f in findings if f.status == status), None)
            if first:
                return self.apply(step, first.diagnosis, status)
        step.status, step.summary = "pass", " ".join(passed)

    def account_token(self, step: Step, acc) -> str | None:
        """The incoming protocol's token for an account: the config's own, or
        (user name/password flow) one of the account's own sign-in. None when
        that sign-in failed (the step then holds the diagnosis)."""
        api = self.in_api
        if self.flow == "password" and acc.username and acc.username.lower() != self.cfg.auth.username.lower():
            from .auth import AuthError, Retry, acquire_token
            try:
                tok = acquire_token(self.cfg, username=acc.username, password=acc.password or self.cfg.auth.password,
                                    retry=Retry(attempts=1, sleep=self.sleep), timeout=self.t.timeout,
                                    http_cache=self.http_cache, api=api)
            except AuthError as exc:
                self.apply(step, exc.diagnosis)
                return None
            self.secrets.add(tok.access_token)
            return tok.access_token
        tok = self.tokens.get(api)
        if tok is None:           # cannot happen: the token step got one per API
            self.apply(step, lookup("internal", cfg=self.cfg, service_message=f"no {api} token"))
            return None
        return tok.access_token

    def signin(self, username: str | None = None):
        """The runtime's SignIn for the config's flow (the user for delegated flows)."""
        from .runtime.tokens import SignIn
        if self.flow in ("client_secret", "certificate"):
            return SignIn(self.flow)
        return SignIn(self.flow, username or self.cfg.auth.username or "")

    # -- mailboxes ----------------------------------------------------------------
    def do_mailbox(self, step: Step) -> None:
        if step.id == "mailbox":
            protocol, sender = self.cfg.outgoing.protocol, self.cfg.outgoing.sender
            if protocol == "smtp":
                return self.smtp_mailbox(step, sender, self.token.access_token)
            return self.mailbox(step, sender, self.token.access_token, protocol, propagate=True)
        address = step.id.partition(":")[2]
        acc = next(a for a in self.cfg.incoming.accounts if a.address == address)
        token = self.account_token(step, acc)
        if token is None:
            return
        username = acc.username if self.flow == "password" and acc.username else None
        self.mailbox(step, address, token, self.cfg.incoming.protocol, propagate=False, username=username)
        if address == self.implied and step.status == "pass":
            step.status, step.screen = "warn", "mail"
            step.summary += (" The config names no incoming mailbox, so Efecte ESM and `mailwizard poll` "
                             "read none.")
            step.fix = (f"Add [[incoming.accounts]] with address = \"{address}\" (the service account's own "
                        "mailbox, as tested here) or the mailbox ESM reads, or save stage 4 of the wizard again.")

    def do_user(self, step: Step) -> None:
        from .usercheck import check_user
        check_user(self, step)

    def mailbox(self, step: Step, address: str, token: str, protocol: str, propagate: bool,
                username: str | None = None) -> None:
        if protocol == "graph":
            return self.graph_mailbox(step, address, token, username)
        if protocol == "imap":
            return self.imap_mailbox(step, address, token, username)
        if protocol != "ews":
            d = lookup("ews.protocol", cfg=self.cfg, service=protocol.upper())
            step.status, step.summary, step.fix = "skip", d.cause, d.fix
            return
        self.ews_mailbox(step, address, token, propagate)

    def ews_cfg(self, step: Step):
        """The config whose ``outgoing`` points at the EWS server of this step
        (incoming EWS may have its own server, or follow another outgoing protocol)."""
        if step.id == "mailbox" or step.id == "send":
            return self.cfg
        import copy
        _, _, host, port = next(e for e in netcheck.mail_endpoints(self.cfg) if e[0] == "in")
        if (host, port) == (self.cfg.outgoing.server.lower(), int(self.cfg.outgoing.port)) and self.ews:
            return self.cfg
        cfg = copy.deepcopy(self.cfg)
        cfg.outgoing.server, cfg.outgoing.port = host, port
        return cfg

    def ews_mailbox(self, step: Step, address: str, token: str, propagate: bool) -> None:
        from .ews_client import EwsError, check_mailbox
        cfg = self.ews_cfg(step)
        budget = self.t.propagation_wait if propagate else 0.0
        interval = self.t.propagation_interval
        attempts = 1 + (max(1, int(-(-budget // interval))) if budget > 0 and interval > 0 else 0)
        attempt = 1
        while True:
            try:
                info = check_mailbox(cfg, token, address, flow=self.flow, timeout=self.t.timeout,
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

    def runtime_call(self, step: Step, protocol: str, direction: str, token: str, work):
        """work(transport) with the runtime's client for ``protocol`` holding
        ``token``: (True, result), or (False, None) with a MailError turned into the step's diagnosis."""
        from .runtime.model import MailError
        transport = self.transport(protocol, direction, token, step)
        try:
            return True, work(transport)
        except MailError as exc:
            d = self.service_diagnosis(exc.diagnosis, protocol)
            self.apply(step, d)
            step.details["protocol"] = SERVICE[protocol]
            if step.id in ("mailbox", "send") and d.code in SENDER_CODES:
                step.details["field"] = "outgoing.sender"      # the wizard jumps to that field
            return False, None
        finally:
            transport.close()

    def transport(self, protocol: str, direction: str, token: str, step: Step):
        tokens = _FixedToken(token)
        endpoint = next((e for e in netcheck.mail_endpoints(self.cfg) if e[0] == direction), None)
        _, _, host, port = endpoint or ("", protocol, "", 0)
        if protocol == "graph":
            from .runtime.graph import GraphTransport
            return GraphTransport(self.cfg, tokens, sleep=self.busy_sleep(
                step, "Microsoft Graph is throttling requests (429)"), attempts=2, max_wait=self.t.busy_wait,
                timeout=self.t.timeout, pool=2)
        if protocol == "smtp":
            from .runtime.smtp import SmtpTransport
            return SmtpTransport(self.cfg, tokens, server=host, port=port, timeout=self.t.timeout[-1], attempts=2,
                                 sleep=self.busy_sleep(step, "The SMTP server asked to try again later (4xx)"))
        from .runtime.imap import ImapTransport
        return ImapTransport(self.cfg, tokens, server=host, port=port, timeout=self.t.timeout[-1])

    def service_diagnosis(self, d: Diagnosis, protocol: str) -> Diagnosis:
        """The step shows the service's own code (Graph's ErrorAccessDenied, not
        our catalogue key) and, for a user sign-in over SMTP, names the
        signed-in user's mailbox where that is the one that matters."""
        said = d.service_message or ""
        if protocol == "graph":
            if d.code == "claims.roles" and said.startswith("HTTP 401"):
                d = lookup("graph.401", cfg=self.cfg, service_message=said)
            if d.code.startswith("graph."):
                parts = said.split(" ", 2)        # "HTTP 403 ErrorAccessDenied: ..."
                own = parts[2].partition(":")[0] if len(parts) > 2 and parts[2] else ""
                d.code = own or d.code.partition(".")[2]
        elif protocol == "smtp" and d.code == "535 5.7.139" and self.flow not in ("client_secret", "certificate") \
                and self.cfg.auth.username:
            d = lookup(d.code, cfg=self.cfg, address=self.cfg.auth.username, service_message=said)
        return d

    def graph_mailbox(self, step: Step, address: str, token: str, username: str | None) -> None:
        direction = "out" if step.id == "mailbox" else "in"
        ok, counts = self.runtime_call(step, "graph", direction, token,
                                       lambda t: t.inbox(address, self.signin(username)))
        if ok:
            self.counted(step, address, counts, "Microsoft Graph")

    def imap_mailbox(self, step: Step, address: str, token: str, username: str | None) -> None:
        ok, counts = self.runtime_call(step, "imap", "in", token, lambda t: t.inbox(address, self.signin(username)))
        if ok:
            self.counted(step, address, counts, "IMAP")

    def counted(self, step: Step, address: str, counts: dict, service: str) -> None:
        step.details.update(total=counts.get("total"), unread=counts.get("unread"), protocol=service)
        step.status = "pass"
        step.summary = (f"Opened the inbox of {address} over {service}: {counts.get('total')} messages, "
                        f"{counts.get('unread')} unread.")

    def smtp_mailbox(self, step: Step, sender: str, token: str) -> None:
        who = self.signin()
        ok, _ = self.runtime_call(step, "smtp", "out", token, lambda t: t.check(sender, who))
        if not ok:
            return
        _, _, host, port = next(e for e in netcheck.mail_endpoints(self.cfg) if e[0] == "out")
        step.details.update(protocol="SMTP", server=f"{host}:{port}")
        step.status = "pass"
        as_user = who.username if not who.app_only and who.username else sender
        step.summary = f"Signed in to {host}:{port} (STARTTLS, AUTH XOAUTH2) as {as_user}."
        if as_user.lower() != sender.lower():
            step.summary += (f" Whether {as_user} may send as {sender} (Send As) shows only when a message is "
                             "sent: test with a recipient.")

    def busy_sleep(self, step: Step, what: str = "Exchange is busy (ErrorServerBusy)"):
        """The wait after EWS ErrorServerBusy (or Graph 429), as a countdown on the step."""
        return lambda seconds: self.countdown(step, seconds, lambda left: (
            f"{what}; trying again in {_secs(left)} s (attempt 2 of 2)."))

    def cancel_set(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def do_send(self, step: Step) -> None:
        protocol, sender = self.cfg.outgoing.protocol, self.cfg.outgoing.sender
        if protocol in ("graph", "smtp"):
            from .ews_client import TEST_SUBJECT
            body = _test_body(self.cfg, sender, SERVICE[protocol])
            ok, _ = self.runtime_call(step, protocol, "out", self.token.access_token, lambda t: t.send(
                self.signin(), sender, [self.send_to], [], TEST_SUBJECT, body, []))
            if ok:
                step.status = "pass"
                step.summary = f"Sent \"{TEST_SUBJECT}\" from {sender} to {self.send_to} over {SERVICE[protocol]}."
            return
        if protocol != "ews":
            d = lookup("ews.protocol", cfg=self.cfg, service=protocol.upper())
            step.status, step.summary, step.fix = "skip", d.cause, d.fix
            return
        from .ews_client import EwsError, send_test_message
        try:
            subject = send_test_message(self.cfg, self.token.access_token, sender, self.send_to, flow=self.flow,
                                        timeout=self.t.timeout, busy_wait=self.t.busy_wait,
                                        sleep=self.busy_sleep(step))
        except EwsError as exc:
            return self.apply(step, exc.diagnosis)
        step.status, step.summary = "pass", f"Sent \"{subject}\" from {sender} to {self.send_to}."


class _FixedToken:
    """The runtime clients ask a token provider for their token: here always the
    one the token step got (a 401 is reported, not retried with a new sign-in)."""

    def __init__(self, token: str):
        self._token = token

    def token(self, api: str, who=None) -> str:
        return self._token

    def forget(self, api=None, who=None) -> None:
        pass


def _test_body(cfg, sender: str, service: str) -> str:
    from datetime import datetime, timezone
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"This message was sent by mailwizard at {stamp} to test that {sender} can send mail through "
            f"{service} with app {cfg.microsoft.client_id}. You can delete it.")


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

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
  account's own (``wizard.config.mailboxes``); that step then warns.
- user:<name>: each [[users]] override signs in as `send --from NAME` does and
  opens its sender mailbox (``wizard.check.users``).
"""

from __future__ import annotations

import time

from wizard.net import probes as netcheck
from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.check import model
from wizard.check.model import (CHAIN, SMTP_MAILBOX_TITLE, TITLES, Report, Step, Tuning, resolved,
                                screen_of, scrub_step)
from wizard.check.net_steps import NetworkSteps
from wizard.check.token_steps import TokenSteps
from wizard.check.mailbox_steps import MailboxSteps

def plan(cfg, send_to=None) -> list[Step]:
    from wizard.config.mailboxes import with_default_incoming
    from wizard.check.users import title, user_steps
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


class _Run(NetworkSteps, TokenSteps, MailboxSteps):
    def __init__(self, cfg, send_to, on_step, cancel, tuning):
        from wizard.config.schema import secrets_of
        from wizard.config.mailboxes import default_incoming, with_default_incoming
        self.implied = default_incoming(cfg)     # an ESM config naming no incoming mailbox: this one is read
        cfg = with_default_incoming(cfg)
        self.cfg, self.send_to, self.on_step, self.cancel, self.t = cfg, send_to, on_step, cancel, tuning
        self.steps = plan(cfg, send_to)
        self.secrets = set(secrets_of(cfg))
        self.token = None           # the outgoing protocol's token (TokenResult)
        self.tokens: dict = {}      # api ("exchange" | "graph") -> TokenResult of the config's sign-in
        self.failed_chain = False
        self.cancelled = False
        from wizard.identity.signin import DiscoveryCache
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
        scrub_step(step, self.secrets)
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
        from wizard.config.schema import validate
        from wizard.config.fields import check_email, normalise_guid
        cfg = self.cfg
        if cfg.auth.flow == "client_secret" and normalise_guid(resolved(cfg.auth.client_secret) or "x"):
            return self.apply(step, lookup("secret.id_pasted", cfg=cfg))
        from wizard.config import environment
        problems = validate(cfg) + environment.problems(cfg)      # e.g. REQUESTS_CA_BUNDLE naming no file
        if cfg.outgoing.server.lower() in model.EXO_HOSTS:   # EWS retirement applies to Exchange Online only
            from wizard.guide.retirement import ews_problem
            problems += [p for p in [ews_problem(cfg)] if p]
        if self.send_to and not check_email(self.send_to).ok:
            from wizard.config.schema import Problem
            problems.append(Problem("send_to", check_email(self.send_to, "Test recipient").error))
        errors = [p for p in problems if not p.warning]
        if errors:
            p = errors[0]
            d = lookup("config.invalid", cfg=cfg)
            d.screen = screen_of(p.field)
            d.fix = environment.fix(p.field) if p.field in environment.CA_BUNDLE_VARIABLES else f"{p.message} ({d.fix})"
            step.details["field"] = p.field
            step.details["problems"] = [f"[{e.field}] {e.message}" for e in errors]
            return self.apply(step, d, summary=f"{p.field}: {p.message}")
        warnings = [p for p in problems if p.warning]
        expiring = [p for p in warnings if p.field == "auth.secret_expires"]
        if expiring:
            return self.apply(step, lookup("secret.expiring", cfg=cfg), "warn", expiring[0].message)
        if warnings:
            step.status, step.summary = "warn", f"{warnings[0].field}: {warnings[0].message}"
            from wizard.diagnosis.classify import warning_fix
            step.screen = screen_of(warnings[0].field)
            step.details["field"] = warnings[0].field
            step.fix = warning_fix(warnings[0].field, step.screen)
            return
        step.status, step.summary = "pass", "All settings are filled in and look right."

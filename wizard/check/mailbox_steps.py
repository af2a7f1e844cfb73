"""The mailbox, send, mailbox:<address> and user:<name> steps: each mailbox
opened, and the test message sent, with the runtime's own clients."""

from __future__ import annotations

from wizard.config.endpoints import mail_endpoints
from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.check import model
from wizard.check.model import SENDER_CODES, SERVICE, Step, secs


class MailboxSteps:
    """mailbox, send, incoming accounts and user overrides: mixed into the engine's run."""

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
        from wizard.check.users import check_user
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
        _, _, host, port = next(e for e in mail_endpoints(self.cfg) if e[0] == "in")
        if (host, port) == (self.cfg.outgoing.server.lower(), int(self.cfg.outgoing.port)) and self.ews:
            return self.cfg
        cfg = copy.deepcopy(self.cfg)
        cfg.outgoing.server, cfg.outgoing.port = host, port
        return cfg

    def ews_mailbox(self, step: Step, address: str, token: str, propagate: bool) -> None:
        from wizard.runtime.ews_client import EwsError, check_mailbox
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
                        d.cause += f" Tried {attempt} times over {secs(step.details.get('waited_s', 0))} s."
                    return self.apply(step, d)
                wait = min(interval, budget)
                budget -= wait
                attempt += 1
                step.details["waited_s"] = step.details.get("waited_s", 0) + wait
                step.details["attempts"] = attempt
                self.countdown(step, wait, lambda left, n=attempt: (
                    f"EWS answered 403: new app permissions can take minutes to arrive; retrying in "
                    f"{secs(left)} s (attempt {n} of {attempts})."))
        step.details.update(total=info.total, unread=info.unread)
        step.status = "pass"
        step.summary = f"Opened the inbox of {address}: {info.total} messages, {info.unread} unread."
        if propagate and self.cfg.outgoing.server.lower() in model.EXO_HOSTS:
            d = lookup("ews.retirement", cfg=self.cfg)
            self.apply(step, d, "warn", step.summary + " Note: " + d.cause)

    def runtime_call(self, step: Step, protocol: str, direction: str, token: str, work):
        """work(transport) with the runtime's client for ``protocol`` holding
        ``token``: (True, result), or (False, None) with a MailError turned into the step's diagnosis."""
        from wizard.runtime.model import MailError
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
        endpoint = next((e for e in mail_endpoints(self.cfg) if e[0] == direction), None)
        _, _, host, port = endpoint or ("", protocol, "", 0)
        if protocol == "graph":
            from wizard.runtime.graph import GraphTransport
            return GraphTransport(self.cfg, tokens, sleep=self.busy_sleep(
                step, "Microsoft Graph is throttling requests (429)"), attempts=2, max_wait=self.t.busy_wait,
                timeout=self.t.timeout, pool=2)
        if protocol == "smtp":
            from wizard.runtime.smtp import SmtpTransport
            return SmtpTransport(self.cfg, tokens, server=host, port=port, timeout=self.t.timeout[-1], attempts=2,
                                 sleep=self.busy_sleep(step, "The SMTP server asked to try again later (4xx)"))
        from wizard.runtime.imap import ImapTransport
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
        _, _, host, port = next(e for e in mail_endpoints(self.cfg) if e[0] == "out")
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
            f"{what}; trying again in {secs(left)} s (attempt 2 of 2)."))

    def cancel_set(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def do_send(self, step: Step) -> None:
        protocol, sender = self.cfg.outgoing.protocol, self.cfg.outgoing.sender
        if protocol in ("graph", "smtp"):
            from wizard.runtime.ews_client import TEST_SUBJECT
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
        from wizard.runtime.ews_client import EwsError, send_test_message
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

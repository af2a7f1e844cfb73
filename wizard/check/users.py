"""The connection test's step for each ``[[users]]`` override (``user:NAME``).

A per-user setting (Monitor G5 22.6, guide 003: the WEBSHOP user) signs in
with its own flow, user name and password and sends from its own sender. The
step does what ``mailwizard send --from NAME`` does, without sending: the
runtime's sign-in for that user (``Mailer.sender_of`` / ``Mailer.sign_in``),
then opens the user's sender mailbox over the outgoing protocol with that
token (EWS GetFolder, Graph ``GET .../mailFolders/inbox``, SMTP STARTTLS +
``AUTH XOAUTH2``). A failure names the user, never the config's own account.
"""

from __future__ import annotations


def user_steps(cfg) -> list[str]:
    """The step ids, one per named [[users]] entry, in file order."""
    seen, out = set(), []
    for u in cfg.users:
        if u.name and u.name.lower() not in seen:
            seen.add(u.name.lower())
            out.append(f"user:{u.name}")
    return out


def title(step_id: str) -> str:
    return f"Sign in as user {step_id.partition(':')[2]}"


def check_user(run, step) -> None:
    """Run the ``user:NAME`` step for ``run`` (a ``conntest._Run``)."""
    from wizard.runtime.mailer import Mailer
    from wizard.runtime.model import MailError
    from wizard.runtime.pacing import Pacer
    from wizard.runtime.tokens import TokenProvider

    cfg = run.cfg
    name = step.id.partition(":")[2]
    n, user = next((i, u) for i, u in enumerate(cfg.users) if u.name == name)
    tokens = TokenProvider(cfg, persist=False, timeout=run.t.timeout, sleep=run.sleep, attempts=1)
    mailer = Mailer(cfg, tokens=tokens, pacer=Pacer(), sleep=run.sleep)
    try:
        try:
            who, address = mailer.sender_of(user.name)
        except MailError as exc:          # e.g. an app-only user under a user name/password config
            run.apply(step, exc.diagnosis)
            step.summary = exc.diagnosis.service_message or exc.diagnosis.cause
            step.details["field"], step.screen = f"users[{n}].flow", "mail"
            return
        for secret in (who.password, resolved(who.password)):
            if len(secret or "") >= 4:          # as config.secrets_of: shorter ones would mask plain words
                run.secrets.add(secret)
        try:
            token = mailer.sign_in(who)
        except MailError as exc:
            d = exc.diagnosis
            if d.code == "config.invalid" and not who.app_only:     # e.g. its password's env:/file: reference
                d.fix = f"Correct users[{n}].password (the {name} user's password, stage 4, F7)."
            run.apply(step, d, summary=f"{name}: {d.cause}")
            if not who.app_only:
                step.details["field"], step.screen = f"users[{n}].username", "mail"
            return
        run.secrets.add(token)
        step.details.update(user=name, sender=address, signed_in=who.username or "the app")
        _open_sender(run, step, cfg, who, address, token)
    finally:
        mailer.close()


def _open_sender(run, step, cfg, who, address: str, token: str) -> None:
    protocol = cfg.outgoing.protocol
    as_whom = f"as {who.username}" if who.username and not who.app_only else "with the app's credential"
    if protocol == "ews":
        from wizard.runtime.ews_client import EwsError, check_mailbox
        try:
            info = check_mailbox(cfg, token, address, flow=who.flow, timeout=run.t.timeout,
                                 busy_wait=run.t.busy_wait, sleep=run.busy_sleep(step))
        except EwsError as exc:
            return run.apply(step, exc.diagnosis, summary=f"{step.id.partition(':')[2]}: {exc.diagnosis.cause}")
        step.status = "pass"
        step.summary = (f"Signed in {as_whom}; opened the sender mailbox {address}: "
                        f"{info.total} messages, {info.unread} unread.")
        return
    if protocol == "smtp":
        ok, _ = run.runtime_call(step, "smtp", "out", token, lambda t: t.check(address, who))
        if not ok and step.code == "535 5.7.139" and who.username and not who.app_only:
            from wizard.diagnosis.catalogue import lookup  # the user's own mailbox, not [auth] username's
            run.apply(step, lookup(step.code, cfg=cfg, address=who.username,
                                   service_message=step.details.get("service_message")))
        if ok:
            step.status = "pass"
            step.summary = f"Signed in {as_whom} to the SMTP server to send from {address} (STARTTLS, AUTH XOAUTH2)."
        return
    ok, counts = run.runtime_call(step, "graph", "out", token, lambda t: t.inbox(address, who))
    if ok:
        step.status = "pass"
        step.summary = (f"Signed in {as_whom}; opened the sender mailbox {address} over Microsoft Graph: "
                        f"{counts.get('total')} messages, {counts.get('unread')} unread.")


def resolved(value: str) -> str:
    from wizard.config.schema import ConfigError, resolve_secret
    try:
        return resolve_secret(value or "", "users.password")
    except ConfigError:
        return ""

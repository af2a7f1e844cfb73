"""`mailwizard relay` in the foreground: the SMTP side (``server``), the spool and the delivery workers
(and the IMAP pass-through and POP3 when set).

One log line per message to stderr. SIGTERM / SIGINT: stop accepting, let the deliveries in flight
finish (the rest stays in the spool for the next start). SIGHUP: read the config again (clients,
senders, max_age; listen, spool, TLS and the size limit take effect at the next start).
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from wizard.relay.spool import Spool


class LogLine:
    def __init__(self, stream=None):
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._lock:
            print(f"{stamp} relay: {text}", file=self.stream or sys.stderr, flush=True)


def check_ready(cfg, today=None) -> str | None:
    """Why this config cannot run the relay, or None."""
    from wizard.relay.status import GRAPH_INSTEAD, ews_shut_down
    if cfg.relay is None or not cfg.relay.clients:
        return ("no [[relay.clients]] in the config: add one with "
                "`mailwizard relay add-client NAME --from ADDRESS` (it prints the password once)")
    if cfg.outgoing.protocol not in ("graph", "smtp", "ews"):
        return (f"[outgoing] protocol = \"{cfg.outgoing.protocol}\": the relay delivers over \"graph\" (exactly once), "
                "\"ews\" (exactly once, while Exchange keeps EWS) or \"smtp\" (at least once); set one of them")
    if ews_shut_down(cfg, today):
        from wizard.guide.steps import ews_warning
        return f"[outgoing] protocol = \"ews\": {ews_warning(today)} {GRAPH_INSTEAD}"
    from wizard.config import environment
    for problem in environment.problems(cfg):     # e.g. REQUESTS_CA_BUNDLE naming no file: every delivery would fail
        return f"${problem.field}: {problem.message}. {environment.fix(problem.field)}"
    return None


def run(cfg, load_again, *, log=None, **options) -> int:
    """Serve until stopped. ``load_again()`` returns a new config (or raises ConfigError) on SIGHUP.
    ``ready(port)`` is called once listening. Returns an exit code. One relay per spool: a second
    one on the same spool does not start (and touches nothing in it)."""
    import os
    from wizard.relay.spool import SpoolBusy
    log = log or LogLine()
    path = cfg.relay.spool_path()
    try:
        held = Spool(path).claim()
    except SpoolBusy as exc:
        log(f"cannot start: {exc.strerror} ({path}). Stop that relay first (systemctl stop), or give this "
            "config a [relay] spool of its own.")
        return 1
    except OSError as exc:
        log(f"cannot open the spool {path}: {exc.strerror or exc}")
        return 1
    try:
        return _serve(cfg, load_again, log=log, **options)
    finally:
        os.close(held)


def _serve(cfg, load_again, *, log, stop_event: threading.Event | None = None, ready=None,
           install_signals: bool = True, delivery_options: dict | None = None, on_imap=None,
           on_pop3=None) -> int:
    from wizard.relay.delivery import Delivery, stop_aware_sleep
    from wizard.relay.server import Handler, make_controller
    from wizard.runtime import Mailer
    stop = stop_event or threading.Event()
    asked = {"stop": False, "reload": False}    # by a signal: its handler sets only this (an Event's set()
    #   there can wait forever for the lock the interrupted main thread holds in stop.wait below)
    if install_signals:     # before anything listens: a SIGHUP right after the port opens must not kill it
        signal.signal(signal.SIGTERM, lambda *_: asked.update(stop=True))
        signal.signal(signal.SIGINT, lambda *_: asked.update(stop=True))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: asked.update(reload=True))
    relay = cfg.relay
    try:
        spool = Spool(relay.spool_path()).open()
    except OSError as exc:
        log(f"cannot open the spool {relay.spool_path()}: {exc.strerror or exc}")
        return 1
    stopping = threading.Event()        # set once the loop below ends: waits Exchange asked for end then

    def make_mailer(config):
        return Mailer(config, sleep=stop_aware_sleep(stopping))
    mailer = make_mailer(cfg)
    delivery = Delivery(cfg, spool, mailer, log_line=log, **_settle_option(log), **(delivery_options or {}))
    delivery.owed_dsns()
    handler = Handler(relay, spool, on_accept=delivery.wake, log_line=log, refusal=delivery.refusal)
    controller = make_controller(relay, handler)
    try:
        controller.start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        log(f"cannot listen on {relay.listen}: {getattr(exc, 'strerror', None) or exc}")
        mailer.close()
        return 1
    imap = _start_reader("imap", cfg, delivery.current, log, lambda: handler.relay)
    pop3 = _start_reader("pop3", cfg, delivery.current, log, lambda: handler.relay)
    host = relay.host_port()[0]
    tls = "no TLS (loopback only), AUTH PLAIN/LOGIN in plain text" if not relay.certificate else \
        ("implicit TLS" if relay.tls == "implicit" else "STARTTLS required before AUTH")
    how = {"graph": "exactly once over Graph", "ews": "exactly once over EWS"}.get(cfg.outgoing.protocol,
                                                                                   "at least once over SMTP")
    queued = len(spool.ids())
    log(f"listening on {host}:{controller.port} ({tls}); {len(relay.clients)} client(s); spool {spool.root} "
        f"({queued} queued); delivering {how} as {cfg.outgoing.sender or 'the senders'}; "
        f"max size {relay.max_size_mb} MB, max_age {relay.max_age}")
    _log_upstream_limits(cfg, log)
    delivery.start()
    if ready:
        ready(controller.port)
    if on_imap and imap is not None:
        on_imap(imap.port)
    if on_pop3 and pop3 is not None:
        on_pop3(pop3.port)
    try:
        while not stop.wait(0.5) and not asked["stop"]:
            if asked["reload"]:
                asked["reload"] = False      # a SIGHUP from here on is read again next round
                _reload(load_again, handler, delivery, log, make_mailer)
    finally:
        stopping.set()
        controller.stop()
        if imap is not None:
            imap.stop()
        if pop3 is not None:
            pop3.stop()
        log("stopped accepting; finishing the deliveries in flight")
        delivery.stop()
        delivery.current()[1].close()
        log(f"stopped; {len(spool.ids())} message(s) wait in the spool for the next start")
    return 0


_READERS = {   # kind: (its [relay] key, its name in the log, why it is off on another [incoming] protocol)
    "imap": ("imap_listen", "IMAP pass-through", "it needs"),
    "pop3": ("pop3_listen", "POP3", "it reads the mailbox over IMAP and needs"),
}


def _start_reader(kind: str, cfg, current, log, relay_of):
    """The IMAP pass-through or the POP3 side (each client's INBOX read over the upstream IMAP), when
    its [relay] key is set and [incoming] protocol is imap. ``current()``: the (config, Mailer) in force
    (a SIGHUP may bring new ones: the next login uses them, while [incoming] stays IMAP)."""
    key, name, needs = _READERS[kind]
    relay = cfg.relay
    listen = getattr(relay, key)
    if not listen:
        return None
    if cfg.incoming.protocol != "imap":
        log(f"{name} off: {needs} [incoming] protocol = \"imap\" (now \"{cfg.incoming.protocol}\")")
        return None
    from wizard.config.relay import split_listen
    from wizard.relay.server import tls_context
    if kind == "imap":
        from wizard.relay.imap import ImapPassThrough as Server
    else:
        from wizard.relay.pop3 import Pop3Server as Server
    first = current()
    made = {"for": first[1], "transport": _imap_upstream(*first)}
    upstream = made["transport"]

    def open_upstream(mailbox: str):
        now_cfg, mailer = current()
        if now_cfg.incoming.protocol != "imap":           # reloaded away from IMAP: the start's, until a restart
            now_cfg, mailer = first
        if made["for"] is not mailer:
            made.update({"for": mailer, "transport": _imap_upstream(now_cfg, mailer)})
        who, address = mailer.reader_of(mailbox)
        return made["transport"].open_session(address, who)
    server = Server(relay_of, open_upstream, log_line=log, tls_context=tls_context(relay))
    host, port = split_listen(listen)
    try:
        server.start(host, port)
    except OSError as exc:
        log(f"{name} off: cannot listen on {listen}: {exc.strerror or exc}")
        return None
    what = f"to {upstream.server}:{upstream.port}" if kind == "imap" else \
        f"each client's INBOX over IMAP from {upstream.server}:{upstream.port}"
    log(f"{name} on {host}:{server.port} {what} ({'implicit TLS' if relay.certificate else 'no TLS, loopback only'})")
    return server


def _imap_upstream(cfg, mailer):
    """The config's IMAP server, signed in to with the Mailer's tokens."""
    from wizard.runtime.imap import ImapTransport
    return ImapTransport(cfg, mailer.tokens, server=cfg.incoming.server, port=cfg.incoming.port)


def _upstream_of(cfg) -> dict:
    """What the sign-in, the servers and the delivery come from: every section but [relay]."""
    from wizard.config.schema import to_dict
    return {k: v for k, v in to_dict(cfg).items() if k != "relay"}


def _reload(load_again, handler, delivery, log, make_mailer) -> None:
    try:
        new = load_again()
    except Exception as exc:       # a broken file keeps the running settings
        said = exc.render() if hasattr(exc, "render") else str(exc)
        log(f"reload failed, keeping the running settings: {said}")
        return
    problem = check_ready(new)
    if problem:
        log(f"reload failed, keeping the running settings: {problem}")
        return
    old = handler.relay
    fixed = ("listen", "imap_listen", "pop3_listen", "spool", "certificate", "key", "tls", "max_size_mb")
    changed = [k for k in fixed if getattr(old, k) != getattr(new.relay, k)]
    note = f"; {', '.join(changed)} take effect at the next start" if changed else ""
    running = delivery.cfg
    was, now = _upstream_of(running), _upstream_of(new)
    sections = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    if sections:                      # a rotated secret, another protocol or server: from now on
        delivery.use(new, make_mailer(new))
        how = {"graph": "exactly once over Graph", "ews": "exactly once over EWS"}.get(new.outgoing.protocol,
                                                                                      "at least once over SMTP")
        note += (f"; [{'], ['.join(sections)}] changed: new deliveries and logins use them (delivering {how}; "
                 "those in flight finish as they began)")
    else:
        running.relay = new.relay
    handler.relay = new.relay
    log(f"reloaded the config: {len(new.relay.clients)} client(s){note}")


def _log_upstream_limits(cfg, log) -> None:
    """EWS: the retirement in Exchange Online, and a size limit above what one EWS request carries."""
    from wizard.relay.status import upstream_warning
    warning = upstream_warning(cfg)
    if warning:
        log(f"warning: {warning}")
    from wizard.runtime.ews import MAX_REQUEST
    fits = MAX_REQUEST * 3 // 4 // (1024 * 1024)            # the MIME goes base64-encoded into the request
    if cfg.outgoing.protocol == "ews" and cfg.relay.max_size_mb > fits:
        log(f"note: max_size_mb = {cfg.relay.max_size_mb}, but one EWS request carries about "
            f"{MAX_REQUEST // (1024 * 1024)} MB with the message base64-encoded in it: mail over about {fits} MB is "
            "refused at DATA time with 552 (Graph takes up to 150 MB)")


def _settle_option(log) -> dict:
    """MAILWIZARD_RELAY_SETTLE=SECONDS: how long a draft whose send was cut off by a crash is given
    to leave Drafts before it is sent again (default 120 s: Exchange may show a sent draft a while)."""
    import os
    text = os.environ.get("MAILWIZARD_RELAY_SETTLE", "").strip()
    if not text:
        return {}
    try:
        seconds = float(text)
        if not 0 <= seconds <= 86400:
            raise ValueError
    except ValueError:
        log(f"MAILWIZARD_RELAY_SETTLE={text!r} is not a number of seconds from 0 to 86400: using 120")
        return {}
    return {"settle": seconds}

"""The sandbox HTTPS server: identity platform + EWS on 127.0.0.1, with
request recording and fault injection."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from requests.structures import CaseInsensitiveDict

from wizard.sandbox import ca, sample
from wizard.sandbox.ews import Ews
from wizard.sandbox.graph import Graph
from wizard.sandbox.identity import Identity, Response, json_response
from wizard.sandbox.tenant import Tenant

HANG_LIMIT = 300.0          # a hanging request gives up after this, or when the server stops


@dataclass
class RecordedRequest:
    method: str
    path: str               # with the query string
    headers: CaseInsensitiveDict
    body: bytes
    status: int | None      # None: the request hung (no answer)


@dataclass
class Fault:
    """Answer requests whose path starts with ``path_prefix`` differently, ``times`` times
    (None: every time)."""
    path_prefix: str
    status: int | None = None
    times: int | None = 1
    body: bytes | str | None = None
    headers: dict | None = None
    html: bool = False              # an HTML sign-in page instead of JSON/XML
    hang: bool = False              # never answer (until the server stops)
    ews_error: str | None = None    # e.g. "ErrorServerBusy": an EWS SOAP error
    retry_after: int | None = None  # Retry-After header (s); BackOffMilliseconds for ErrorServerBusy


LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
              b"<form method=\"post\" action=\"/login\"><input type=\"email\" name=\"loginfmt\">"
              b"<input type=\"submit\" value=\"Next\"></form></body></html>")


class Sandbox:
    """A fake Microsoft identity platform + EWS for one ``Tenant``."""

    def __init__(self, tenant: Tenant | None = None, latency: float = 0.0):
        self._tenant = tenant or sample.sample_tenant()
        self.identity: Identity | None = None
        self._initial_tenant = copy.deepcopy(self._tenant)
        self.latency = latency
        self.host = "127.0.0.1"
        self.port = 0
        self.material = ca.material()
        self.requests: list[RecordedRequest] = _LockedList()
        self.cleared = 0            # clear() counts up: a request from before it is not recorded after it
        self.started_at = time.monotonic()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.clock = time.monotonic     # SMTP submission limits read this; tests may replace it
        self._mail_servers: dict = {}   # "smtp"/"imap" -> LineServer, started on first use of the port
        self._workdir: str | None = None        # temporary folder for the certificate flow's key file
        self._cert: tuple[str, str] | None = None
        from wizard.sandbox.smtp import Limits
        self.smtp_limits = Limits(lambda: self.clock())

    @property
    def tenant(self) -> Tenant:
        return self._tenant

    @tenant.setter
    def tenant(self, value: Tenant) -> None:
        self._tenant = value
        if self.identity is not None:
            self.identity.tenant = value

    # -- lifecycle ------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_path(self) -> str:
        return self.material.ca_path

    def start(self) -> "Sandbox":
        if self._server is not None:
            return self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.material.cert_path, self.material.key_path)
        self._stopping.clear()
        self._server = _Server((self.host, 0), _Handler, self, ctx)
        self.port = self._server.server_address[1]
        self.identity = Identity(self.tenant, self.base_url, self.material)
        self.ews = Ews(self)
        self.graph = Graph(self)
        from wizard.sandbox.graph_apps import Directory
        self.directory = Directory(self)    # app registrations, service principals, grants (graph_apps.py)
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            workdir, self._workdir, self._cert = self._workdir, None, None
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            mail, self._mail_servers = list(self._mail_servers.values()), {}
        for srv in mail:
            srv.stop()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread:
            self._thread.join(timeout=2)

    def _mail_server(self, kind: str):
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        with self._lock:
            srv = self._mail_servers.get(kind)
            if srv is None:
                from wizard.sandbox import imap, smtp
                srv = self._mail_servers[kind] = (smtp if kind == "smtp" else imap).start(self)
            return srv

    @property
    def smtp_port(self) -> int:
        """SMTP submission with STARTTLS + AUTH XOAUTH2 (like smtp.office365.com:587); starts on first use."""
        return self._mail_server("smtp").port

    @property
    def imap_port(self) -> int:
        """IMAP4rev1 over implicit TLS + AUTHENTICATE XOAUTH2 (like outlook.office365.com:993)."""
        return self._mail_server("imap").port

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test helpers -----------------------------------------------------------
    def clear(self) -> None:
        self.cleared += 1
        self.requests.clear()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def replication_delay(self, calls: int, tokens: int = 0) -> None:
        """Entra's eventual consistency as a fault: the next ``calls`` Graph requests that depend on
        a just-created app or service principal answer Request_ResourceNotFound (creating the
        service principal: NoBackingApplicationObject), and the next ``tokens`` token requests of
        a newly registered app AADSTS700016 (sandbox/graph_apps.py)."""
        self.tenant.replication_lag, self.tenant.token_lag = calls, tokens

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def device(self):
        """Device code sign-ins and refresh tokens (``approve``/``decline``/``expire``...): sandbox/device.py."""
        if self.identity is None:
            raise RuntimeError("the sandbox is not started")
        return self.identity.device

    def reset(self) -> None:
        """Clear requests and faults and restore the tenant as it was given."""
        self.clear()
        if self.identity is not None:
            self.identity.device.clear()
        self.reset_faults()
        self.smtp_limits.clear()
        self.tenant = copy.deepcopy(self._initial_tenant)
        if self._server is not None:
            from wizard.sandbox.graph_apps import Directory
            self.directory = Directory(self)

    def config(self, flow: str = "client_secret", *, protocol: str | None = None, **overrides):
        """A wizard Config filled with the sample tenant's values, pointing at this sandbox.

        ``flow``: "client_secret" (default), "password", "certificate" (a key file the
        sandbox makes in its own temporary folder, removed at ``stop()``, its certificate
        uploaded to the sample app) or "device_code" (the sample public client; sign in
        with ``wizard.identity.device_code.login`` and approve with ``sb.device.approve()``).
        ``protocol``: "ews" (default), "graph" (outgoing and incoming), "smtp" (outgoing), "imap"
        (incoming) or "smtp+imap"; server and port then point at the matching sandbox server."""
        if flow == "certificate":
            from wizard.sandbox.assertion import certificate_config
            key_path, thumbprint = self._certificate()
            app = self.tenant.app(sample.SECRET_APP_ID)
            uploaded = app is not None and any(c.thumbprint == thumbprint for c in app.certificates)
            cfg = certificate_config(self, key_path, upload_certificate=not uploaded)
        elif flow == "device_code":
            from wizard.sandbox.device import device_code_config
            cfg = device_code_config(self)
        else:
            cfg = self._config(flow)
        if protocol:
            self._set_protocol(cfg, protocol)
        for key, value in overrides.items():
            for section in (cfg.microsoft, cfg.auth, cfg.outgoing, cfg.incoming, cfg.endpoints):
                if key in vars(section):
                    setattr(section, key, value)
                    break
            else:
                if key in ("system", "version"):
                    setattr(cfg, key, value)
                else:
                    raise TypeError(f"config() got an unknown override {key!r}")
        return cfg

    def _certificate(self) -> tuple[str, str]:
        """(key file, SHA-1 thumbprint) of the sandbox's own app certificate, made on first use."""
        with self._lock:
            if self._cert is None:
                from wizard.identity.certificates import create_certificate
                self._workdir = tempfile.mkdtemp(prefix="mailwizard-sandbox-cert-")
                from wizard.sandbox.cleanup import remove_at_end
                remove_at_end(self._workdir)    # stop() removes it; this when the process ends first
                key = os.path.join(self._workdir, "sandbox-app.pem")
                info = create_certificate("mailwizard sandbox", days=365, key_path=key,
                                          cert_path=os.path.join(self._workdir, "sandbox-app.cer"))
                self._cert = (key, info.thumbprint)
            return self._cert

    def _config(self, flow: str):
        from wizard.config.schema import Config, Endpoints, IncomingAccount

        cfg = Config()
        cfg.microsoft.tenant_id = sample.TENANT_ID
        cfg.auth.flow = flow
        if flow == "password":
            cfg.microsoft.client_id = sample.PASSWORD_APP_ID
            cfg.auth.username = sample.SERVICE_USER
            cfg.auth.password = sample.SERVICE_PASSWORD
        else:
            cfg.microsoft.client_id = sample.SECRET_APP_ID
            cfg.auth.client_secret = sample.SECRET_VALUE
            app = self.tenant.app(sample.SECRET_APP_ID)
            cfg.auth.secret_expires = next(
                (s.expires for s in (app.secrets if app else []) if s.value == sample.SECRET_VALUE), None)
        cfg.outgoing.protocol = "ews"
        cfg.outgoing.server = self.host
        cfg.outgoing.port = self.port
        cfg.outgoing.sender = sample.SENDER
        cfg.outgoing.test_recipient = sample.RECIPIENT
        cfg.incoming.protocol = "ews"
        cfg.incoming.accounts = [IncomingAccount(address=a) for a in sample.INCOMING]
        if flow == "password":
            for acc in cfg.incoming.accounts:
                acc.username, acc.password = sample.SERVICE_USER, sample.SERVICE_PASSWORD
        cfg.endpoints = Endpoints(authority=self.base_url, ca_bundle=self.ca_path)
        return cfg

    def _set_protocol(self, cfg, protocol: str) -> None:
        names = protocol.lower().split("+")
        if not set(names) <= {"ews", "graph", "smtp", "imap"}:
            raise ValueError(f"config() got an unknown protocol {protocol!r}")
        for name in names:
            if name in ("ews", "graph"):
                cfg.outgoing.protocol = cfg.incoming.protocol = name
                cfg.incoming.server, cfg.incoming.port = self.host, self.port
                if name == "graph":
                    cfg.endpoints.graph_url = self.base_url
            elif name == "smtp":
                cfg.outgoing.protocol, cfg.outgoing.port = "smtp", self.smtp_port
            else:
                cfg.incoming.protocol = "imap"
                cfg.incoming.server, cfg.incoming.port = self.host, self.imap_port

    # -- request handling ----------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                # decoded: a prefix with "@" also fires for a client that sends "%40"
                if unquote(path).startswith(unquote(f.path_prefix)) and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    def dispatch(self, method: str, target: str, headers, body: bytes) -> Response | None:
        """The response to one request; None means: hang up without answering."""
        path, _, query = target.partition("?")
        fault = self._take_fault(path)
        if fault is not None:
            if fault.hang:
                self._stopping.wait(HANG_LIMIT)
                return None
            return self._fault_response(fault, path, body)
        if path.lower().startswith("/ews/"):
            return self.ews.handle(method, path, headers, body)
        if path.startswith("/v1.0/") and self._directory_path(path):
            return self.directory.serve(method, path, query, headers, body)
        if path.startswith("/v1.0/") or path.startswith("/api/v2.0/"):    # /api/v2.0/: upload session URLs
            return self.graph.handle(method, path, query, headers, body)
        return self.identity.handle(method, path, query, headers, body)

    @staticmethod
    def _directory_path(path: str) -> bool:
        from wizard.sandbox.graph_apps import ROOTS
        head = unquote(path[len("/v1.0/"):]).split("/", 1)[0].split("(", 1)[0].lower()
        return head in ROOTS

    def _fault_response(self, fault: Fault, path: str, body: bytes) -> Response:
        headers = {}
        if fault.retry_after is not None and not fault.ews_error:   # EWS says BackOffMilliseconds instead
            headers["Retry-After"] = str(fault.retry_after)
        if fault.ews_error:
            resp = self.ews.error_response(body, fault.ews_error, fault.retry_after, fault.status)
        elif fault.html:
            resp = Response(fault.status or 200, LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        elif fault.body is not None:
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            ctype = "application/json; charset=utf-8" if raw[:1] in (b"{", b"[") else "text/plain"
            resp = Response(fault.status or 200, raw, {"Content-Type": ctype})
        elif path.lower().startswith("/ews/"):
            resp = Response(fault.status or 500, b"", {})
        elif path.startswith(("/v1.0/", "/api/v2.0/")):
            resp = self.graph.fault_response(fault.status or 500)
        else:
            status = fault.status or 500
            err = ("temporarily_unavailable", 50196, "The server terminated an operation because it "
                   "encountered a client request loop.") if status == 429 else \
                  ("temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
            resp = self.identity.error(status, *err)
            if status < 400:
                resp = json_response(status, {})
        resp.headers.update(headers)
        resp.headers.update(fault.headers or {})
        return resp


class _LockedList(list):
    """A list whose append/clear/snapshot are safe across the handler threads."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def append(self, item) -> None:
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list:
        with self._lock:
            return list(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 64

    def __init__(self, address, handler, sandbox: Sandbox, ctx: ssl.SSLContext):
        self.sandbox = sandbox
        self.ssl_context = ctx
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, sock, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        pass                       # clients that reject the certificate or hang up are normal here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def version_string(self) -> str:
        return "Microsoft-IIS/10.0"

    def setup(self) -> None:
        self.server.track(self.request, True)
        self.request.settimeout(self.timeout)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # no Nagle delay per response
        raw = self.request
        try:
            self.request = self.server.ssl_context.wrap_socket(raw, server_side=True)
        finally:
            self.server.track(raw, False)
        self.server.track(self.request, True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sb: Sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = CaseInsensitiveDict(self.headers.items())
        record = RecordedRequest(self.command, self.path, headers, body, None)
        cleared = sb.cleared
        try:
            resp = sb.dispatch(self.command, self.path, headers, body)
        except Exception as exc:  # a sandbox bug: answer 500 rather than hang the client
            resp = Response(500, f"sandbox error: {type(exc).__name__}: {exc}".encode(), {"Content-Type": "text/plain"})
        if resp is None:
            if sb.cleared == cleared:     # a hang given up minutes later belongs to the test that made it
                sb.requests.append(record)
            self.close_connection = True
            return
        if sb.latency:
            sb._stopping.wait(sb.latency)
        record.status = resp.status
        sb.requests.append(record)
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

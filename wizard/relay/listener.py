"""What the relay's IMAP pass-through (``imap``) and POP3 server (``pop3``) share: a threaded TCP
listener (implicit TLS when a context is given, the handshake under the session's timeout), a line
reader that keeps what came after the last line, and the relay-client password check (a wrong user
name costs scrypt like a wrong password, so answers do not tell which user names exist)."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading

from wizard.relay import auth

FAIL_DELAY = 1.0            # seconds before a wrong password is answered
IDLE_TIMEOUT = 600          # RFC 1939 section 3: an idle POP3 session may end after at least 10 minutes
_DUMMY = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32


def check_login(relay, user: str, password: str):
    """The ``RelayClient`` named ``user`` whose password this is, or None."""
    client = relay.client(user)
    ok = auth.verify(password, client.password_hash if client else _DUMMY)
    return client if ok and client is not None else None


class Lines:
    """Lines from a socket, keeping what came after the last line read (for the pass-through)."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()

    def readline(self, limit: int) -> bytes:
        while b"\n" not in self.buffer and len(self.buffer) < limit:
            data = self.sock.recv(4096)
            if not data:
                break
            self.buffer += data
        end = self.buffer.find(b"\n")
        end = len(self.buffer) if end < 0 else end + 1
        line, self.buffer = bytes(self.buffer[:end]), self.buffer[end:]
        return line

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (fewer only when the peer left)."""
        while len(self.buffer) < n:
            data = self.sock.recv(4096)
            if not data:
                break
            self.buffer += data
        out, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        return out


class Listener:
    """``session(sock, peer)`` in a thread of its own per connection, on ``host:port`` (``.port`` is
    the bound port, for port 0)."""

    def __init__(self, name: str, session, *, tls_context=None, timeout: float = IDLE_TIMEOUT, log=None):
        self.log = log or (lambda text: None)
        self.name = name
        self.kind = name.removeprefix("relay-")
        self.session = session
        self.tls_context = tls_context
        self.timeout = timeout
        self.server: socketserver.ThreadingTCPServer | None = None
        self.port = 0

    def start(self, host: str, port: int) -> None:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(outer.timeout)
                if outer.tls_context is not None:
                    try:
                        sock = outer.tls_context.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError) as exc:    # the commonest setup mistake: say it
                        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
                        outer.log(f"{outer.kind}: TLS handshake with {self.client_address[0]} failed ({reason}): "
                                  "the system must use implicit TLS (SSL/TLS, not STARTTLS) and trust the "
                                  "relay's certificate")
                        return
                outer.session(sock, self.client_address)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def handle_error(self, request, client_address):     # no traceback: one line, for a bug report
                import sys
                exc = sys.exc_info()[1]
                if not isinstance(exc, (OSError, EOFError)):       # a dropped connection is not news
                    outer.log(f"{outer.kind}: session from {client_address[0]} ended by "
                              f"{type(exc).__name__}: {str(exc)[:200]}")

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class ReaderServer:
    """What the IMAP pass-through and the POP3 side share: the [relay] settings in force
    (``relay_of()``, they change on SIGHUP), ``open_upstream(mailbox)`` (a connected, signed-in
    ``imaplib.IMAP4_SSL``, or it raises), the log, and a Listener calling ``session(sock, peer)``."""

    name = "relay-reader"
    timeout = IDLE_TIMEOUT

    def __init__(self, relay_of, open_upstream, *, log_line=print, tls_context=None):
        self.relay_of = relay_of
        self.open_upstream = open_upstream
        self.log_line = log_line
        self.listener = Listener(self.name, self.session, tls_context=tls_context, timeout=self.timeout,
                                 log=log_line)

    def session(self, sock, peer) -> None:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self.listener.port

    def start(self, host: str, port: int) -> None:
        self.listener.start(host, port)

    def stop(self) -> None:
        self.listener.stop()

"""IMAP pass-through: a system logs in to the relay with its relay credentials (``LOGIN`` or
``AUTHENTICATE PLAIN``) and gets its client's mailbox (``[[relay.clients]] mailbox``, default its first
sender). The relay signs in upstream with XOAUTH2 through the runtime (``runtime.imap``: TLS verified,
the config's sign-in, tokens cached and renewed) and from then on passes the bytes through both ways.

Runs when ``[incoming] protocol = "imap"`` (its server and port are the upstream); on ``[relay]
imap_listen`` (loopback without a certificate; implicit TLS with ``[relay] certificate``). Before the
login only CAPABILITY, NOOP, LOGOUT, LOGIN and AUTHENTICATE PLAIN are understood. A wrong password
gets ``NO [AUTHENTICATIONFAILED]`` after a delay.
"""

from __future__ import annotations

import base64
import re
import selectors
import ssl
import time

from wizard.relay.listener import FAIL_DELAY, Lines, ReaderServer, check_login

CAPS = "IMAP4rev1 AUTH=PLAIN"
_HELD = 1 << 20             # bytes the pass-through holds for a side that reads slowly
_WAIT = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_TOKEN = r'(?:"((?:[^"\\]|\\.)*)"|([^\s"(){}%*\\]+))'
_LOGIN = re.compile(rf"^LOGIN\s+{_TOKEN}\s+{_TOKEN}\s*$", re.IGNORECASE)
_LITERAL = re.compile(rb"\{([0-9]{1,4})(\+?)\}\r?\n$")      # before the login: short literals only


def _with_literals(reader, sock) -> bytes:
    """A command line with its literals (``{n}``, or ``{n+}`` without waiting for ``+``: RFC 3501,
    RFC 7888) read in and written as quoted strings, so that ``LOGIN esm {14}`` and the password on
    the next line parse as one command (and the password is never taken for a command of its own)."""
    line = reader.readline(16384)
    while True:
        m = _LITERAL.search(line)
        if not m:
            return line
        if not m.group(2):
            sock.sendall(b"+ Ready for the literal\r\n")
        value = reader.read(int(m.group(1)))
        if len(value) < int(m.group(1)) or re.search(rb"[\r\n\0]", value):
            return b""                                   # gone, or not a user name or password: end here
        quoted = b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        line = line[:m.start()] + quoted + reader.readline(16384)


def _unquote(quoted, atom) -> str:
    return atom if atom is not None else re.sub(r"\\(.)", r"\1", quoted or "")


class ImapPassThrough(ReaderServer):
    name, timeout = "relay-imap", 300

    # -- one client ---------------------------------------------------------------------------
    def session(self, sock, peer) -> None:
        reader = Lines(sock)
        send = lambda text: sock.sendall(text.encode() + b"\r\n")     # noqa: E731
        send(f"* OK [CAPABILITY {CAPS}] mailwizard relay ready")
        while True:
            line = _with_literals(reader, sock)
            if not line:
                return
            parts = line.decode("utf-8", "replace").rstrip("\r\n").split(" ", 1)
            tag, rest = parts[0], (parts[1] if len(parts) > 1 else "")
            command = rest.split(" ", 1)[0].upper()
            if command == "CAPABILITY":
                send(f"* CAPABILITY {CAPS}")
                send(f"{tag} OK CAPABILITY completed")
            elif command == "NOOP":
                send(f"{tag} OK NOOP completed")
            elif command == "LOGOUT":
                send("* BYE mailwizard relay logging out")
                send(f"{tag} OK LOGOUT completed")
                return
            elif command in ("LOGIN", "AUTHENTICATE"):
                user_pw = self._credentials(rest, reader, send, tag)
                if user_pw is None:
                    continue
                client = self._check(*user_pw)
                if client is None:
                    time.sleep(FAIL_DELAY)
                    self.log_line(f"imap: refused login for {user_pw[0]!r} from {peer[0]}: wrong user name or password")
                    send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
                    continue
                mailbox = client.own_mailbox
                try:
                    upstream = self.open_upstream(mailbox)
                except Exception as exc:
                    said = getattr(getattr(exc, "diagnosis", None), "code", type(exc).__name__)
                    self.log_line(f"imap: {client.name}: upstream sign-in to {mailbox} failed ({said})")
                    send(f"{tag} NO [UNAVAILABLE] The relay could not open {mailbox} upstream ({said})")
                    continue
                self.log_line(f"imap: {client.name} opened {mailbox}")
                send(f"{tag} OK LOGIN completed")
                self._splice(sock, reader.buffer, upstream)
                return
            else:
                send(f"{tag} BAD Log in first (LOGIN or AUTHENTICATE PLAIN)")

    def _credentials(self, rest: str, reader, send, tag) -> tuple[str, str] | None:
        m = _LOGIN.match(rest)
        if m:
            return _unquote(m.group(1), m.group(2)), _unquote(m.group(3), m.group(4))
        words = rest.split()
        if len(words) >= 2 and words[0].upper() == "AUTHENTICATE" and words[1].upper() == "PLAIN":
            blob = words[2] if len(words) > 2 else None
            if blob is None:
                send("+ ")
                blob = reader.readline(16384).decode("ascii", "replace").strip()
            try:
                authzid, user, password = base64.b64decode(blob, validate=True).decode("utf-8").split("\0")
            except (ValueError, UnicodeDecodeError):
                send(f"{tag} BAD Invalid AUTHENTICATE PLAIN response")
                return None
            if authzid and authzid != user:                # RFC 4616: no acting as another client
                send(f"{tag} NO [AUTHORIZATIONFAILED] {user} may not act as {authzid}")
                return None
            return user, password
        send(f"{tag} BAD Use LOGIN user password or AUTHENTICATE PLAIN")
        return None

    def _check(self, user: str, password: str):
        return check_login(self.relay_of(), user, password)

    @staticmethod
    def _splice(client_sock, early: bytes, upstream, idle: float = 1800.0) -> None:
        """Pass bytes both ways until one side closes or nothing moves for ``idle`` seconds (what
        the client sent early goes first). Both sockets non-blocking, TLS or not: a read drains what
        the TLS layer has already decrypted (``SSLWantReadError`` means a record is only partly
        here, not that the peer left); at most ``_HELD`` bytes wait for a slow reader."""
        up = upstream.sock
        other = {client_sock: up, up: client_sock}
        out = {client_sock: bytearray(), up: bytearray(early or b"")}     # bytes waiting to go to each
        sel = selectors.DefaultSelector()
        for s in (client_sock, up):
            s.setblocking(False)
        ended = False
        try:
            while not ended:
                for src in (client_sock, up):                   # read what is there (and decrypted)
                    while not ended and len(out[other[src]]) < _HELD:
                        try:
                            data = src.recv(65536)
                        except _WAIT:
                            break
                        except OSError:
                            return
                        ended = not data                        # one side left: pass on what it said
                        out[other[src]] += data
                for dst in (client_sock, up):                   # write what waits, as far as it goes
                    while out[dst]:
                        try:
                            sent = dst.send(out[dst])
                        except _WAIT:
                            break
                        except OSError:
                            return
                        del out[dst][:sent]
                if ended:
                    for dst in (client_sock, up):
                        if out[dst]:
                            dst.settimeout(30)
                            dst.sendall(out[dst])
                    return
                for s in (client_sock, up):                     # wait for room to write, or bytes to read
                    events = (selectors.EVENT_READ if len(out[other[s]]) < _HELD else 0) | \
                        (selectors.EVENT_WRITE if out[s] else 0)
                    if s in sel.get_map():
                        sel.unregister(s)
                    if events:
                        sel.register(s, events)
                if not sel.select(timeout=idle):
                    return                                      # idle too long: both sides are closed
        finally:
            sel.close()
            for s in (client_sock, up):
                try:
                    s.close()
                except OSError:
                    pass

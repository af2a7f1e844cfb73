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
import time

from wizard.relay.listener import FAIL_DELAY, Lines, ReaderServer, check_login

CAPS = "IMAP4rev1 AUTH=PLAIN"
_TOKEN = r'(?:"((?:[^"\\]|\\.)*)"|([^\s"(){}%*\\]+))'
_LOGIN = re.compile(rf"^LOGIN\s+{_TOKEN}\s+{_TOKEN}\s*$", re.IGNORECASE)


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
            line = reader.readline(16384)
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
                _, user, password = base64.b64decode(blob, validate=True).decode("utf-8").split("\0")
                return user, password
            except (ValueError, UnicodeDecodeError):
                send(f"{tag} BAD Invalid AUTHENTICATE PLAIN response")
                return None
        send(f"{tag} BAD Use LOGIN user password or AUTHENTICATE PLAIN")
        return None

    def _check(self, user: str, password: str):
        return check_login(self.relay_of(), user, password)

    @staticmethod
    def _splice(client_sock, early: bytes, upstream) -> None:
        """Pass bytes both ways until one side closes (what the client sent early goes first)."""
        up = upstream.sock
        if early:
            up.sendall(bytes(early))
        sel = selectors.DefaultSelector()
        client_sock.setblocking(False)
        up.setblocking(False)
        sel.register(client_sock, selectors.EVENT_READ, up)
        sel.register(up, selectors.EVENT_READ, client_sock)
        try:
            while True:
                for key, _ in sel.select(timeout=1800):
                    src, dst = key.fileobj, key.data
                    try:
                        data = src.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    dst.setblocking(True)
                    dst.sendall(data)
                    dst.setblocking(False)
                    while getattr(src, "pending", lambda: 0)():        # TLS: bytes already decrypted
                        more = src.recv(65536)
                        if not more:
                            break
                        dst.setblocking(True)
                        dst.sendall(more)
                        dst.setblocking(False)
        finally:
            sel.close()
            for s in (client_sock, up):
                try:
                    s.close()
                except OSError:
                    pass

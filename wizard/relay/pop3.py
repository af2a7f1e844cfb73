"""POP3 for systems that only speak POP3 (RFC 1939; CAPA from RFC 2449; AUTH PLAIN from RFC 5034;
the response codes [AUTH] and [SYS/TEMP] from RFC 3206).

A system logs in to ``[relay] pop3_listen`` with its relay credentials (USER/PASS or AUTH PLAIN;
implicit TLS with ``[relay] certificate``, no STLS) and its maildrop is the INBOX of its client's
mailbox (``[[relay.clients]] mailbox``), read through the same upstream IMAP session the IMAP
pass-through opens (``runtime.imap``: the config's XOAUTH2 sign-in, TLS verified, tokens renewed).
Why IMAP upstream and not Exchange Online's own POP3: it works with the IMAP permission the wizard
already set up; Exchange's POP3 would need a second permission (POP.AccessAsApp or
POP.AccessAsUser.All) granted.

How POP3 maps onto IMAP:

- At login the relay SELECTs INBOX and takes UIDVALIDITY and the UID and RFC822.SIZE of each message
  not flagged \\Deleted: that is the maildrop for the whole session (RFC 1939 fixes it at login; mail
  arriving later shows at the next login). STAT and LIST give the sizes as the IMAP server reports
  them (Exchange's RFC822.SIZE can differ a little from the bytes RETR sends).
- UIDL is ``<UIDVALIDITY>.<UID>``: the same in every session while the server keeps the folder's UIDs.
- RETR is ``UID FETCH BODY.PEEK[]`` in pieces of 1 MiB, sent on as they come with CRLF line ends and
  dot-stuffing, so a message of any size costs about two pieces of memory; the message is not marked
  \\Seen. TOP sends the header, the blank line and n lines of the body (fetching stops there).
- DELE only marks and RSET unmarks. Only QUIT in the transaction state (RFC 1939's UPDATE state)
  changes the mailbox: ``UID STORE +FLAGS.SILENT (\\Deleted)`` on the marked messages, then
  ``UID EXPUNGE`` of exactly those UIDs when the server has UIDPLUS (Exchange Online and Dovecot
  do). Without UIDPLUS a plain EXPUNGE would also remove messages other clients flagged \\Deleted, so it
  is sent only when no other message is flagged; otherwise the marked messages stay flagged \\Deleted
  (POP3 never shows them again) until the server's next expunge. A session that ends without QUIT,
  or QUIT before the login, changes nothing.
- RFC 1939's exclusive-access lock: one POP3 session at a time per mailbox (whichever client logs
  in to it). A second login while one is open gets ``-ERR [IN-USE] ...`` (RFC 2449) naming who holds
  it and since when, so two overlapping polls never take the same message twice. The lock goes when
  that session ends: QUIT, a closed connection, or 10 minutes idle.
- An upstream failure is ``-ERR [SYS/TEMP] ...`` naming the mailbox and the reason (the relay's log
  line says more); a wrong user name or password ``-ERR [AUTH] ...`` after a delay.
"""

from __future__ import annotations

import base64
import binascii
import imaplib
import re
import threading
import time

from wizard.relay.listener import FAIL_DELAY, Lines, ReaderServer, check_login

PIECE = 1024 * 1024          # bytes fetched upstream per round trip while a message streams
LINE_LIMIT = 16384           # a command line (AUTH PLAIN responses included)
CAPA = ("USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION mailwizard-relay")
_FETCH_RE = {name: re.compile(rb"\b" + name + rb" (\d+)", re.I) for name in (b"UID", b"RFC822\\.SIZE")}
_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)", re.I)


class UpstreamError(Exception):
    """The IMAP server refused a command (its words are the message)."""


class _Gone(Exception):
    """A message of the maildrop is no longer on the server (another client removed it)."""


def _said(exc) -> str:
    """The catalogue code of a MailError, else the exception's own words (never a traceback)."""
    code = getattr(getattr(exc, "diagnosis", None), "code", None)
    if code:
        return code
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _explained(exc) -> str:
    """The catalogue's cause and fix for a MailError (what the relay's log line adds), else ""."""
    d = getattr(exc, "diagnosis", None)
    return f": {d.cause} Fix: {d.fix}" if d is not None and getattr(d, "cause", "") else ""


def _words(data) -> str:
    return " ".join((d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d)) for d in data or [] if d)


class Maildrop:
    """The INBOX of one signed-in upstream ``imaplib`` session, as POP3 sees it."""

    def __init__(self, imap):
        self.imap = imap
        typ, data = imap.select("INBOX")
        if typ != "OK":
            raise UpstreamError(f"SELECT INBOX refused: {_words(data)}")
        validity = (imap.response("UIDVALIDITY")[1] or [b"0"])[0]
        self.validity = validity.decode() if isinstance(validity, bytes) else str(validity or 0)
        self.items: list[tuple[int, int]] = []         # (UID, size), in UID order
        if int(data[-1] or 0):                         # EXISTS
            typ, data = imap.fetch("1:*", "(UID RFC822.SIZE FLAGS)")
            if typ != "OK":
                raise UpstreamError(f"FETCH of the message list refused: {_words(data)}")
            for line in data:
                line = line[0] if isinstance(line, tuple) else line
                uid = _FETCH_RE[b"UID"].search(line or b"")
                if uid is None:
                    continue
                flags = _FLAGS_RE.search(line)
                if flags and b"\\deleted" in flags.group(1).lower():
                    continue
                size = _FETCH_RE[b"RFC822\\.SIZE"].search(line)
                self.items.append((int(uid.group(1)), int(size.group(1)) if size else 0))
        self.items.sort()
        self.deleted: set[int] = set()                 # message numbers marked by DELE

    # -- what STAT, LIST and UIDL show ---------------------------------------------------------
    def listed(self) -> list[int]:
        return [n for n in range(1, len(self.items) + 1) if n not in self.deleted]

    def size(self, n: int) -> int:
        return self.items[n - 1][1]

    def uidl(self, n: int) -> str:
        return f"{self.validity}.{self.items[n - 1][0]}"

    def octets(self) -> int:
        return sum(self.size(n) for n in self.listed())

    # -- reading ------------------------------------------------------------------------------
    def pieces(self, n: int):
        """The message's bytes in pieces of at most PIECE (nothing at all when it is gone)."""
        uid, offset = self.items[n - 1][0], 0
        while True:
            data = self._piece(uid, offset)
            if data is None:
                if offset:
                    raise _Gone()
                return
            yield data
            if len(data) < PIECE:
                return
            offset += len(data)

    def _piece(self, uid: int, offset: int) -> bytes | None:
        typ, data = self.imap.uid("FETCH", str(uid), f"(BODY.PEEK[]<{offset}.{PIECE}>)")
        if typ != "OK":
            raise UpstreamError(f"FETCH refused: {_words(data)}")
        for item in data:
            if isinstance(item, tuple) and b"BODY[" in item[0].upper():
                return item[1]
        for item in data:                      # an empty piece may come as "" or NIL instead of a literal
            if isinstance(item, bytes) and b"BODY[" in item.upper():
                return b""
        return None

    # -- QUIT in the transaction state ----------------------------------------------------------
    def update(self) -> str:
        """Remove the marked messages upstream; "" or a note on what is left to the server."""
        uids = [str(self.items[n - 1][0]) for n in sorted(self.deleted)]
        if not uids:
            return ""
        for batch in _batches(uids):
            self._ok(self.imap.uid("STORE", batch, "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted")
        typ, caps = self.imap.capability()            # after the login: Dovecot names UIDPLUS only then
        if typ == "OK" and b"UIDPLUS" in b" ".join(c for c in caps if c).upper().split():
            for batch in _batches(uids):
                self._ok(self.imap.uid("EXPUNGE", batch), "UID EXPUNGE")
            return ""
        typ, found = self.imap.uid("SEARCH", "DELETED")
        flagged = set(found[0].split()) if typ == "OK" and found and found[0] else set()
        if flagged <= {u.encode() for u in uids}:
            self._ok(self.imap.expunge(), "EXPUNGE")
            return ""
        return ("left flagged \\Deleted upstream: the server has no UIDPLUS and other clients' deleted messages "
                "wait there too, so its next expunge removes them")

    @staticmethod
    def _ok(result, what: str) -> None:
        typ, data = result
        if typ != "OK":
            raise UpstreamError(f"{what} refused: {_words(data)}")

    def close(self) -> None:
        try:
            self.imap.logout()
        except Exception:            # the connection may already be gone; LOGOUT never expunges
            pass


def _batches(uids: list[str], size: int = 500):
    for i in range(0, len(uids), size):
        yield ",".join(uids[i:i + size])


class PopText:
    """Message bytes, fed in pieces, as POP3 multi-line text (RFC 1939 section 3): CRLF line ends, a
    '.' at a line's start doubled; with ``body_lines`` (TOP) only the header, the blank line and that
    many body lines (``done`` tells when the rest is not needed)."""

    def __init__(self, body_lines: int | None = None, *, hold: int = PIECE):
        self.left = body_lines
        self.hold = hold
        self.rest = b""            # a line not ended yet
        self.at_start = True       # nothing of the current line sent yet
        self.in_header = True
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return b""
        buf = self.rest + data if self.rest else data
        cut = buf.rfind(b"\n") + 1
        whole, self.rest = buf[:cut], buf[cut:]
        out = self._lines(whole) if whole else b""
        if len(self.rest) > self.hold and not self.done:     # a very long line: send on all but a trailing CR
            keep = 1 if self.rest.endswith(b"\r") else 0
            part, self.rest = self.rest[:len(self.rest) - keep], self.rest[len(self.rest) - keep:]
            out += (b"." if self.at_start and part.startswith(b".") else b"") + part
            self.at_start = False
        return out

    def end(self) -> bytes:
        """What is left, a CRLF when the message did not end with one, and the terminating '.'."""
        out = b""
        if not self.done:
            if self.rest:
                out = self._lines(self.rest + b"\n")
            elif not self.at_start:
                out = b"\r\n"
        self.done = True
        return out + b".\r\n"

    def _lines(self, whole: bytes) -> bytes:
        if self.left is None:
            first, self.at_start = self.at_start, True
            text = whole.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\r\n.", b"\r\n..")
            return b"." + text if first and text.startswith(b".") else text
        out = []
        for line in whole.split(b"\n")[:-1]:
            if line.endswith(b"\r"):
                line = line[:-1]
            blank = line == b"" and self.at_start
            if not self.in_header:
                if self.left <= 0:
                    self.done = True
                    break
                self.left -= 1
            out.append((b"." if self.at_start and line.startswith(b".") else b"") + line + b"\r\n")
            self.at_start = True
            if self.in_header and blank:
                self.in_header = False
            if not self.in_header and self.left <= 0:
                self.done = True
                break
        return b"".join(out)


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²', which ``int`` refuses)."""
    return bool(re.fullmatch(r"[0-9]{1,9}", text))


class Pop3Server(ReaderServer):
    name = "relay-pop3"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.in_use: dict[str, str] = {}      # mailbox (lower case): who holds its lock, and since when

    def take(self, mailbox: str, holder: str) -> str:
        """The mailbox's exclusive lock for ``holder``: "" when taken, else who holds it."""
        with self._lock:
            held = self.in_use.get(mailbox.lower())
            if held is None:
                self.in_use[mailbox.lower()] = holder
            return held or ""

    def give_back(self, mailbox: str) -> None:
        with self._lock:
            self.in_use.pop(mailbox.lower(), None)

    def session(self, sock, peer) -> None:
        _Session(self, sock, peer).run()


class _Session:
    """One POP3 connection: AUTHORIZATION until a login works, then TRANSACTION until QUIT (UPDATE)."""

    def __init__(self, server: Pop3Server, sock, peer):
        self.server, self.sock, self.peer = server, sock, peer
        self.reader = Lines(sock)
        self.user: str | None = None          # after USER, until PASS
        self.name = self.mailbox = ""
        self.drop: Maildrop | None = None
        self.quit = False
        self.released = False

    def send(self, text: str) -> None:
        self.write(text.encode("utf-8") + b"\r\n")

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            raise _ClientGone() from None

    def log(self, text: str) -> None:
        self.server.log_line(f"pop3: {text}")

    def run(self) -> None:
        try:
            self.send("+OK mailwizard relay POP3 ready")
            while True:
                line = self.reader.readline(LINE_LIMIT)
                if not line:
                    return
                if not line.endswith(b"\n") and len(line) >= LINE_LIMIT:
                    self.send(f"-ERR command line longer than {LINE_LIMIT} octets")
                    return
                command, _, arg = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
                command = command.upper()
                if command == "CAPA":
                    self.send("+OK capability list follows")
                    for cap in CAPA:
                        self.send(cap)
                    self.send(".")
                elif self.drop is None:
                    if not self._authorization(command, arg):
                        return
                elif not self._transaction_guarded(command, arg):
                    return
        except (_ClientGone, OSError):       # the client went away or stayed idle past the timeout
            return
        finally:
            if self.drop is not None:        # without QUIT nothing changes upstream (RFC 1939 section 6)
                self._release()
                if not self.quit:
                    marks = f" ({len(self.drop.deleted)} DELE undone)" if self.drop.deleted else ""
                    self.log(f"{self.name} left {self.mailbox} without QUIT: nothing deleted{marks}")

    # -- AUTHORIZATION ---------------------------------------------------------------------------
    def _authorization(self, command: str, arg: str) -> bool:
        if command == "QUIT":
            self.send("+OK mailwizard relay POP3 signing off")
            return False
        if command == "USER":
            self.user = arg.strip() or None
            self.send("+OK send PASS" if self.user else "-ERR USER needs a user name")
        elif command == "PASS":
            if self.user is None:
                self.send("-ERR send USER first")
            else:
                user, self.user = self.user, None
                self._login(user, arg)
        elif command == "AUTH":
            self._auth(arg)
        elif command in ("STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"):
            self.send("-ERR log in first (USER and PASS, or AUTH PLAIN)")
        else:
            self.send("-ERR unknown command")
        return True

    def _auth(self, arg: str) -> None:
        mech, _, initial = arg.strip().partition(" ")
        if not mech:
            self.send("+OK SASL mechanisms follow")
            self.send("PLAIN")
            self.send(".")
            return
        if mech.upper() != "PLAIN":
            self.send(f"-ERR mechanism {mech[:40]} is not offered: use AUTH PLAIN, or USER and PASS")
            return
        if not initial:
            self.send("+ ")
            initial = self.reader.readline(LINE_LIMIT).decode("ascii", "replace").strip()
        if initial == "*":
            self.send("-ERR AUTH cancelled")
            return
        try:
            authzid, user, password = base64.b64decode("" if initial == "=" else initial, validate=True) \
                .decode("utf-8").split("\0")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            self.send("-ERR the AUTH PLAIN response is not base64 of authzid NUL user NUL password")
            return
        if authzid and authzid != user:
            time.sleep(FAIL_DELAY)
            self.log(f"refused login for {user[:64]!r} from {self.peer[0]}: may not act as {authzid[:64]!r}")
            self.send("-ERR [AUTH] Authentication failed.")
            return
        self._login(user, password)

    def _login(self, user: str, password: str) -> None:
        client = check_login(self.server.relay_of(), user, password)
        if client is None:
            time.sleep(FAIL_DELAY)
            self.log(f"refused login for {user[:64]!r} from {self.peer[0]}: wrong user name or password")
            self.send("-ERR [AUTH] Authentication failed.")
            return
        mailbox = client.own_mailbox
        held = self.server.take(mailbox, f"{client.name} from {self.peer[0]} since {time.strftime('%H:%M:%S')}")
        if held:
            self.log(f"{client.name}: {mailbox} is in use by another POP3 session ({held}): login refused")
            self.send(f"-ERR [IN-USE] {mailbox} is open in another POP3 session ({held}); try again when "
                      "it ends (QUIT, or 10 minutes idle)")
            return
        drop = None
        try:
            drop = self._open(client, mailbox)
        finally:
            if drop is None:                  # not opened: the lock goes at once
                self.server.give_back(mailbox)
        if drop is None:
            return
        self.drop, self.name, self.mailbox = drop, client.name, mailbox      # run() gives the lock back
        count = len(drop.items)
        self.log(f"{client.name} opened {mailbox} ({count} message(s), {drop.octets()} octets)")
        self.send(f"+OK {mailbox} has {count} message(s) ({drop.octets()} octets)")

    def _open(self, client, mailbox: str):
        """The mailbox's maildrop, or None (the client told why)."""
        try:
            imap = self.server.open_upstream(mailbox)
        except Exception as exc:
            self.log(f"{client.name}: upstream sign-in to {mailbox} failed ({_said(exc)}){_explained(exc)}")
            self.send(f"-ERR [SYS/TEMP] The relay could not open {mailbox} upstream ({_said(exc)}); "
                      "the relay's log says why and what to do. Try again later.")
            return None
        try:
            return Maildrop(imap)
        except Exception as exc:
            try:
                imap.logout()
            except Exception:
                pass
            self.log(f"{client.name}: reading the INBOX of {mailbox} failed ({_said(exc)})")
            self.send(f"-ERR [SYS/TEMP] The relay could not read the INBOX of {mailbox} ({_said(exc)}). "
                      "Try again later.")
            return None

    def _release(self) -> None:
        """Sign out upstream and give the mailbox's lock back (once)."""
        if not self.released:
            self.released = True
            self.drop.close()
            self.server.give_back(self.mailbox)

    # -- TRANSACTION --------------------------------------------------------------------------------
    def _transaction_guarded(self, command: str, arg: str) -> bool:
        try:
            return self._transaction(command, arg)
        except _ClientGone:
            return False
        except _Cut as cut:                  # the +OK went out already: only closing tells the client
            self.log(f"{self.name}: {cut.args[0]}: the connection is closed so that the client sees it")
            return False
        except (UpstreamError, imaplib.IMAP4.error, OSError, EOFError) as exc:
            self.log(f"{self.name}: upstream {self.mailbox} failed during {command} ({_said(exc)})")
            try:
                self.send(f"-ERR [SYS/TEMP] The relay lost {self.mailbox} upstream ({_said(exc)}). "
                          "Try again later.")
            except _ClientGone:
                pass
            return False

    def _transaction(self, command: str, arg: str) -> bool:
        drop = self.drop
        args = arg.split()
        if command == "STAT":
            self.send(f"+OK {len(drop.listed())} {drop.octets()}")
        elif command in ("LIST", "UIDL"):
            show = drop.size if command == "LIST" else drop.uidl
            if args:
                n = self._number(args[0])
                if n:
                    self.send(f"+OK {n} {show(n)}")
            else:
                self.send(f"+OK {len(drop.listed())} message(s) ({drop.octets()} octets)")
                for n in drop.listed():
                    self.send(f"{n} {show(n)}")
                self.send(".")
        elif command == "RETR":
            n = self._number(args[0] if args else "")
            if n:
                self._send_message(n, None)
        elif command == "TOP":
            n = self._number(args[0] if args else "")
            if n and (len(args) != 2 or not _digits(args[1])):
                self.send("-ERR TOP needs a message number and a number of lines, e.g. TOP 1 10")
            elif n:
                self._send_message(n, int(args[1]))
        elif command == "DELE":
            n = self._number(args[0] if args else "")
            if n:
                drop.deleted.add(n)
                self.send(f"+OK message {n} deleted")
        elif command == "RSET":
            drop.deleted.clear()
            self.send(f"+OK {len(drop.listed())} message(s) ({drop.octets()} octets)")
        elif command == "NOOP":
            self.send("+OK")
        elif command == "QUIT":
            self.quit = True
            self._update()
            return False
        elif command in ("USER", "PASS", "AUTH"):
            self.send("-ERR already logged in")
        else:
            self.send("-ERR unknown command")
        return True

    def _number(self, text: str) -> int:
        """The message number in ``text`` when it names a message not marked deleted (else 0, told)."""
        n = int(text) if _digits(text) else 0
        if not 1 <= n <= len(self.drop.items):
            self.send(f"-ERR no such message{'' if text else ': give its number'}")
            return 0
        if n in self.drop.deleted:
            self.send(f"-ERR message {n} already deleted")
            return 0
        return n

    def _send_message(self, n: int, body_lines: int | None) -> None:
        pieces = self.drop.pieces(n)
        first = next(pieces, None)          # an upstream failure here still gets an -ERR
        if first is None:
            self.send(f"-ERR message {n} is no longer in {self.mailbox}: another client removed it")
            return
        text = PopText(body_lines)
        self.send(f"+OK {self.drop.size(n)} octets" if body_lines is None else "+OK top of message follows")
        try:
            self.write(text.feed(first))
            while not text.done:
                try:
                    piece = next(pieces, None)
                except (UpstreamError, imaplib.IMAP4.error, OSError, EOFError, _Gone) as exc:
                    why = "another client removed it" if isinstance(exc, _Gone) else _said(exc)
                    raise _Cut(f"upstream {self.mailbox} failed while message {n} was sent ({why})") from None
                if piece is None:
                    break
                self.write(text.feed(piece))
        finally:
            pieces.close()
        self.write(text.end())

    def _update(self) -> None:
        """QUIT in the transaction state: RFC 1939's UPDATE state."""
        marked = len(self.drop.deleted)
        try:
            note = self.drop.update()
        except (UpstreamError, imaplib.IMAP4.error, OSError, EOFError) as exc:
            self.log(f"{self.name}: {marked} deleted message(s) not removed from {self.mailbox} ({_said(exc)})")
            self._release()
            self.send(f"-ERR [SYS/TEMP] some deleted messages not removed from {self.mailbox} ({_said(exc)}); "
                      "they show again at the next login")
            return
        self.log(f"{self.name} closed {self.mailbox}: {marked} message(s) deleted" + (f" ({note})" if note else ""))
        self._release()                      # before the reply: a poll right behind this one finds it free
        self.send(f"+OK mailwizard relay POP3 signing off ({marked} message(s) deleted)")


class _Cut(Exception):
    """The upstream failed while a message was being sent (after the +OK)."""


class _ClientGone(Exception):
    """The POP3 client's connection broke."""

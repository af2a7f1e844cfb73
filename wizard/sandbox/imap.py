"""IMAP4rev1 over implicit TLS (outlook.office365.com:993) as Exchange Online
answers it, minimal but enough for imaplib: AUTHENTICATE XOAUTH2, LIST,
CREATE, SELECT/EXAMINE, STATUS, (UID) SEARCH/FETCH/STORE/COPY/MOVE, EXPUNGE."""

from __future__ import annotations

import base64
import copy
import re

from wizard.sandbox.imap_items import (FLAGS, SYSTEM_FLAGS, args, assign_uids, fetch_item, flags_bytes, parse_fetch, quote,
                         search_key, uid_validity)
from wizard.sandbox.mailstore import LOCK, LineHandler, LineServer, folder, folder_names, new_id, to_mime, xoauth2

# Exchange Online also offers IDLE and LITERAL+; the sandbox does not implement them.
CAPABILITY = "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN NAMESPACE"
# The XOAUTH2 error challenge (a base64 JSON status): the client answers it with an empty line, then gets
# the final NO. Exchange documents only that final "NO AUTHENTICATE failed."; RFC-conforming servers
# (Dovecot) send the challenge first, so the sandbox does too.
ERROR_CHALLENGE = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}'
                                   ).decode()
AUTHED = ("LIST", "LSUB", "CREATE", "SELECT", "EXAMINE", "STATUS", "NAMESPACE")
SELECTED = ("SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE", "CLOSE", "UNSELECT")


class ImapHandler(LineHandler):
    def greet(self) -> None:
        self.login = None
        self.selected: str | None = None
        self.read_only = False
        self.send("* OK The Microsoft Exchange IMAP4 service is ready.")

    @property
    def mb(self):
        return self.login.mailbox

    def items(self):
        return folder(self.mb, self.selected) or []

    def command(self, line: str) -> None:
        tag, _, rest = line.partition(" ")
        cmd, _, rest = rest.partition(" ")
        cmd, uid = cmd.upper(), False
        if cmd == "UID":
            sub, _, rest = rest.partition(" ")
            cmd, uid = sub.upper(), True
        if not tag or not cmd:
            self.send(f"{tag or '*'} BAD Command Error. 10")
            return
        handler = getattr(self, f"do_{cmd}", None)
        if handler is None or (uid and cmd not in ("SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE")):
            self.send(f"{tag} BAD Command Error. 12")
        elif (cmd in AUTHED and self.login is None) or (cmd in SELECTED and self.selected is None):
            self.send(f"{tag} BAD Command received in Invalid state.")
        elif cmd in AUTHED or cmd in SELECTED:
            self.out = []
            try:
                with LOCK:
                    handler(tag, rest.strip(), uid)
            except (ValueError, IndexError, KeyError):
                self.out = [f"{tag} BAD Command Argument Error. 11\r\n".encode()]
            out, self.out = self.out, None
            self.send(b"".join(out))
        else:
            handler(tag, rest.strip(), uid)

    # -- any state ------------------------------------------------------------------------
    def do_CAPABILITY(self, tag, rest, uid) -> None:
        self.send(f"* CAPABILITY {CAPABILITY}\r\n{tag} OK CAPABILITY completed.\r\n".encode())

    def do_NOOP(self, tag, rest, uid) -> None:
        self.send(f"{tag} OK NOOP completed.")

    def do_ID(self, tag, rest, uid) -> None:
        self.send(f"* ID NIL\r\n{tag} OK ID completed.\r\n".encode())

    def do_LOGOUT(self, tag, rest, uid) -> None:
        self.send(f"* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n{tag} OK LOGOUT completed.\r\n"
                  .encode())
        self.closing = True

    def do_LOGIN(self, tag, rest, uid) -> None:
        self.send(f"{tag} NO LOGIN failed.")         # basic authentication is off in Exchange Online

    def do_AUTHENTICATE(self, tag, rest, uid) -> None:
        mech, _, initial = rest.partition(" ")
        if self.login is not None:
            self.send(f"{tag} BAD Command received in Invalid state.")
            return
        if not initial:
            self.send("+ ")
            raw = self.readline()
            if raw is None:
                self.closing = True
                return
            initial = raw.decode("ascii", "replace").strip()
        login = xoauth2(self.server.sandbox, initial, "imap") if mech.upper() == "XOAUTH2" else None
        if login is not None and login.problem:
            self.send(f"+ {ERROR_CHALLENGE}")          # the XOAUTH2 error challenge: answered with an empty line
            answer = self.readline()
            if answer is None:
                self.closing = True
                return
            if answer.strip():
                self.send(f"{tag} BAD Expected an empty response to the error challenge.")
                return
        if login is None or login.problem:
            self.send(f"{tag} NO AUTHENTICATE failed.")
        else:
            self.login = login
            self.send(f"{tag} OK AUTHENTICATE completed.")

    # -- authenticated ------------------------------------------------------------------------
    def do_NAMESPACE(self, tag, rest, uid) -> None:
        self.send(f'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK NAMESPACE completed.\r\n'.encode())

    def do_LIST(self, tag, rest, uid, verb="LIST") -> None:
        a = args(rest)
        pattern = a[1] if len(a) > 1 else "*"
        if pattern == "":
            self.send(f'* {verb} (\\Noselect) "/" ""\r\n{tag} OK {verb} completed.\r\n'.encode())
            return
        rx = re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace("%", "[^/]*") + "$", re.I)
        out = []
        for name in ["INBOX"] + folder_names(self.mb)[1:]:
            if rx.match(name) or (name == "INBOX" and rx.match("Inbox")):
                out.append(f'* {verb} (\\HasNoChildren) "/" {quote(name)}\r\n')
        self.send(("".join(out) + f"{tag} OK {verb} completed.\r\n").encode())

    def do_LSUB(self, tag, rest, uid) -> None:
        self.do_LIST(tag, rest, uid, "LSUB")

    def do_CREATE(self, tag, rest, uid) -> None:
        name = (args(rest) or [""])[0]
        if not name:
            self.send(f"{tag} BAD Command Argument Error. 11")
        elif folder(self.mb, name) is not None:
            self.send(f"{tag} NO [ALREADYEXISTS] Mailbox already exists.")
        else:
            folder(self.mb, name, create=True)
            self.send(f"{tag} OK CREATE completed.")

    def do_STATUS(self, tag, rest, uid) -> None:
        a = args(rest)
        items = folder(self.mb, a[0]) if a else None
        if items is None:
            self.send(f"{tag} NO STATUS failed.")
            return
        assign_uids(self.mb, items)
        values = {"MESSAGES": len(items), "RECENT": 0, "UIDNEXT": self.mb.uid_next,
                  "UIDVALIDITY": uid_validity(a[0]), "UNSEEN": sum(1 for m in items if not m.is_read)}
        wanted = (a[1] if len(a) > 1 else "()").strip("()").upper().split()
        body = " ".join(f"{k} {values[k]}" for k in wanted if k in values)
        self.send(f"* STATUS {quote(a[0])} ({body})\r\n{tag} OK STATUS completed.\r\n".encode())

    def do_SELECT(self, tag, rest, uid, read_only=False) -> None:
        name = (args(rest) or [""])[0]
        items = folder(self.mb, name) if name else None
        if items is None:
            self.selected = None
            self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist.")
            return
        assign_uids(self.mb, items)
        self.selected, self.read_only = name, read_only
        first_unseen = next((i + 1 for i, m in enumerate(items) if not m.is_read), None)
        lines = [f"* {len(items)} EXISTS", "* 0 RECENT", f"* FLAGS ({FLAGS})",
                 f"* OK [PERMANENTFLAGS ({FLAGS} \\*)] Permanent flags"]
        if first_unseen:
            lines.append(f"* OK [UNSEEN {first_unseen}] Is the first unseen message")
        lines += [f"* OK [UIDVALIDITY {uid_validity(name)}] UIDVALIDITY value",
                  f"* OK [UIDNEXT {self.mb.uid_next}] The next unique identifier value",
                  f"{tag} OK [{'READ-ONLY' if read_only else 'READ-WRITE'}] "
                  f"{'EXAMINE' if read_only else 'SELECT'} completed."]
        self.send(("\r\n".join(lines) + "\r\n").encode())

    def do_EXAMINE(self, tag, rest, uid) -> None:
        self.do_SELECT(tag, rest, uid, read_only=True)

    # -- selected -------------------------------------------------------------------------------
    def pick(self, seqset: str, uid: bool) -> list[tuple[int, object]]:
        """(sequence number, message) for a sequence set or UID set."""
        items = self.items()
        assign_uids(self.mb, items)
        if not items:
            return []
        top = items[-1].uid if uid else len(items)
        wanted = set()
        for part in seqset.split(","):
            lo, _, hi = part.partition(":")
            lo_n = top if lo == "*" else int(lo)
            hi_n = lo_n if not hi else top if hi == "*" else int(hi)
            wanted.add((min(lo_n, hi_n), max(lo_n, hi_n)))
        return [(i + 1, m) for i, m in enumerate(items)
                if any(a <= (m.uid if uid else i + 1) <= b for a, b in wanted)]

    def do_SEARCH(self, tag, rest, uid) -> None:
        a, hits = args(rest), []
        if a and a[0].upper() == "CHARSET":
            a = a[2:]
        for seq, m in self.pick("1:*", False):
            i = 0
            while i < len(a) and (ok := search_key(m, a, i, self.pick))[0]:
                i = ok[1]
            if i >= len(a):
                hits.append(str(m.uid if uid else seq))
        self.send(f"* SEARCH{' ' if hits else ''}{' '.join(hits)}\r\n{tag} OK SEARCH completed.\r\n".encode())

    def do_FETCH(self, tag, rest, uid) -> None:
        seqset, _, spec = rest.partition(" ")
        items = parse_fetch(spec, uid)
        out = []
        for seq, m in self.pick(seqset, uid):
            raw, parts, seen_before = to_mime(m), [], m.is_read
            for name, section, off, count in items:
                if name in ("BODY[]", "RFC822", "RFC822.TEXT"):
                    m.is_read = m.is_read or not self.read_only
                parts.append(fetch_item(m, raw, name, section, off, count))
            if m.is_read != seen_before and not any(i[0] == "FLAGS" for i in items):
                parts.append(b"FLAGS " + flags_bytes(m))
            out.append(f"* {seq} FETCH (".encode() + b" ".join(parts) + b")\r\n")
        self.send(b"".join(out) + f"{tag} OK FETCH completed.\r\n".encode())

    def do_STORE(self, tag, rest, uid) -> None:
        seqset, _, rest2 = rest.partition(" ")
        op, _, flags = rest2.partition(" ")
        op = op.upper()
        if self.read_only or op.removesuffix(".SILENT").lstrip("+-") != "FLAGS":
            self.send(f"{tag} NO STORE failed.")
            return
        wanted = {SYSTEM_FLAGS.get(f.lower(), f) for f in flags.strip("() ").split()}
        out = []
        for seq, m in self.pick(seqset, uid):
            have = m.flags | ({"\\Seen"} if m.is_read else set())
            have = have | wanted if op.startswith("+") else have - wanted if op.startswith("-") else set(wanted)
            m.is_read, m.flags = "\\Seen" in have, have - {"\\Seen"}
            if not op.endswith(".SILENT"):
                out.append(f"* {seq} FETCH (FLAGS {flags_bytes(m).decode()}{f' UID {m.uid}' if uid else ''})\r\n")
        self.send(("".join(out) + f"{tag} OK STORE completed.\r\n").encode())

    def do_COPY(self, tag, rest, uid, move=False) -> None:
        seqset, _, dest = rest.partition(" ")
        dest = (args(dest) or [""])[0]
        target = folder(self.mb, dest) if dest else None
        if target is None:
            self.send(f"{tag} NO [TRYCREATE] Mailbox doesn't exist.")
            return
        if self.read_only and move:
            self.send(f"{tag} NO MOVE failed.")
            return
        picked, src_uids, dst_uids = self.pick(seqset, uid), [], []
        for _, m in picked:
            c = copy.deepcopy(m)
            c.id, c.uid = (m.id if move else new_id()), 0
            target.append(c)
            assign_uids(self.mb, target)
            src_uids.append(str(m.uid))
            dst_uids.append(str(c.uid))
        code = f"[COPYUID {uid_validity(dest)} {','.join(src_uids)} {','.join(dst_uids)}]" if picked else ""
        if not move:
            self.send(f"{tag} OK {code} COPY completed.".replace("  ", " "))
            return
        items, out = self.items(), [f"* OK {code} Moved\r\n"] if picked else []
        for seq, m in sorted(picked, key=lambda p: -p[0]):
            items.remove(m)
            out.append(f"* {seq} EXPUNGE\r\n")
        self.send(("".join(out) + f"{tag} OK MOVE completed.\r\n").encode())

    def do_MOVE(self, tag, rest, uid) -> None:
        self.do_COPY(tag, rest, uid, move=True)

    def do_EXPUNGE(self, tag, rest, uid, silent=False) -> None:
        items = self.items()
        keep = {id(m) for _, m in self.pick(rest, True)} if uid and rest else None
        out = []
        for seq in range(len(items), 0, -1):
            m = items[seq - 1]
            if "\\Deleted" in m.flags and (keep is None or id(m) in keep) and not self.read_only:
                del items[seq - 1]
                out.append(f"* {seq} EXPUNGE\r\n")
        if not silent:
            self.send(("".join(out) + f"{tag} OK EXPUNGE completed.\r\n").encode())

    def do_CLOSE(self, tag, rest, uid) -> None:
        self.do_EXPUNGE(tag, "", False, silent=True)
        self.selected = None
        self.send(f"{tag} OK CLOSE completed.")

    def do_UNSELECT(self, tag, rest, uid) -> None:
        self.selected = None
        self.send(f"{tag} OK UNSELECT completed.")


def start(sandbox) -> LineServer:
    return LineServer(sandbox, ImapHandler, implicit_tls=True)

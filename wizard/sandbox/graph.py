"""Microsoft Graph mail (/v1.0/users/{id}/... and /v1.0/me/...) as the sandbox
serves it: bearer checks, sendMail (JSON or MIME), drafts (JSON or MIME) and
their send, mail folders and child folders (graph_folders.py), messages with
paging, attachments (under 3 MB inline; larger ones through upload sessions,
graph_uploads.py), PATCH isRead, move, delete, and Graph-shaped errors.

Action parameters are taken in any case (``Message``/``message``,
``SaveToSentItems``, ``DestinationId``, ``AttachmentItem``), as Graph takes them.
Single entities carry ``@odata.context``; every update changes a message's
``changeKey`` and ``@odata.etag``. Inline file attachments of 3 MB or more (one
or all of one request together), and base64 MIME over 4 MB, get 413 (Graph's
limits: "under 3 MB" for POST attachments; about 4 MB per request, observed:
3 MB in base64)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, unquote, urlencode

from wizard.sandbox import graph_folders as folders
from wizard.sandbox.graph_json import GraphError, attachment_json, filter_messages, message_json
from wizard.sandbox.graph_json import folder_id
from wizard.sandbox.graph_uploads import Uploads, param
from wizard.sandbox.identity import GRAPH, GUID_RE, Response, json_response, object_id
from wizard.sandbox.tokens import TokenError, verify_jwt
from wizard.sandbox.mailstore import (LOCK, deliver, folder, folder_names, folder_of, may_send_as, mime_draft, new_id,
                                      now_iso, touch)
from wizard.sandbox.tenant import Message

GRAPH_AUDIENCES = (GRAPH, "00000003-0000-0000-c000-000000000000")
CHALLENGE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
             'client_id="00000003-0000-0000-c000-000000000000"')
DENIED = "Access is denied. Check credentials and try again."
RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
NOT_FOUND = "The specified object was not found in the store."
THROTTLED = "Application is over its MailboxConcurrency limit."
MAX_REQUEST = 4 * 1024 * 1024          # Graph's request size limit (about 4 MB): base64 MIME
MAX_INLINE = 3 * 1024 * 1024           # file attachments in one request, each and together: under 3 MB
# permission needed per kind of call: app role names, delegated scope names (own mailbox / someone else's)
NEEDS = {"send": ({"Mail.Send"}, {"Mail.Send"}, {"Mail.Send.Shared"}),
         "read": ({"Mail.Read", "Mail.ReadWrite"}, {"Mail.Read", "Mail.ReadWrite"},
                  {"Mail.Read.Shared", "Mail.ReadWrite.Shared"}),
         "write": ({"Mail.ReadWrite"}, {"Mail.ReadWrite"}, {"Mail.ReadWrite.Shared"})}


class Graph:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.uploads = Uploads(sandbox)
        self.bcc: dict[str, list[str]] = {}     # draft id -> Bcc addresses (the tenant model has no Bcc)

    def error(self, status: int, code: str, message: str, headers=None, client_request_id: str = "") -> Response:
        rid = str(uuid.uuid4())
        inner = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": rid,
                 "client-request-id": client_request_id or rid}
        h = {"request-id": rid, "client-request-id": inner["client-request-id"], **(headers or {})}
        return json_response(status, {"error": {"code": code, "message": message, "innerError": inner}}, h)

    def fault_response(self, status: int) -> Response:
        """An injected fault (Fault path prefix /v1.0/) in Graph's error shape."""
        if status < 400:
            return json_response(status, {})
        code, text = {429: ("ApplicationThrottled", THROTTLED), 503: ("ServiceNotAvailable", "Service unavailable."),
                      504: ("GatewayTimeout", "Gateway timeout.")}.get(status, ("UnknownError", "An internal "
                                                                                 "server error occurred."))
        return self.error(status, code, text)

    # -- routing --------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        crid = headers.get("client-request-id", "")
        try:
            if path.startswith("/api/"):             # an upload session's opaque URL (own token, no bearer)
                resp = self.uploads.handle(method, path, query, headers, body)
            else:
                resp = self._handle(method, path, query, headers, body)
        except GraphError as e:
            return self.error(e.status, e.code, e.message, e.headers, crid)
        resp.headers.setdefault("request-id", str(uuid.uuid4()))
        resp.headers.setdefault("client-request-id", crid or resp.headers["request-id"])
        return resp

    def _handle(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        claims = self._authenticate(headers)
        parts = [unquote(p) for p in path.split("/")[2:] if p]
        if parts[:1] == ["me"]:
            if "scp" not in claims:
                raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication "
                                 "flow.")
            user, rest = claims.get("upn", ""), parts[1:]
        elif len(parts) >= 2 and parts[0].lower() == "users":
            user, rest = parts[1], parts[2:]
        else:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{(parts or [''])[0]}'.")
        q = dict(parse_qsl(query, keep_blank_values=True))
        ctype = headers.get("Content-Type", "")
        return self._route(method, claims, user, rest, q, body, path, ctype)

    def _route(self, method, claims, user, rest, q, body, path, ctype="") -> Response:
        low = [r.lower() for r in rest]
        if method == "POST" and low == ["sendmail"]:
            return self.send_mail(self._mailbox(claims, user, "send"), claims, body, ctype)
        kind = "read" if method == "GET" else "send" if method == "POST" and low[-1:] == ["send"] else "write"
        mb = self._mailbox(claims, user, kind) if low[:1] in (["mailfolders"], ["messages"]) else None
        where = None                         # the folder a /mailFolders/... path names (None: the root)
        if low[:1] == ["mailfolders"]:
            if len(rest) == 1:
                return folders.list_folders(self.base, mb, None, q) if method == "GET" else \
                    folders.create_folder(self.base, mb, None, body)
            where, i = folders.resolve(mb, rest[1]), 2
            while low[i:i + 1] == ["childfolders"]:
                if len(rest) == i + 1:
                    return folders.list_folders(self.base, mb, where, q) if method == "GET" else \
                        folders.create_folder(self.base, mb, where, body)
                where, i = folders.resolve(mb, rest[i + 1]), i + 2
            if len(rest) == i and method == "GET":
                if where is None:
                    raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
                return folders.one(self.base, mb, where)
            if low[i:i + 1] != ["messages"] or where is None:
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")
            rest, low = rest[i:], low[i:]       # /mailFolders/{id}/.../messages/... = /messages/... in that folder
            if len(rest) == 1 and method == "GET":
                return self.list_messages(mb, [(where, m) for m in folder(mb, where)], q, path,
                                          f"/mailFolders('{quote(folder_id(mb.address, where), safe='')}')/messages")
        if low[:1] == ["messages"]:
            if len(rest) == 1 and method == "GET":
                return self.list_messages(mb, [(n, m) for n in folder_names(mb) for m in folder(mb, n)], q, path)
            if len(rest) == 1 and method == "POST":
                return self.create_draft(mb, claims, where or "Drafts", body, ctype)
            found = folder_of(mb, rest[1]) if len(rest) > 1 else None
            if found is None:
                raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
            name, m = found
            tail = low[2:]
            if not tail and method == "GET":
                data = message_json(self.sb.tenant, mb, name, m, q.get("$select"), self.bcc.get(m.id, ()))
                if "attachments" in q.get("$expand", ""):
                    data["attachments"] = [attachment_json(m, i) for i in range(len(m.attachments))]
                return self.entity(mb, "messages", data)
            if not tail and method == "PATCH":
                return self.patch(mb, name, m, body)
            if not tail and method == "DELETE":
                with LOCK:
                    folder(mb, name).remove(m)
                return Response(204, b"", {})
            if tail == ["move"] and method == "POST":
                return self.move(mb, name, m, body)
            if tail == ["send"] and method == "POST":
                return self.send_draft(mb, claims, name, m)
            if tail == ["attachments", "createuploadsession"] and method == "POST":
                return self.uploads.create(mb, m, body)
            if tail[:1] == ["attachments"] and method == "POST" and len(tail) == 1:
                return self.add_attachment(mb, m, body)
            if tail[:1] == ["attachments"] and method == "GET":
                return self.attachments(mb, m, rest[3:], q.get("$select"))
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0] if rest else user}'.")

    @property
    def base(self) -> str:
        return self.sb.base_url

    def entity(self, mb, collection: str, data: dict, status: int = 200) -> Response:
        """One entity with its @odata.context, as Graph answers a single message or attachment."""
        ctx = f"{self.base}/v1.0/$metadata#users('{quote(mb.address)}')/{collection}/$entity"
        return json_response(status, {"@odata.context": ctx, **data})

    # -- authentication and access ----------------------------------------------------------
    def _authenticate(self, headers) -> dict:
        auth = headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             {"WWW-Authenticate": CHALLENGE})
        try:
            claims = verify_jwt(auth[7:].strip(), self.sb.material)
        except TokenError:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature.",
                             {"WWW-Authenticate": CHALLENGE}) from None
        problem = None
        if claims.get("exp", 0) < time.time() - 300:
            problem = "Lifetime validation failed, the token is expired."
        elif claims.get("aud", "").rstrip("/") not in GRAPH_AUDIENCES:
            problem = "Access token validation failure. Invalid audience."
        elif claims.get("tid", "").lower() != self.sb.tenant.tenant_id.lower():
            problem = "Access token validation failure. Invalid issuer."
        if problem:
            raise GraphError(401, "InvalidAuthenticationToken", problem, {"WWW-Authenticate": CHALLENGE})
        return claims

    def _mailbox(self, claims, user: str, kind: str):
        tenant = self.sb.tenant
        if GUID_RE.match(user):             # /users/{object id}: the user's (or mailbox's) object ID
            known = [u.upn for u in tenant.users] + [m.address for m in tenant.mailboxes]
            user = next((a for a in known if object_id("user", a) == user.lower()), user)
        mb = tenant.mailbox(user)
        if mb is None:
            if tenant.user(user) is not None:
                raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                                 "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        roles, own, shared = NEEDS[kind]
        if "scp" not in claims:
            if not roles & set(claims.get("roles") or []):
                raise GraphError(403, "ErrorAccessDenied", DENIED)
            if claims.get("appid", "").lower() in {a.lower() for a in mb.scoped_out_apps}:
                raise GraphError(403, "ErrorAccessDenied", RAOP)
            return mb
        scp, upn = set(claims["scp"].split()), claims.get("upn", "").lower()
        if upn == mb.address.lower():
            ok = bool(own & scp)
        else:
            rights = {a.lower() for a in mb.full_access | mb.send_as}     # as EWS does
            ok = bool(shared & scp) and upn in rights
        if not ok:
            raise GraphError(403, "ErrorAccessDenied", DENIED)
        return mb

    # -- operations -----------------------------------------------------------------------------
    def _json(self, body: bytes, ctype: str = ""):
        """The JSON body of an action; an empty body is "Empty Payload", anything else that is not JSON is
        a payload Graph cannot read."""
        if not body.strip():
            raise GraphError(400, "ErrorInvalidRequest", "Empty Payload. JSON content expected.")
        try:
            return json.loads(body)
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                             "header is set and payload is of valid JSON format.") from None

    def _mime(self, body: bytes) -> tuple[Message, list[str]]:
        """A message from base64 MIME (Content-Type text/plain), with its Bcc addresses."""
        if len(body) > MAX_REQUEST:
            raise GraphError(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
        try:
            return mime_draft(base64.b64decode(body.strip(), validate=True))
        except (ValueError, TypeError):
            raise GraphError(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME "
                             "content.") from None

    def _message(self, mb, msg, body_type_default: str = "text") -> tuple[Message, list[str]]:
        """A tenant Message (and its Bcc) from a Graph message object; inline attachments under 3 MB each."""
        if not isinstance(msg, dict):
            raise GraphError(400, "ErrorInvalidRequest", "The parameter 'Message' is missing.")
        try:
            addrs = {k: [r["emailAddress"]["address"] for r in msg.get(k) or []]
                     for k in ("toRecipients", "ccRecipients", "bccRecipients")}
        except (KeyError, TypeError):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.") from None
        attachments = []
        for a in msg.get("attachments") or []:
            attachments.append(self._file_attachment(a))
        if sum(len(a["content"]) for a in attachments) >= MAX_INLINE:
            raise GraphError(413, "RequestEntityTooLarge", "The attachments of one request must be under 3 MB "
                             "together (their base64 fills Graph's 4 MB request). Attach larger files to a draft, "
                             "with an upload session (attachments/createUploadSession) for 3 MB or more.")
        body_obj = msg.get("body") or {}
        sender = ((msg.get("from") or {}).get("emailAddress") or {}).get("address") or mb.address
        m = Message(id=new_id(), sender=sender, to=addrs["toRecipients"], cc=addrs["ccRecipients"],
                    subject=msg.get("subject") or "", body=body_obj.get("content") or "", received=now_iso(),
                    attachments=attachments, body_type=(body_obj.get("contentType") or body_type_default).lower(),
                    internet_message_id=f"<{uuid.uuid4().hex}@sandbox.contoso.com>")
        return m, addrs["bccRecipients"]

    def _file_attachment(self, a) -> dict:
        if not isinstance(a, dict) or a.get("@odata.type", "#microsoft.graph.fileAttachment").lower() != \
                "#microsoft.graph.fileattachment":
            raise GraphError(400, "ErrorInvalidRequest", "Only file attachments are supported here.")
        try:
            content = base64.b64decode(a.get("contentBytes") or "", validate=True)
        except ValueError:
            raise GraphError(400, "ErrorInvalidRequest", "contentBytes is not valid base64.") from None
        if len(content) >= MAX_INLINE:
            raise GraphError(413, "RequestEntityTooLarge", f"The attachment '{a.get('name')}' is {len(content)} "
                             "bytes; attachments added in one request must be under 3 MB. Attach larger files "
                             "with an upload session (attachments/createUploadSession).")
        return {"name": a.get("name") or "attachment", "content": content,
                "content_type": a.get("contentType") or "application/octet-stream",
                "is_inline": bool(a.get("isInline")), "content_id": a.get("contentId")}

    def _submit(self, mb, claims, m: Message, recipients: list[str], save_sent: bool) -> None:
        if not recipients:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        sender = self.sb.tenant.mailbox(m.sender or mb.address)
        actor = claims.get("upn") or claims.get("appid", "")
        if sender is None or not may_send_as(sender, mb.address, actor):
            raise GraphError(403, "ErrorSendAsDenied", "The user account which was used to submit this request "
                             "does not have the right to send mail on behalf of the specified sending account., "
                             "Cannot submit message.")
        m.sender = sender.address
        deliver(self.sb.tenant, m, recipients, save_sent=save_sent)

    def send_mail(self, mb, claims, body: bytes, ctype: str = "") -> Response:
        """sendMail: JSON with ``message``/``saveToSentItems`` in any case, or base64 MIME (text/plain)."""
        if ctype.lower().startswith("text/plain"):
            m, bcc = self._mime(body)
            save = True
        else:
            data = self._json(body)
            m, bcc = self._message(mb, param(data, "Message"))
            save = param(data, "SaveToSentItems") is not False
        self._submit(mb, claims, m, m.to + m.cc + bcc, save)
        return Response(202, b"", {})

    def create_draft(self, mb, claims, where: str, body: bytes, ctype: str = "") -> Response:
        """POST /messages (or /mailFolders/{id}/messages): a draft from JSON or from base64 MIME."""
        if ctype.lower().startswith("text/plain"):
            m, bcc = self._mime(body)
        else:
            m, bcc = self._message(mb, self._json(body))
        if bcc:
            self.bcc[m.id] = bcc
        with LOCK:
            folder(mb, where, create=True).append(m)
        return self.entity(mb, "messages", message_json(self.sb.tenant, mb, where, m, None, bcc), 201)

    def send_draft(self, mb, claims, name: str, m: Message) -> Response:
        if name != "Drafts":
            raise GraphError(400, "ErrorInvalidOperation", "Only a draft can be sent.")
        bcc = self.bcc.pop(m.id, [])
        self._submit(mb, claims, m, m.to + m.cc + bcc, True)
        with LOCK:
            folder(mb, name).remove(m)
        return Response(202, b"", {})

    def add_attachment(self, mb, m: Message, body: bytes) -> Response:
        att = self._file_attachment(self._json(body))
        with LOCK:
            m.attachments.append(att)
            touch(m)
        ctx = (f"{self.base}/v1.0/$metadata#users('{quote(mb.address)}')/messages('{quote(m.id, safe='')}')"
               "/attachments/$entity")
        return json_response(201, {"@odata.context": ctx, **attachment_json(m, len(m.attachments) - 1)})

    def list_messages(self, mb, items: list[tuple[str, Message]], q: dict, path: str,
                      collection: str = "/messages") -> Response:
        """One page of (folder name, message) pairs, newest first unless $orderby says asc."""
        kept = {id(m) for m in filter_messages([m for _, m in items], q.get("$filter", ""))}
        items = [p for p in items if id(p[1]) in kept]
        order = q.get("$orderby", "receivedDateTime desc").lower().split()
        if order and order[0] != "receiveddatetime":
            raise GraphError(400, "BadRequest", "Only $orderby=receivedDateTime is supported by the sandbox.")
        ranked = sorted(enumerate(items), key=lambda p: (p[1][1].received, p[0]), reverse=order[-1:] != ["asc"])
        try:
            top = min(max(int(q.get("$top", 10)), 1), 1000)
            skip = max(int(q.get("$skip", 0)), 0)
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid $top or $skip value.") from None
        page = [pair for _, pair in ranked[skip:skip + top]]
        data = {"@odata.context": f"{self.base}/v1.0/$metadata#users('{quote(mb.address)}'){collection}",
                "value": [message_json(self.sb.tenant, mb, name, m, q.get("$select"), self.bcc.get(m.id, ()))
                          for name, m in page]}
        if skip + top < len(ranked):
            data["@odata.nextLink"] = f"{self.base}{path}?" + urlencode({**q, "$skip": skip + top}, safe="$,'")
        return json_response(200, data)

    def patch(self, mb, name: str, m: Message, body: bytes) -> Response:
        data = self._json(body)
        if not isinstance(data, dict):
            raise GraphError(400, "ErrorInvalidRequest", "A message object is expected.")
        with LOCK:
            if "isRead" in data:
                m.is_read = bool(data["isRead"])
            if "subject" in data:
                m.subject = str(data["subject"])
            touch(m)
        return self.entity(mb, "messages", message_json(self.sb.tenant, mb, name, m, None, self.bcc.get(m.id, ())))

    def move(self, mb, name: str, m: Message, body: bytes) -> Response:
        dest = param(self._json(body), "DestinationId")
        if not isinstance(dest, str) or not dest:
            raise GraphError(400, "ErrorInvalidRequest", "The parameter 'DestinationId' is missing.")
        target = folders.resolve(mb, dest)
        if target is None:
            raise GraphError(400, "ErrorInvalidOperation", "Messages cannot be moved to the root folder.")
        with LOCK:
            folder(mb, name).remove(m)
            old, m.id, m.uid = m.id, new_id(), 0    # a moved item gets a new ID, as in Exchange
            if old in self.bcc:
                self.bcc[m.id] = self.bcc.pop(old)
            folder(mb, target).append(m)
            touch(m)
        return self.entity(mb, "messages", message_json(self.sb.tenant, mb, target, m), 201)

    def attachments(self, mb, m: Message, rest: list[str], select: str | None) -> Response:
        rows = [attachment_json(m, i) for i in range(len(m.attachments))]
        ctx = f"{self.base}/v1.0/$metadata#users('{quote(mb.address)}')/messages('{quote(m.id, safe='')}')/attachments"
        if not rest:
            keep = {"@odata.type", "id"} | {s.strip() for s in select.split(",")} if select else None
            return json_response(200, {"@odata.context": ctx,
                                       "value": [{k: v for k, v in r.items() if keep is None or k in keep}
                                                 for r in rows]})
        row = next((r for r in rows if r["id"] == rest[0]), None)
        if row is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        if rest[1:] == ["$value"]:
            return Response(200, base64.b64decode(row["contentBytes"]), {"Content-Type": row["contentType"]})
        return json_response(200, {"@odata.context": ctx + "/$entity", **row})

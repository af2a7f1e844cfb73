"""Microsoft Graph mail (/v1.0/users/{id}/... and /v1.0/me/...) as the sandbox
serves it: bearer checks, sendMail, mail folders, messages with paging,
attachments, PATCH isRead, move, and Graph-shaped errors."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, unquote, urlencode

from wizard.sandbox.identity import GRAPH, GUID_RE, Response, TokenError, json_response, object_id, verify_jwt
from wizard.sandbox.graph_json import GraphError, attachment_json, filter_messages, folder_id, folder_json, message_json
from wizard.sandbox.mailstore import LOCK, WELL_KNOWN, deliver, folder, folder_names, folder_of, may_send_as, new_id, now_iso
from wizard.sandbox.tenant import Message

GRAPH_AUDIENCES = (GRAPH, "00000003-0000-0000-c000-000000000000")
CHALLENGE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
             'client_id="00000003-0000-0000-c000-000000000000"')
DENIED = "Access is denied. Check credentials and try again."
RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
NOT_FOUND = "The specified object was not found in the store."
THROTTLED = "Application is over its MailboxConcurrency limit."
# permission needed per kind of call: app role names, delegated scope names (own mailbox / someone else's)
NEEDS = {"send": ({"Mail.Send"}, {"Mail.Send"}, {"Mail.Send.Shared"}),
         "read": ({"Mail.Read", "Mail.ReadWrite"}, {"Mail.Read", "Mail.ReadWrite"},
                  {"Mail.Read.Shared", "Mail.ReadWrite.Shared"}),
         "write": ({"Mail.ReadWrite"}, {"Mail.ReadWrite"}, {"Mail.ReadWrite.Shared"})}


class Graph:
    def __init__(self, sandbox):
        self.sb = sandbox

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
            resp = self._route(method, claims, user, [r for r in rest], q, body, path)
        except GraphError as e:
            return self.error(e.status, e.code, e.message, e.headers, crid)
        resp.headers.setdefault("request-id", str(uuid.uuid4()))
        resp.headers.setdefault("client-request-id", crid or resp.headers["request-id"])
        return resp

    def _route(self, method, claims, user, rest, q, body, path) -> Response:
        low = [r.lower() for r in rest]
        if low[:1] == ["mailfolders"] and len(rest) > 3 and low[2] == "messages":
            rest, low = rest[2:], low[2:]       # /mailFolders/{id}/messages/{id}/... = /messages/{id}/...
        if method == "POST" and low == ["sendmail"]:
            return self.send_mail(self._mailbox(claims, user, "send"), claims, body)
        kind = "read" if method == "GET" else "write"
        if low[:1] == ["mailfolders"]:
            mb = self._mailbox(claims, user, kind)
            if len(rest) == 1:
                return self.list_folders(mb, q) if method == "GET" else self.create_folder(mb, body)
            name = self._folder_name(mb, rest[1])
            if len(rest) == 2 and method == "GET":
                return json_response(200, folder_json(mb, name))
            if low[2:] == ["messages"] and method == "GET":
                return self.list_messages(mb, [(name, m) for m in folder(mb, name)], q, path)
        elif low[:1] == ["messages"]:
            mb = self._mailbox(claims, user, kind)
            if len(rest) == 1 and method == "GET":
                return self.list_messages(mb, [(n, m) for n in folder_names(mb) for m in folder(mb, n)], q, path)
            found = folder_of(mb, rest[1]) if len(rest) > 1 else None
            if found is None:
                raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
            name, m = found
            if len(rest) == 2 and method == "GET":
                data = message_json(self.sb.tenant, mb, name, m, q.get("$select"))
                if "attachments" in q.get("$expand", ""):
                    data["attachments"] = [attachment_json(m, i) for i in range(len(m.attachments))]
                return json_response(200, data)
            if len(rest) == 2 and method == "PATCH":
                return self.patch(mb, name, m, body)
            if low[2:] == ["move"] and method == "POST":
                return self.move(mb, name, m, body)
            if low[2:3] == ["attachments"] and method == "GET":
                return self.attachments(m, rest[3:], q.get("$select"))
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0] if rest else user}'.")

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

    def _folder_name(self, mb, ref: str) -> str:
        if ref.lower() in WELL_KNOWN:
            return WELL_KNOWN[ref.lower()]
        for name in folder_names(mb):
            if folder_id(mb.address, name) == ref:
                return name
        if not ref.startswith("AAMk"):          # e.g. a display name such as "Processed"
            raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)

    # -- operations -----------------------------------------------------------------------------
    def send_mail(self, mb, claims, body: bytes) -> Response:
        try:
            data = json.loads(body or b"{}")
            msg = data["message"]
        except (ValueError, KeyError, TypeError):
            raise GraphError(400, "ErrorInvalidRequest", "Empty Payload. JSON content expected.") from None
        addrs = {k: [r["emailAddress"]["address"] for r in msg.get(k) or []]
                 for k in ("toRecipients", "ccRecipients", "bccRecipients")}
        recipients = addrs["toRecipients"] + addrs["ccRecipients"] + addrs["bccRecipients"]
        if not recipients:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        sender_addr = ((msg.get("from") or {}).get("emailAddress") or {}).get("address") or mb.address
        sender = self.sb.tenant.mailbox(sender_addr)
        actor = claims.get("upn") or claims.get("appid", "")
        if sender is None or not may_send_as(sender, mb.address, actor):
            raise GraphError(403, "ErrorSendAsDenied", "The user account which was used to submit this request "
                             "does not have the right to send mail on behalf of the specified sending account., "
                             "Cannot submit message.")
        attachments = []
        for a in msg.get("attachments") or []:
            if a.get("@odata.type", "#microsoft.graph.fileAttachment") != "#microsoft.graph.fileAttachment":
                raise GraphError(400, "ErrorInvalidRequest", "Only file attachments are supported here.")
            attachments.append({"name": a.get("name", "attachment"),
                                "content_type": a.get("contentType") or "application/octet-stream",
                                "content": base64.b64decode(a.get("contentBytes", ""))})
        body_obj = msg.get("body") or {}
        m = Message(id=new_id(), sender=sender.address, to=addrs["toRecipients"], cc=addrs["ccRecipients"],
                    subject=msg.get("subject", ""), body=body_obj.get("content", ""), received=now_iso(),
                    attachments=attachments, body_type=(body_obj.get("contentType") or "text").lower(),
                    internet_message_id=f"<{uuid.uuid4().hex}@sandbox.contoso.com>")
        deliver(self.sb.tenant, m, recipients, save_sent=data.get("saveToSentItems", True) is not False)
        return Response(202, b"", {})

    def list_folders(self, mb, q) -> Response:
        rows = [folder_json(mb, n) for n in folder_names(mb)]
        flt = q.get("$filter", "")
        if flt:
            m = re.match(r"^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$", flt, re.I)
            if m is None:
                raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid "
                                 "nodes.")
            rows = [r for r in rows if r["displayName"].lower() == m.group(1).replace("''", "'").lower()]
        top = q.get("$top", "100")
        return json_response(200, {"value": rows[:int(top) if top.isdigit() else 100]})

    def create_folder(self, mb, body: bytes) -> Response:
        try:
            name = json.loads(body or b"{}")["displayName"].strip()
        except (ValueError, KeyError, TypeError, AttributeError):
            raise GraphError(400, "ErrorInvalidRequest", "displayName is required.") from None
        with LOCK:
            if any(n.lower() == name.lower() for n in folder_names(mb)):
                raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            folder(mb, name, create=True)
        return json_response(201, folder_json(mb, name))

    def list_messages(self, mb, items: list[tuple[str, Message]], q: dict, path: str) -> Response:
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
        data = {"@odata.context": f"{self.sb.base_url}/v1.0/$metadata#users('{quote(mb.address)}')/messages",
                "value": [message_json(self.sb.tenant, mb, name, m, q.get("$select")) for name, m in page]}
        if skip + top < len(ranked):
            data["@odata.nextLink"] = f"{self.sb.base_url}{path}?" + urlencode({**q, "$skip": skip + top}, safe="$,'")
        return json_response(200, data)

    def patch(self, mb, name: str, m: Message, body: bytes) -> Response:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise GraphError(400, "ErrorInvalidRequest", "Invalid JSON.") from None
        if "isRead" in data:
            m.is_read = bool(data["isRead"])
        if "subject" in data:
            m.subject = str(data["subject"])
        return json_response(200, message_json(self.sb.tenant, mb, name, m))

    def move(self, mb, name: str, m: Message, body: bytes) -> Response:
        try:
            dest = json.loads(body or b"{}")["destinationId"]
        except (ValueError, KeyError, TypeError):
            raise GraphError(400, "ErrorInvalidRequest", "destinationId is required.") from None
        target = self._folder_name(mb, dest)
        with LOCK:
            folder(mb, name).remove(m)
            m.id, m.uid = new_id(), 0               # a moved item gets a new ID, as in Exchange
            folder(mb, target).append(m)
        return json_response(201, message_json(self.sb.tenant, mb, target, m))

    def attachments(self, m: Message, rest: list[str], select: str | None) -> Response:
        rows = [attachment_json(m, i) for i in range(len(m.attachments))]
        if not rest:
            keep = {"@odata.type", "id"} | {s.strip() for s in select.split(",")} if select else None
            return json_response(200, {"value": [{k: v for k, v in r.items() if keep is None or k in keep}
                                                 for r in rows]})
        row = next((r for r in rows if r["id"] == rest[0]), None)
        if row is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        if rest[1:] == ["$value"]:
            return Response(200, base64.b64decode(row["contentBytes"]), {"Content-Type": row["contentType"]})
        return json_response(200, row)

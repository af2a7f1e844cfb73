"""Exchange Web Services (SOAP 1.1) as the sandbox serves it: bearer token
checks, app-only impersonation, GetFolder, CreateItem (send), FindItem,
GetItem, and EWS-shaped errors."""

from __future__ import annotations

import base64
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from .identity import EXCHANGE, Response, TokenError, verify_jwt
from .tenant import Mailbox, Message

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
XML_CT = {"Content-Type": "text/xml; charset=utf-8"}
BEARER_CHALLENGE = ('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                    'error="invalid_token"')
# X-EWS-Policy-Reason values are the sandbox's own (the header's presence is what matters).
POLICY_DISABLED = "EwsDisabledForOrganization"
POLICY_NOT_ALLOWED = "AppIdNotInEwsAllowedAppIds"
SERVER_VERSION = ('<h:ServerVersionInfo xmlns:h="%s" MajorVersion="15" MinorVersion="20" '
                  'MajorBuildNumber="8769" MinorBuildNumber="23" Version="V2018_01_08"/>' % T)
FOLDERS = {   # distinguished id -> (display name, folder class, element)
    "root": ("Top of Information Store", None, "Folder"),
    "msgfolderroot": ("Top of Information Store", "IPF.Note", "Folder"),
    "inbox": ("Inbox", "IPF.Note", "Folder"),
    "sentitems": ("Sent Items", "IPF.Note", "Folder"),
    "drafts": ("Drafts", "IPF.Note", "Folder"),
    "deleteditems": ("Deleted Items", "IPF.Note", "Folder"),
    "outbox": ("Outbox", "IPF.Note", "Folder"),
    "junkemail": ("Junk Email", "IPF.Note", "Folder"),
    "archivemsgfolderroot": ("Top of Information Store", "IPF.Note", "Folder"),
    "calendar": ("Calendar", "IPF.Appointment", "CalendarFolder"),
    "contacts": ("Contacts", "IPF.Contact", "ContactsFolder"),
    "tasks": ("Tasks", "IPF.Task", "TasksFolder"),
}
ERROR_TEXT = {
    "ErrorNonExistentMailbox": "The SMTP address has no mailbox associated with it.",
    "ErrorImpersonateUserDenied": "The account does not have permission to impersonate the requested user.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorSendAsDenied": "The user account which was used to submit this request does not have the right "
                         "to send mail on behalf of the specified sending account., Cannot submit message.",
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorMissingEmailAddress": "When making a request as an account that does not have a mailbox, you must "
                                "specify the mailbox primary SMTP address for any distinguished folders.",
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorInvalidOperation": "The operation is not supported.",
    "ErrorInternalServerError": "An internal server error occurred. The operation failed.",
    "ErrorInvalidRecipients": "At least one recipient isn't valid.",
}


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _text(elem, *path) -> str:
    for tag in path:
        if elem is None:
            return ""
        elem = elem.find(_q(T, tag))
    return (elem.text or "").strip() if elem is not None else ""


def _envelope(body_xml: str, header: bool = True) -> bytes:
    head = f"<s:Header>{SERVER_VERSION}</s:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}">{head}<s:Body '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body_xml}</s:Body></s:Envelope>').encode()


def folder_id(address: str, name: str) -> str:
    return base64.b64encode(f"AAMk:{address.lower()}:{name}".encode()).decode()


def item_id(address: str, message_id: str) -> str:
    return base64.b64encode(f"AAMkI:{address.lower()}:{message_id}".encode()).decode()


def _parse_id(value: str, prefix: str) -> tuple[str, str] | None:
    try:
        kind, address, rest = base64.b64decode(value, validate=True).decode().split(":", 2)
    except (ValueError, UnicodeDecodeError):
        return None
    return (address, rest) if kind == prefix else None


class Ews:
    """Serves /EWS/Exchange.asmx for a Sandbox."""

    def __init__(self, sandbox):
        self.sb = sandbox

    @property
    def tenant(self):
        return self.sb.tenant

    # -- HTTP level --------------------------------------------------------------
    def handle(self, method: str, path: str, headers, body: bytes) -> Response:
        if path.rstrip("/").lower() != "/ews/exchange.asmx":
            return Response(404, b"", {})
        if method != "POST":
            return Response(405, b"", {"Allow": "POST"})
        claims = self._authenticate(headers)
        if isinstance(claims, Response):
            return claims
        app_only = "scp" not in claims
        if app_only:
            app = self.tenant.app(claims.get("appid", ""))
            delay = app.propagation_delay if app else 0.0
            if delay and time.monotonic() - self.sb.started_at < delay:
                return Response(403, b"", {})
        if self.tenant.ews_blocked and claims.get("appid", "").lower() not in \
                {a.lower() for a in self.tenant.ews_allowed_app_ids}:
            reason = POLICY_NOT_ALLOWED if self.tenant.ews_allowed_app_ids else POLICY_DISABLED
            return Response(403, b"", {"X-EWS-Policy-Reason": reason})
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self._fault("ErrorSchemaValidation", "The request failed schema validation.", status=500)
        body_elem = root.find(_q(SOAP, "Body"))
        op = body_elem[0] if body_elem is not None and len(body_elem) else None
        if op is None or not op.tag.startswith(f"{{{M}}}"):
            return self._fault("ErrorInvalidRequest", "The request is invalid.", status=500)
        name = op.tag.split("}")[1]
        actor = self._actor(root, headers, claims, app_only)
        if isinstance(actor, Response):
            return actor
        handler = getattr(self, f"op_{name}", None)
        if handler is None:
            return self._message(name, None, "ErrorInvalidOperation", ERROR_TEXT["ErrorInvalidOperation"])
        return handler(op, actor, claims)

    def _authenticate(self, headers) -> dict | Response:
        auth = headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return self._unauthorized("2000000", "The Authorization header is missing or is not a Bearer token.",
                                      "invalid_request")
        try:
            claims = verify_jwt(auth[7:].strip(), self.sb.material)
        except TokenError:
            return self._unauthorized("2000001", "The token has an invalid signature.", "invalid_signature")
        now = time.time()
        if claims.get("exp", 0) < now - 300:
            return self._unauthorized("2000001", "The token has expired.", "invalid_lifetime")
        if claims.get("aud", "").rstrip("/") not in (EXCHANGE, "00000002-0000-0ff1-ce00-000000000000"):
            return self._unauthorized("2000003", f"The audience claim value is invalid '{claims.get('aud')}'.",
                                      "invalid_resource")
        if claims.get("tid", "").lower() != self.tenant.tenant_id.lower():
            return self._unauthorized("2000001", "The token was issued by another tenant.", "invalid_tenant")
        roles = claims.get("roles") or []
        scp = (claims.get("scp") or "").split()
        if not ("full_access_as_app" in roles or "EWS.AccessAsUser.All" in scp):
            return self._unauthorized("2000008", "The token contains no permissions, or permissions can not be "
                                      "understood.", "invalid_grant")
        return claims

    def _unauthorized(self, code: str, reason: str, category: str) -> Response:
        return Response(401, b"", {"WWW-Authenticate": BEARER_CHALLENGE,
                                   "x-ms-diagnostics": f'{code};reason="{reason}";error_category="{category}"'})

    def _actor(self, root, headers, claims, app_only) -> dict | Response:
        """Who the request acts as: {'mailbox': Mailbox, 'user': upn|None, 'app': client_id}."""
        header = root.find(_q(SOAP, "Header"))
        imp = header.find(_q(T, "ExchangeImpersonation")) if header is not None else None
        target = ""
        if imp is not None:
            sid = imp.find(_q(T, "ConnectingSID"))
            target = (_text(sid, "PrimarySmtpAddress") or _text(sid, "SmtpAddress")
                      or _text(sid, "PrincipalName"))
        appid = claims.get("appid", "")
        if not app_only:
            if imp is not None:
                return self._fault("ErrorImpersonateUserDenied", ERROR_TEXT["ErrorImpersonateUserDenied"])
            user = claims.get("upn", "")
            mailbox = self.tenant.mailbox(user)
            if mailbox is None:
                return self._fault("ErrorNonExistentMailbox", ERROR_TEXT["ErrorNonExistentMailbox"])
            return {"mailbox": mailbox, "user": user, "app": appid}
        if not headers.get("X-AnchorMailbox"):
            return self._fault("ErrorInternalServerError", "An internal server error occurred. The operation "
                               "failed., The X-AnchorMailbox header is required for app-only requests.")
        if imp is None or not target:
            return {"mailbox": None, "user": None, "app": appid}
        mailbox = self.tenant.mailbox(target)
        if mailbox is None:
            return self._fault("ErrorNonExistentMailbox", ERROR_TEXT["ErrorNonExistentMailbox"])
        if appid.lower() in {a.lower() for a in mailbox.scoped_out_apps}:
            return self._fault("ErrorImpersonateUserDenied", ERROR_TEXT["ErrorImpersonateUserDenied"])
        return {"mailbox": mailbox, "user": None, "app": appid}

    # -- SOAP builders ------------------------------------------------------------------
    def _fault(self, code: str, text: str, status: int = 500, back_off_ms: int | None = None) -> Response:
        msg_xml = ""
        if back_off_ms is not None:
            msg_xml = (f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{back_off_ms}'
                       f'</t:Value></t:MessageXml>')
        body = (f'<s:Fault><faultcode xmlns:a="{T}">a:{code}</faultcode>'
                f'<faultstring xml:lang="en-US">{escape(text)}</faultstring><detail>'
                f'<e:ResponseCode xmlns:e="{E}">{code}</e:ResponseCode>'
                f'<e:Message xmlns:e="{E}">{escape(text)}</e:Message>{msg_xml}</detail></s:Fault>')
        return Response(status, _envelope(body, header=False), dict(XML_CT))

    def _message(self, op: str, payloads: list[str] | None, code: str = "NoError", text: str = "",
                 container: str | None = None) -> Response:
        """A <OpResponse> with one response message per payload (or one error message)."""
        msgs = []
        if code != "NoError":
            msgs.append(f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}'
                        f'</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0'
                        f'</m:DescriptiveLinkKey></m:{op}ResponseMessage>')
        for p in payloads or []:
            msgs.append(p if p.startswith(f"<m:{op}ResponseMessage") else
                        f'<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError'
                        f'</m:ResponseCode>{p}</m:{op}ResponseMessage>')
        body = (f'<m:{op}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{"".join(msgs)}'
                f'</m:ResponseMessages></m:{op}Response>')
        return Response(200, _envelope(body), dict(XML_CT))

    def _error_msg(self, op: str, code: str, text: str | None = None) -> str:
        return (f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>'
                f'{escape(text or ERROR_TEXT.get(code, code))}</m:MessageText><m:ResponseCode>{code}'
                f'</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{op}ResponseMessage>')

    def error_response(self, body: bytes, code: str, retry_after: int | None, status: int | None) -> Response:
        """An injected EWS error (Fault.ews_error) for the request's operation."""
        text = ERROR_TEXT.get(code, code)
        if code == "ErrorServerBusy":
            back_off = (retry_after if retry_after is not None else 5) * 1000
            return self._fault(code, text, status=status or 500, back_off_ms=back_off)
        op = "GetFolder"
        try:
            b = ET.fromstring(body).find(_q(SOAP, "Body"))
            op = b[0].tag.split("}")[1]
        except (ET.ParseError, AttributeError, IndexError, TypeError):
            pass
        resp = self._message(op, [self._error_msg(op, code, text)])
        if status:
            resp.status = status
        return resp

    # -- folders -----------------------------------------------------------------------
    def _resolve_folder(self, elem, actor) -> tuple[Mailbox, str] | str:
        """(mailbox, distinguished name) for a DistinguishedFolderId/FolderId, or an error code."""
        if elem.tag == _q(T, "DistinguishedFolderId"):
            name = elem.get("Id", "")
            address = _text(elem, "Mailbox", "EmailAddress")
        elif elem.tag == _q(T, "FolderId"):
            parsed = _parse_id(elem.get("Id", ""), "AAMk")
            if parsed is None:
                return "ErrorFolderNotFound"
            address, name = parsed
        else:
            return "ErrorFolderNotFound"
        if name not in FOLDERS:
            return "ErrorFolderNotFound"
        if address:
            mailbox = self.tenant.mailbox(address)
            if mailbox is None:
                return "ErrorNonExistentMailbox"
        elif actor["mailbox"] is not None:
            mailbox = actor["mailbox"]
        else:
            return "ErrorMissingEmailAddress"
        denied = self._access_denied(mailbox, actor)
        return denied or (mailbox, name)

    def _access_denied(self, mailbox: Mailbox, actor) -> str | None:
        if actor["user"] is None:       # app-only: full_access_as_app reaches all but scoped-out mailboxes
            if actor["app"].lower() in {a.lower() for a in mailbox.scoped_out_apps}:
                return "ErrorAccessDenied"
            return None
        user = actor["user"].lower()
        if mailbox.address.lower() == user or user in {s.lower() for s in mailbox.send_as}:
            return None
        return "ErrorAccessDenied"

    def _folder_xml(self, mailbox: Mailbox, name: str) -> str:
        display, cls, tag = FOLDERS[name]
        items = mailbox.inbox if name == "inbox" else mailbox.sent if name == "sentitems" else []
        unread = sum(1 for m in items if not m.is_read)
        parent = "" if name == "root" else \
            f'<t:ParentFolderId Id="{folder_id(mailbox.address, "root")}" ChangeKey="AQAAAA=="/>'
        fclass = f"<t:FolderClass>{cls}</t:FolderClass>" if cls else ""
        children = {"root": 2, "msgfolderroot": len(FOLDERS) - 3}.get(name, 0)
        counts = (f"<t:TotalCount>{len(items)}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>"
                  if tag != "CalendarFolder" else f"<t:ChildFolderCount>0</t:ChildFolderCount>")
        unread_xml = f"<t:UnreadCount>{unread}</t:UnreadCount>" if tag == "Folder" else ""
        return (f'<t:{tag}><t:FolderId Id="{folder_id(mailbox.address, name)}" ChangeKey="AQAAABYAAAA="/>'
                f'{parent}{fclass}<t:DisplayName>{display}</t:DisplayName>{counts}'
                f'<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true'
                f'</t:CreateContents><t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete>'
                f'<t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems>'
                f'</t:EffectiveRights>{unread_xml}</t:{tag}>')

    def op_GetFolder(self, op, actor, claims) -> Response:
        ids = op.find(_q(M, "FolderIds"))
        out = []
        for elem in list(ids) if ids is not None else []:
            res = self._resolve_folder(elem, actor)
            if isinstance(res, str):
                out.append(self._error_msg("GetFolder", res))
            else:
                out.append(f"<m:Folders>{self._folder_xml(*res)}</m:Folders>")
        return self._message("GetFolder", out)

    def op_FindFolder(self, op, actor, claims) -> Response:
        parents = op.find(_q(M, "ParentFolderIds"))
        out = []
        for elem in list(parents) if parents is not None else []:
            res = self._resolve_folder(elem, actor)
            if isinstance(res, str):
                out.append(self._error_msg("FindFolder", res))
                continue
            mailbox, name = res
            children = [f for f in FOLDERS if f not in ("root", "archivemsgfolderroot")] \
                if name in ("root", "msgfolderroot") else []
            if name == "msgfolderroot":
                children.remove("msgfolderroot")
            xml = "".join(self._folder_xml(mailbox, f) for f in children)
            out.append(f'<m:RootFolder IndexedPagingOffset="{len(children)}" TotalItemsInView="{len(children)}" '
                       f'IncludesLastItemInRange="true"><t:Folders>{xml}</t:Folders></m:RootFolder>')
        return self._message("FindFolder", out)

    # -- sending -------------------------------------------------------------------------
    def op_CreateItem(self, op, actor, claims) -> Response:
        disposition = op.get("MessageDisposition", "SaveOnly")
        items = op.find(_q(M, "Items"))
        out = []
        for msg in list(items) if items is not None else []:
            out.append(self._create_one(msg, disposition, op, actor))
        return self._message("CreateItem", out)

    def _create_one(self, msg, disposition, op, actor) -> str:
        if msg.tag != _q(T, "Message"):
            return self._error_msg("CreateItem", "ErrorInvalidOperation")
        sender_addr = _text(msg, "From", "Mailbox", "EmailAddress") or _text(msg, "Sender", "Mailbox", "EmailAddress")
        saved = op.find(_q(M, "SavedItemFolderId"))
        if not sender_addr and saved is not None and len(saved):
            sender_addr = _text(saved[0], "Mailbox", "EmailAddress")
        acting = actor["mailbox"]
        if not sender_addr:
            if acting is None:
                return self._error_msg("CreateItem", "ErrorMissingEmailAddress")
            sender_addr = acting.address
        sender = self.tenant.mailbox(sender_addr)
        if sender is None:
            return self._error_msg("CreateItem", "ErrorNonExistentMailbox")
        if not self._may_send_as(sender, actor):
            return self._error_msg("CreateItem", "ErrorSendAsDenied")
        recipients = []
        for kind in ("ToRecipients", "CcRecipients", "BccRecipients"):
            box = msg.find(_q(T, kind))
            for mb in list(box) if box is not None else []:
                addr = _text(mb, "EmailAddress")
                if addr:
                    recipients.append(addr)
        if disposition != "SaveOnly" and not recipients:
            return self._error_msg("CreateItem", "ErrorInvalidRecipients")
        body_elem = msg.find(_q(T, "Body"))
        message = Message(
            id=str(uuid.uuid4()), sender=sender.address, to=recipients, subject=_text(msg, "Subject"),
            body=(body_elem.text or "") if body_elem is not None else "",
            received=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if disposition in ("SendOnly", "SendAndSaveCopy"):
            for addr in recipients:
                box = self.tenant.mailbox(addr)
                if box is not None:
                    box.inbox.append(Message(**{**vars(message), "to": list(recipients)}))
            sender.sent.append(message)
            return "<m:Items/>"
        sender.sent.append(message)
        return (f'<m:Items><t:Message><t:ItemId Id="{item_id(sender.address, message.id)}" '
                f'ChangeKey="CQAAABYAAAA="/></t:Message></m:Items>')

    def _may_send_as(self, sender: Mailbox, actor) -> bool:
        rights = {s.lower() for s in sender.send_as}
        if actor["user"] is not None:
            return sender.address.lower() == actor["user"].lower() or actor["user"].lower() in rights
        if actor["app"].lower() in {a.lower() for a in sender.scoped_out_apps}:
            return False
        acting = actor["mailbox"]
        return acting is None or acting is sender or acting.address.lower() in rights \
            or actor["app"].lower() in rights

    # -- reading -------------------------------------------------------------------------
    def _message_xml(self, mailbox: Mailbox, m: Message, full: bool) -> str:
        to = "".join(f"<t:Mailbox><t:EmailAddress>{escape(a)}</t:EmailAddress><t:RoutingType>SMTP"
                     f"</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>" for a in m.to)
        body = f'<t:Body BodyType="Text">{escape(m.body)}</t:Body>' if full else ""
        sender = (f"<t:Mailbox><t:Name>{escape(m.sender)}</t:Name><t:EmailAddress>{escape(m.sender)}"
                  f"</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType>"
                  f"</t:Mailbox>")
        return (f'<t:Message><t:ItemId Id="{item_id(mailbox.address, m.id)}" ChangeKey="CQAAABYAAAA="/>'
                f'<t:ParentFolderId Id="{folder_id(mailbox.address, "inbox")}" ChangeKey="AQAAAA=="/>'
                f'<t:ItemClass>IPM.Note</t:ItemClass><t:Subject>{escape(m.subject)}</t:Subject>{body}'
                f'<t:DateTimeReceived>{m.received}</t:DateTimeReceived>'
                f'<t:HasAttachments>{"true" if m.attachments else "false"}</t:HasAttachments>'
                f'<t:ToRecipients>{to}</t:ToRecipients><t:IsRead>{"true" if m.is_read else "false"}</t:IsRead>'
                f'<t:Sender>{sender}</t:Sender><t:From>{sender}</t:From></t:Message>')

    def op_FindItem(self, op, actor, claims) -> Response:
        parents = op.find(_q(M, "ParentFolderIds"))
        out = []
        for elem in list(parents) if parents is not None else []:
            res = self._resolve_folder(elem, actor)
            if isinstance(res, str):
                out.append(self._error_msg("FindItem", res))
                continue
            mailbox, name = res
            items = mailbox.inbox if name == "inbox" else mailbox.sent if name == "sentitems" else []
            paging = op.find(_q(M, "IndexedPageItemView"))
            offset = int(paging.get("Offset", "0")) if paging is not None else 0
            limit = int(paging.get("MaxEntriesReturned", "1000")) if paging is not None else 1000
            page = items[offset:offset + limit]
            last = "true" if offset + len(page) >= len(items) else "false"
            xml = "".join(self._message_xml(mailbox, m, False) for m in page)
            out.append(f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView='
                       f'"{len(items)}" IncludesLastItemInRange="{last}"><t:Items>{xml}</t:Items></m:RootFolder>')
        return self._message("FindItem", out)

    def op_GetItem(self, op, actor, claims) -> Response:
        ids = op.find(_q(M, "ItemIds"))
        out = []
        for elem in list(ids) if ids is not None else []:
            parsed = _parse_id(elem.get("Id", ""), "AAMkI")
            mailbox = self.tenant.mailbox(parsed[0]) if parsed else None
            found = None
            if mailbox is not None and not self._access_denied(mailbox, actor):
                found = next((m for m in mailbox.inbox + mailbox.sent if m.id == parsed[1]), None)
            if found is None:
                out.append(self._error_msg("GetItem", "ErrorItemNotFound"))
            else:
                out.append(f"<m:Items>{self._message_xml(mailbox, found, True)}</m:Items>")
        return self._message("GetItem", out)

"""Exchange Web Services (SOAP 1.1) as the sandbox serves it: bearer token
checks, app-only impersonation, GetFolder / FindFolder / CreateFolder (mail
folders under msgfolderroot), CreateItem (send or save, file attachments kept),
FindItem (restriction, sort, paging), GetItem, GetAttachment, UpdateItem
(IsRead, Subject), MoveItem / CopyItem, and EWS-shaped errors.

The messages live in the tenant's mailboxes (``tenant.Mailbox``), shared with
Graph, SMTP and IMAP (``mailstore``): a folder created or a message moved over
EWS is seen by the other protocols."""

from __future__ import annotations

import base64
import copy
import hashlib
import operator
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from wizard.sandbox.identity import EXCHANGE, Response, TokenError, verify_jwt
from wizard.sandbox.mailstore import LOCK, deliver, message_id_header, new_id, now_iso, received_dt, to_mime
from wizard.sandbox.tenant import Mailbox, Message

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
    "ErrorInvalidIdMalformed": "Id is malformed.",
    "ErrorFolderExists": "A folder with the specified name already exists.",
    "ErrorCrossMailboxMoveCopy": "Cross-mailbox move or copy is not supported.",
    "ErrorMoveCopyFailed": "The move or copy operation failed.",
    "ErrorUnsupportedPathForQuery": "The property path is not supported for a query restriction.",
    "ErrorUnsupportedPathForSortGroup": "The property path is not supported for sorting or grouping.",
    "ErrorUnsupportedQueryFilter": "The restriction contains a filter that is not supported.",
    "ErrorInvalidValueForProperty": "The value is invalid for the property.",
    "ErrorInvalidIndexedPagingParameters": "The paging parameters are invalid.",
    "ErrorInvalidPropertySet": "Set action is invalid for property.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
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
        """(mailbox, folder key) for a DistinguishedFolderId/FolderId, or an error code.
        Keys: the distinguished names of FOLDERS, or CUSTOM + display name."""
        if elem.tag == _q(T, "DistinguishedFolderId"):
            name = elem.get("Id", "")
            address = _text(elem, "Mailbox", "EmailAddress")
            if name not in FOLDERS:
                return "ErrorFolderNotFound"
        elif elem.tag == _q(T, "FolderId"):
            parsed = _parse_id(elem.get("Id", ""), "AAMk")
            if parsed is None:
                return "ErrorInvalidIdMalformed"
            address, name = parsed
        else:
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
        if denied:
            return denied
        with LOCK:
            if not _exists(mailbox, name):
                return "ErrorFolderNotFound"
            return mailbox, _canonical(mailbox, name)

    def _access_denied(self, mailbox: Mailbox, actor) -> str | None:
        if actor["user"] is None:       # app-only: full_access_as_app reaches all but scoped-out mailboxes
            if actor["app"].lower() in {a.lower() for a in mailbox.scoped_out_apps}:
                return "ErrorAccessDenied"
            return None
        user = actor["user"].lower()
        if mailbox.address.lower() == user or user in {s.lower() for s in mailbox.send_as | mailbox.full_access}:
            return None
        return "ErrorAccessDenied"

    def _folder_xml(self, mailbox: Mailbox, key: str) -> str:
        if key.startswith(CUSTOM):
            display, tag = key[len(CUSTOM):], "Folder"
            cls = mailbox.folder_classes.get(display, "IPF.Note")
        else:
            display, cls, tag = FOLDERS[key]
        items = _items(mailbox, key) or []
        unread = sum(1 for m in items if not m.is_read)
        parent = _parent(key)
        parent_xml = "" if parent is None else \
            f'<t:ParentFolderId Id="{folder_id(mailbox.address, parent)}" ChangeKey="AQAAAA=="/>'
        fclass = f"<t:FolderClass>{cls}</t:FolderClass>" if cls else ""
        children = len(_children(mailbox, key))
        counts = (f"<t:TotalCount>{len(items)}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>"
                  if tag != "CalendarFolder" else f"<t:ChildFolderCount>{children}</t:ChildFolderCount>")
        unread_xml = f"<t:UnreadCount>{unread}</t:UnreadCount>" if tag == "Folder" else ""
        return (f'<t:{tag}><t:FolderId Id="{folder_id(mailbox.address, key)}" ChangeKey="AQAAABYAAAA="/>'
                f'{parent_xml}{fclass}<t:DisplayName>{escape(display)}</t:DisplayName>{counts}'
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
                with LOCK:
                    out.append(f"<m:Folders>{self._folder_xml(*res)}</m:Folders>")
        return self._message("GetFolder", out)

    def op_FindFolder(self, op, actor, claims) -> Response:
        """Shallow (children) or Deep (all below) traversal, with an optional
        restriction on folder:DisplayName / FolderClass / counts, and paging."""
        parents = op.find(_q(M, "ParentFolderIds"))
        deep = op.get("Traversal", "Shallow") == "Deep"
        restriction = op.find(_q(M, "Restriction"))
        out = []
        for elem in list(parents) if parents is not None else []:
            res = self._resolve_folder(elem, actor)
            if isinstance(res, str):
                out.append(self._error_msg("FindFolder", res))
                continue
            mailbox, key = res
            with LOCK:
                keys = _descendants(mailbox, key, deep)
                try:
                    if restriction is not None and len(restriction):
                        keys = [k for k in keys if _matches(restriction[0], lambda uri, k=k: _folder_field(mailbox, k, uri))]
                    offset, page, last = _page(keys, op.find(_q(M, "IndexedPageFolderView")))
                except _Refused as exc:
                    out.append(self._error_msg("FindFolder", exc.code))
                    continue
                xml = "".join(self._folder_xml(mailbox, k) for k in page)
            out.append(_root_folder(offset, len(keys), last, "Folders", xml))
        return self._message("FindFolder", out)

    def op_CreateFolder(self, op, actor, claims) -> Response:
        """Mail folders (class IPF.Note or none) directly under msgfolderroot, the only
        place the sandbox's mailbox model has custom folders; a name already
        taken there (any case, well-known names too) is ErrorFolderExists."""
        parent_elem = op.find(_q(M, "ParentFolderId"))
        folders = op.find(_q(M, "Folders"))
        parent = (self._resolve_folder(parent_elem[0], actor) if parent_elem is not None and len(parent_elem)
                  else "ErrorFolderNotFound")
        out = []
        for f in list(folders) if folders is not None else []:
            if isinstance(parent, str):
                out.append(self._error_msg("CreateFolder", parent))
                continue
            mailbox, key = parent
            display = _text(f, "DisplayName")
            cls = _text(f, "FolderClass")
            if key != "msgfolderroot" or f.tag != _q(T, "Folder") or not (cls in ("", "IPF.Note") or
                                                                          cls.startswith("IPF.Note.")):
                out.append(self._error_msg("CreateFolder", "ErrorInvalidOperation",
                                           "The sandbox creates mail folders (IPF.Note) under msgfolderroot only."))
                continue
            if not display:
                out.append(self._error_msg("CreateFolder", "ErrorInvalidOperation",
                                           "A folder needs a DisplayName."))
                continue
            with LOCK:
                taken = {_display(mailbox, k).lower() for k in _children(mailbox, "msgfolderroot")}
                if display.lower() in taken:
                    out.append(self._error_msg("CreateFolder", "ErrorFolderExists"))
                    continue
                mailbox.folders[display] = []
                mailbox.folder_classes[display] = cls
            out.append(f'<m:Folders><t:Folder><t:FolderId Id="{folder_id(mailbox.address, CUSTOM + display)}" '
                       f'ChangeKey="AQAAABYAAAA="/></t:Folder></m:Folders>')
        return self._message("CreateFolder", out)

    # -- sending -------------------------------------------------------------------------
    def op_CreateItem(self, op, actor, claims) -> Response:
        disposition = op.get("MessageDisposition", "SaveOnly")
        items = op.find(_q(M, "Items"))
        out = []
        for msg in list(items) if items is not None else []:
            out.append(self._create_one(msg, disposition, op, actor))
        return self._message("CreateItem", out)

    def _create_one(self, msg, disposition, op, actor) -> str:
        """SendOnly delivers (no copy kept, as documented); SendAndSaveCopy also
        saves a copy in SavedItemFolderId (default Sent Items); SaveOnly saves in
        SavedItemFolderId (default Drafts). File attachments are kept."""
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
        addrs = {}
        for kind in ("ToRecipients", "CcRecipients", "BccRecipients"):
            box = msg.find(_q(T, kind))
            addrs[kind] = [a for a in (_text(mb, "EmailAddress") for mb in (list(box) if box is not None else []))
                           if a]
        recipients = addrs["ToRecipients"] + addrs["CcRecipients"] + addrs["BccRecipients"]
        sending = disposition in ("SendOnly", "SendAndSaveCopy")
        if sending and not recipients:
            return self._error_msg("CreateItem", "ErrorInvalidRecipients")
        attachments = []
        box = msg.find(_q(T, "Attachments"))
        for att in list(box) if box is not None else []:
            if att.tag != _q(T, "FileAttachment"):
                return self._error_msg("CreateItem", "ErrorInvalidOperation",
                                       "The sandbox keeps file attachments only.")
            try:
                content = base64.b64decode(_text(att, "Content"), validate=True)
            except ValueError:
                return self._error_msg("CreateItem", "ErrorInvalidRequest", "The attachment content is not base64.")
            attachments.append({"name": _text(att, "Name") or "attachment",
                                "content_type": _text(att, "ContentType") or "application/octet-stream",
                                "content": content})
        target = None
        if disposition != "SendOnly":
            if saved is not None and len(saved):
                target = self._resolve_folder(saved[0], actor)
                if isinstance(target, str):
                    return self._error_msg("CreateItem", target)
            else:
                target = (sender, "sentitems" if sending else "drafts")
        body_elem = msg.find(_q(T, "Body"))
        message = Message(
            id=new_id(), sender=sender.address, to=addrs["ToRecipients"], cc=addrs["CcRecipients"],
            subject=_text(msg, "Subject"), body=(body_elem.text or "") if body_elem is not None else "",
            received=now_iso(), attachments=attachments,
            body_type="html" if body_elem is not None and body_elem.get("BodyType", "").lower() == "html" else "text",
            internet_message_id=f"<{uuid.uuid4().hex}@sandbox.contoso.com>", is_read=not sending)
        with LOCK:
            if sending:
                deliver(self.tenant, message, recipients, save_sent=False)
            if target is not None:
                dest = _items(*target, create=True)
                if dest is None:
                    return self._error_msg("CreateItem", "ErrorInvalidOperation",
                                           "The sandbox saves messages in mail folders only.")
                kept = copy.deepcopy(message)
                kept.id, kept.is_read = new_id(), True
                dest.append(kept)
        if sending:
            return "<m:Items/>"
        return (f'<m:Items><t:Message><t:ItemId Id="{item_id(target[0].address, kept.id)}" '
                f'ChangeKey="{_change_key(kept)}"/></t:Message></m:Items>')

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
    def _message_xml(self, mailbox: Mailbox, key: str, m: Message, full: bool, mime: bool = False) -> str:
        def boxes(addresses):
            return "".join(f"<t:Mailbox><t:Name>{escape(a)}</t:Name><t:EmailAddress>{escape(a)}</t:EmailAddress>"
                           f"<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>"
                           for a in addresses)
        stamp = received_dt(m).strftime("%Y-%m-%dT%H:%M:%SZ")
        mime_xml = (f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(to_mime(m)).decode()}</t:MimeContent>'
                    if mime else "")
        body = atts = ""
        if full:
            body = (f'<t:Body BodyType="{"HTML" if m.body_type == "html" else "Text"}">{escape(m.body)}'
                    f'</t:Body>')
            if m.attachments:
                atts = "<t:Attachments>" + "".join(
                    self._attachment_xml(mailbox, m, i, content=False) for i in range(len(m.attachments))
                ) + "</t:Attachments>"
        sender = f"<t:Mailbox><t:Name>{escape(m.sender)}</t:Name><t:EmailAddress>{escape(m.sender)}" \
                 f"</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType>" \
                 f"</t:Mailbox>"
        cc = f"<t:CcRecipients>{boxes(m.cc)}</t:CcRecipients>" if m.cc else ""
        return (f'<t:Message>{mime_xml}<t:ItemId Id="{item_id(mailbox.address, m.id)}" '
                f'ChangeKey="{_change_key(m)}"/>'
                f'<t:ParentFolderId Id="{folder_id(mailbox.address, key)}" ChangeKey="AQAAAA=="/>'
                f'<t:ItemClass>IPM.Note</t:ItemClass><t:Subject>{escape(m.subject)}</t:Subject>{body}{atts}'
                f'<t:DateTimeReceived>{stamp}</t:DateTimeReceived>'
                f'<t:DateTimeSent>{stamp}</t:DateTimeSent><t:DateTimeCreated>{stamp}</t:DateTimeCreated>'
                f'<t:HasAttachments>{"true" if m.attachments else "false"}</t:HasAttachments>'
                f'<t:Sender>{sender}</t:Sender><t:ToRecipients>{boxes(m.to)}</t:ToRecipients>{cc}'
                f'<t:From>{sender}</t:From><t:InternetMessageId>{escape(message_id_header(m))}'
                f'</t:InternetMessageId><t:IsRead>{"true" if m.is_read else "false"}</t:IsRead></t:Message>')

    def _attachment_xml(self, mailbox: Mailbox, m: Message, index: int, content: bool) -> str:
        a = m.attachments[index]
        data = a.get("content") or b""
        body = f"<t:Content>{base64.b64encode(data).decode()}</t:Content>" if content else ""
        return (f'<t:FileAttachment><t:AttachmentId Id="{attachment_id(mailbox.address, m.id, index)}"/>'
                f'<t:Name>{escape(a.get("name") or "attachment")}</t:Name>'
                f'<t:ContentType>{escape(a.get("content_type") or "application/octet-stream")}</t:ContentType>'
                f'<t:Size>{len(data)}</t:Size>'
                f'<t:LastModifiedTime>{received_dt(m).strftime("%Y-%m-%dT%H:%M:%SZ")}</t:LastModifiedTime>'
                f'<t:IsInline>false</t:IsInline><t:IsContactPhoto>false</t:IsContactPhoto>{body}'
                f'</t:FileAttachment>')

    def op_FindItem(self, op, actor, claims) -> Response:
        """Shallow FindItem with an optional restriction (IsRead, DateTimeReceived,
        Subject, HasAttachments), SortOrder and IndexedPageItemView."""
        parents = op.find(_q(M, "ParentFolderIds"))
        restriction = op.find(_q(M, "Restriction"))
        order = op.find(_q(M, "SortOrder"))
        out = []
        for elem in list(parents) if parents is not None else []:
            res = self._resolve_folder(elem, actor)
            if isinstance(res, str):
                out.append(self._error_msg("FindItem", res))
                continue
            mailbox, key = res
            with LOCK:
                # Associated: the folder's hidden items (none here); Shallow and SoftDeleted: its mail
                items = [] if op.get("Traversal") == "Associated" else list(_items(mailbox, key) or [])
                try:
                    if restriction is not None and len(restriction):
                        items = [m for m in items if _matches(restriction[0], lambda uri, m=m: _item_field(m, uri))]
                    if order is not None:
                        items = _sorted(items, order)
                    offset, page, last = _page(items, op.find(_q(M, "IndexedPageItemView")))
                except _Refused as exc:
                    out.append(self._error_msg("FindItem", exc.code))
                    continue
                xml = "".join(self._message_xml(mailbox, key, m, False) for m in page)
            out.append(_root_folder(offset, len(items), last, "Items", xml))
        return self._message("FindItem", out)

    def _locate(self, elem, actor) -> tuple[Mailbox, str, Message] | str:
        """(mailbox, folder key, message) for an ItemId, or an error code."""
        parsed = _parse_id(elem.get("Id", ""), "AAMkI") if elem is not None else None
        if parsed is None:
            return "ErrorInvalidIdMalformed"
        mailbox = self.tenant.mailbox(parsed[0])
        if mailbox is None:
            return "ErrorItemNotFound"
        denied = self._access_denied(mailbox, actor)
        if denied:
            return denied
        found = _find_message(mailbox, parsed[1])
        return "ErrorItemNotFound" if found is None else (mailbox, *found)

    def op_GetItem(self, op, actor, claims) -> Response:
        ids = op.find(_q(M, "ItemIds"))
        shape = op.find(_q(M, "ItemShape"))
        mime = shape is not None and (_text(shape, "IncludeMimeContent").lower() in ("true", "1") or any(
            p.get("FieldURI") == "item:MimeContent" for p in shape.iter(_q(T, "FieldURI"))))
        out = []
        for elem in list(ids) if ids is not None else []:
            with LOCK:
                res = self._locate(elem, actor)
                if isinstance(res, str):
                    out.append(self._error_msg("GetItem", res))
                else:
                    out.append(f"<m:Items>{self._message_xml(*res, True, mime)}</m:Items>")
        return self._message("GetItem", out)

    def op_GetAttachment(self, op, actor, claims) -> Response:
        ids = op.find(_q(M, "AttachmentIds"))
        out = []
        for elem in list(ids) if ids is not None else []:
            parsed = _parse_id(elem.get("Id", ""), "AAMkA")
            index, _, message_id = parsed[1].partition(":") if parsed else ("", "", "")
            if parsed is None or not index.isdigit():
                out.append(self._error_msg("GetAttachment", "ErrorInvalidIdMalformed"))
                continue
            mailbox = self.tenant.mailbox(parsed[0])
            with LOCK:
                denied = self._access_denied(mailbox, actor) if mailbox is not None else "ErrorItemNotFound"
                found = None if denied else _find_message(mailbox, message_id)
                if denied or found is None or int(index) >= len(found[1].attachments):
                    out.append(self._error_msg("GetAttachment", denied or "ErrorItemNotFound"))
                    continue
                xml = self._attachment_xml(mailbox, found[1], int(index), content=True)
            out.append(f"<m:Attachments>{xml}</m:Attachments>")
        return self._message("GetAttachment", out)

    # -- changing ----------------------------------------------------------------------------
    def op_UpdateItem(self, op, actor, claims) -> Response:
        """SetItemField of message:IsRead and item:Subject; other fields are refused
        (ErrorInvalidPropertySet). ConflictResolution NeverOverwrite checks the ChangeKey."""
        changes = op.find(_q(M, "ItemChanges"))
        never_overwrite = op.get("ConflictResolution", "AutoResolve") == "NeverOverwrite"
        out = []
        for change in list(changes) if changes is not None else []:
            id_elem = change.find(_q(T, "ItemId"))
            with LOCK:
                res = self._locate(id_elem, actor)
                if isinstance(res, str):
                    out.append(self._error_msg("UpdateItem", res))
                    continue
                mailbox, key, m = res
                sent_key = id_elem.get("ChangeKey")
                if never_overwrite and sent_key and sent_key != _change_key(m):
                    out.append(self._error_msg("UpdateItem", "ErrorIrresolvableConflict"))
                    continue
                staged = _staged_updates(change.find(_q(T, "Updates")))
                if isinstance(staged, str):
                    out.append(self._error_msg("UpdateItem", "ErrorInvalidPropertySet",
                                               f"Set action is invalid for property. ({staged})"))
                    continue
                for name, value in staged.items():
                    setattr(m, name, value)
                out.append(f'<m:Items><t:Message><t:ItemId Id="{item_id(mailbox.address, m.id)}" '
                           f'ChangeKey="{_change_key(m)}"/></t:Message></m:Items>'
                           f'<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>')
        return self._message("UpdateItem", out)

    def op_MoveItem(self, op, actor, claims) -> Response:
        return self._move_or_copy("MoveItem", op, actor, move=True)

    def op_CopyItem(self, op, actor, claims) -> Response:
        return self._move_or_copy("CopyItem", op, actor, move=False)

    def _move_or_copy(self, name: str, op, actor, move: bool) -> Response:
        """Within one mailbox, into a mail folder; the moved (or new) item gets a new ID, as in Exchange."""
        to = op.find(_q(M, "ToFolderId"))
        target = self._resolve_folder(to[0], actor) if to is not None and len(to) else "ErrorFolderNotFound"
        ids = op.find(_q(M, "ItemIds"))
        new_ids = op.get("ReturnNewItemIds", "true").lower() not in ("false", "0")
        out = []
        for elem in list(ids) if ids is not None else []:
            if isinstance(target, str):
                out.append(self._error_msg(name, target))
                continue
            with LOCK:
                res = self._locate(elem, actor)
                if isinstance(res, str):
                    out.append(self._error_msg(name, res))
                    continue
                mailbox, key, m = res
                if mailbox is not target[0]:
                    out.append(self._error_msg(name, "ErrorCrossMailboxMoveCopy"))
                    continue
                dest = _items(*target, create=True)
                if dest is None:
                    out.append(self._error_msg(name, "ErrorMoveCopyFailed"))
                    continue
                if move:
                    _items(mailbox, key).remove(m)
                    moved = m
                else:
                    moved = copy.deepcopy(m)
                moved.id, moved.uid = new_id(), 0
                dest.append(moved)
            out.append(f'<m:Items><t:Message><t:ItemId Id="{item_id(mailbox.address, moved.id)}" '
                       f'ChangeKey="{_change_key(moved)}"/></t:Message></m:Items>' if new_ids else "<m:Items/>")
        return self._message(name, out)


# -- the mailbox's folders as EWS sees them ------------------------------------------------------

CUSTOM = "~"    # folder key prefix for folders made by the mailbox (EWS CreateFolder, Graph, IMAP CREATE)
MAIL_DISPLAY = {"inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
                "drafts": "Drafts", "junkemail": "Junk Email"}
TOP_FOLDERS = [k for k in FOLDERS if k not in ("root", "msgfolderroot", "archivemsgfolderroot")]


class _Refused(Exception):
    """A restriction, sort or view the sandbox answers with an EWS error code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def attachment_id(address: str, message_id: str, index: int) -> str:
    return base64.b64encode(f"AAMkA:{address.lower()}:{index}:{message_id}".encode()).decode()


def _change_key(m: Message) -> str:
    """Changes whenever the item does (as Exchange's ChangeKey)."""
    state = f"{m.id}|{m.is_read}|{m.subject}|{sorted(m.flags)}".encode()
    return "CQAAABYAAA" + base64.b64encode(hashlib.sha1(state).digest()[:9]).decode()


def _own_folder(mb: Mailbox, display: str) -> str | None:
    """The key of mb.folders for a display name (case-insensitive)."""
    return next((k for k in mb.folders if k.lower() == display.lower()), None)


def _is_custom(name: str) -> bool:
    return name.lower() not in {v.lower() for v in MAIL_DISPLAY.values()}


def _exists(mb: Mailbox, key: str) -> bool:
    if key.startswith(CUSTOM):
        name = key[len(CUSTOM):]
        return _is_custom(name) and _own_folder(mb, name) is not None
    return key in FOLDERS


def _canonical(mb: Mailbox, key: str) -> str:
    """A custom folder's key with the display name as stored."""
    if key.startswith(CUSTOM):
        return CUSTOM + (_own_folder(mb, key[len(CUSTOM):]) or key[len(CUSTOM):])
    return key


def _display(mb: Mailbox, key: str) -> str:
    return key[len(CUSTOM):] if key.startswith(CUSTOM) else FOLDERS[key][0]


def _items(mb: Mailbox, key: str, create: bool = False) -> list[Message] | None:
    """The messages of a folder; None for a folder that holds no mail (root, calendar...)."""
    if key == "inbox":
        return mb.inbox
    if key == "sentitems":
        return mb.sent
    display = MAIL_DISPLAY.get(key) or (key[len(CUSTOM):] if key.startswith(CUSTOM) else None)
    if display is None:
        return None
    found = _own_folder(mb, display)
    if found is not None:
        return mb.folders[found]
    if key in MAIL_DISPLAY:
        return mb.folders.setdefault(display, []) if create else []
    return None


def _parent(key: str) -> str | None:
    if key == "root":
        return None
    return "root" if key in ("msgfolderroot", "archivemsgfolderroot") else "msgfolderroot"


def _children(mb: Mailbox, key: str) -> list[str]:
    if key == "root":
        return ["msgfolderroot"]
    if key == "msgfolderroot":
        return TOP_FOLDERS + [CUSTOM + n for n in mb.folders if _is_custom(n)]
    return []


def _descendants(mb: Mailbox, key: str, deep: bool) -> list[str]:
    out = []
    for child in _children(mb, key):
        out.append(child)
        if deep:
            out.extend(_descendants(mb, child, True))
    return out


def _find_message(mb: Mailbox, message_id: str) -> tuple[str, Message] | None:
    """(folder key, message) of a message anywhere in the mailbox."""
    named = {v.lower(): k for k, v in MAIL_DISPLAY.items()}
    places = [("inbox", mb.inbox), ("sentitems", mb.sent)] + \
        [(named.get(n.lower(), CUSTOM + n), items) for n, items in mb.folders.items()]
    for key, items in places:
        for m in items:
            if m.id == message_id:
                return key, m
    return None


# -- restrictions, sorting, paging ----------------------------------------------------------------

COMPARE = {"IsEqualTo": operator.eq, "IsNotEqualTo": operator.ne, "IsGreaterThan": operator.gt,
           "IsGreaterThanOrEqualTo": operator.ge, "IsLessThan": operator.lt, "IsLessThanOrEqualTo": operator.le}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(text)
    return value in ("true", "1")


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _item_field(m: Message, uri: str, code: str = "ErrorUnsupportedPathForQuery"):
    if uri == "message:IsRead":
        return m.is_read
    if uri in ("item:DateTimeReceived", "item:DateTimeSent", "item:DateTimeCreated"):
        return received_dt(m)
    if uri == "item:Subject":
        return m.subject
    if uri == "item:HasAttachments":
        return bool(m.attachments)
    if uri == "item:ItemClass":
        return "IPM.Note"
    raise _Refused(code)


def _folder_field(mb: Mailbox, key: str, uri: str):
    if uri == "folder:DisplayName":
        return _display(mb, key)
    if uri == "folder:FolderClass":
        if key.startswith(CUSTOM):
            return mb.folder_classes.get(key[len(CUSTOM):], "IPF.Note") or None
        return FOLDERS[key][1]
    if uri in ("folder:TotalCount", "folder:UnreadCount"):
        items = _items(mb, key) or []
        return len(items) if uri == "folder:TotalCount" else sum(1 for m in items if not m.is_read)
    if uri == "folder:ChildFolderCount":
        return len(_children(mb, key))
    raise _Refused("ErrorUnsupportedPathForQuery")


def _coerce(text: str, like):
    if isinstance(like, bool):
        return _bool(text)
    if isinstance(like, datetime):
        return _when(text)
    if isinstance(like, int):
        return int(text)
    return text


def _matches(expr, get) -> bool:
    """Evaluate an EWS restriction (SearchExpression) with ``get(field_uri)`` giving values."""
    tag = _local(expr.tag)
    if tag == "And":
        return all(_matches(c, get) for c in expr)
    if tag == "Or":
        return any(_matches(c, get) for c in expr)
    if tag == "Not":
        if len(expr) != 1:
            raise _Refused("ErrorUnsupportedQueryFilter")
        return not _matches(expr[0], get)
    path = expr.find(_q(T, "FieldURI"))
    if path is None:                        # IndexedFieldURI / ExtendedFieldURI
        raise _Refused("ErrorUnsupportedPathForQuery")
    value = get(path.get("FieldURI", ""))
    if tag == "Exists":
        return value is not None
    if tag in COMPARE:
        const = expr.find(f"{_q(T, 'FieldURIOrConstant')}/{_q(T, 'Constant')}")
        if const is None:
            raise _Refused("ErrorUnsupportedQueryFilter")
        try:
            other = _coerce(const.get("Value", ""), value)
        except ValueError:
            raise _Refused("ErrorInvalidValueForProperty") from None
        if value is None:
            return False
        return COMPARE[tag](value, other)
    if tag == "Contains":
        const = expr.find(_q(T, "Constant"))
        if const is None or not isinstance(value, str):
            raise _Refused("ErrorUnsupportedQueryFilter")
        text, part = value, const.get("Value", "")
        if "ignorecase" in expr.get("ContainmentComparison", "Exact").lower():
            text, part = text.lower(), part.lower()
        mode = expr.get("ContainmentMode", "Substring")
        if mode == "FullString":
            return text == part
        if mode == "Prefixed":
            return text.startswith(part)
        if mode == "PrefixOnWords":
            return any(w.startswith(part) for w in text.split())
        return part in text
    raise _Refused("ErrorUnsupportedQueryFilter")


def _sorted(items: list[Message], order) -> list[Message]:
    rows = list(items)
    for field_order in reversed(list(order)):
        path = field_order.find(_q(T, "FieldURI"))
        uri = path.get("FieldURI", "") if path is not None else ""
        rows.sort(key=lambda m: _item_field(m, uri, "ErrorUnsupportedPathForSortGroup"),
                  reverse=field_order.get("Order", "Ascending") == "Descending")
    return rows


def _page(rows: list, view) -> tuple[int, list, bool]:
    """(IndexedPagingOffset of the next page, this page, IncludesLastItemInRange)."""
    if view is None:
        return len(rows), rows, True
    try:
        offset = int(view.get("Offset", "0"))
        limit = int(view.get("MaxEntriesReturned") or max(len(rows), 1))
    except ValueError:
        raise _Refused("ErrorInvalidIndexedPagingParameters") from None
    if offset < 0 or limit < 1:
        raise _Refused("ErrorInvalidIndexedPagingParameters")
    if view.get("BasePoint", "Beginning") == "End":
        end = max(len(rows) - offset, 0)
        start = max(end - limit, 0)
        return offset + (end - start), rows[start:end], start == 0
    page = rows[offset:offset + limit]
    return offset + len(page), page, offset + len(page) >= len(rows)


def _root_folder(offset: int, total: int, last: bool, collection: str, xml: str) -> str:
    """One parent's FindFolder/FindItem result: a page (``_page``) of ``collection`` (Folders or Items)."""
    return (f'<m:RootFolder IndexedPagingOffset="{offset}" TotalItemsInView="{total}" '
            f'IncludesLastItemInRange="{"true" if last else "false"}"><t:{collection}>{xml}</t:{collection}>'
            f'</m:RootFolder>')


SETTABLE = {"message:IsRead": ("is_read", "IsRead", _bool), "item:Subject": ("subject", "Subject", str)}


def _staged_updates(updates) -> dict | str:
    """{attribute: value} for the UpdateItem changes, or the field URI the sandbox cannot set."""
    staged = {}
    for upd in list(updates) if updates is not None else []:
        path = upd.find(_q(T, "FieldURI"))
        uri = path.get("FieldURI", "") if path is not None else _local(upd.tag)
        if _local(upd.tag) != "SetItemField" or uri not in SETTABLE:
            return uri
        attr, tag, parse = SETTABLE[uri]
        container = next((c for c in upd if c is not path), None)
        value = container.find(_q(T, tag)) if container is not None else None
        if value is None:
            return uri
        try:
            staged[attr] = parse((value.text or "").strip() if parse is _bool else (value.text or ""))
        except ValueError:
            return uri
    return staged

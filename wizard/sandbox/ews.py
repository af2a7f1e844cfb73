"""Exchange Web Services (SOAP 1.1) as the sandbox serves it: bearer token
checks, app-only impersonation, GetFolder / FindFolder / CreateFolder (mail
folders under msgfolderroot), CreateItem (send or save, file attachments kept;
from MimeContent too) and SendItem of a saved item (ews_drafts.py),
FindItem (restriction, sort, paging), GetItem, GetAttachment, UpdateItem
(IsRead, Subject), MoveItem / CopyItem, and EWS-shaped errors.

The messages live in the tenant's mailboxes (``tenant.Mailbox``), shared with
Graph, SMTP and IMAP (``mailstore``): a folder created or a message moved over
EWS is seen by the other protocols."""


from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from wizard.sandbox.identity import EXCHANGE, Response
from wizard.sandbox.tokens import TokenError, verify_jwt
from wizard.sandbox.mailstore import LOCK
from wizard.sandbox.tenant import Mailbox
from wizard.sandbox.ews_xml import (BEARER_CHALLENGE, E, ERROR_TEXT, FOLDERS, M, POLICY_DISABLED,
                                    POLICY_NOT_ALLOWED, SOAP, T, XML_CT, _envelope, _parse_id, _q, _text,
                                    folder_id)
from wizard.sandbox.ews_folders import (CUSTOM, _Refused, _canonical, _children, _descendants, _display,
                                        _exists, _items, _parent)
from wizard.sandbox.ews_query import _folder_field, _matches, _page, _root_folder
from wizard.sandbox.ews_items import ItemOperations
from wizard.sandbox.ews_drafts import DraftOperations


class Ews(ItemOperations, DraftOperations):
    """Serves /EWS/Exchange.asmx for a Sandbox."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.bcc: dict[str, list[str]] = {}     # saved MIME item id -> Bcc addresses (the tenant model has none)

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

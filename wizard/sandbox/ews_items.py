"""The sandbox's EWS item operations (messages and their attachments)."""

from __future__ import annotations

import base64
import copy
import uuid
from xml.sax.saxutils import escape

from wizard.sandbox.identity import Response
from wizard.sandbox.mailstore import LOCK, deliver, message_id_header, new_id, now_iso, received_dt, to_mime
from wizard.sandbox.tenant import Mailbox, Message
from wizard.sandbox.ews_xml import M, T, _parse_id, _q, _text, folder_id, item_id
from wizard.sandbox.ews_folders import _Refused, _change_key, _find_message, _items, attachment_id
from wizard.sandbox.ews_query import _item_field, _matches, _page, _root_folder, _sorted, _staged_updates


class ItemOperations:
    """CreateItem (send or save), FindItem, GetItem, GetAttachment, UpdateItem,
    MoveItem and CopyItem: mixed into ``Ews``, which routes to them."""

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
        mime = msg.find(_q(T, "MimeContent"))
        if mime is not None:                        # the message as it came (ews_drafts)
            return self._create_from_mime(msg, mime, disposition, op, actor)
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
                f'<t:DateTimeReceived>{stamp}</t:DateTimeReceived><t:IsDraft>{"true" if key == "drafts" else "false"}</t:IsDraft>'
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

"""The sandbox's EWS messages from MIME and their sending: CreateItem with ``MimeContent`` (base64 RFC 5322,
parsed as Graph's MIME drafts are: ``mailstore.mime_draft``), SendItem of a saved item and DeleteItem.

As Exchange documents it:
- CreateItem ``MessageDisposition="SaveOnly"`` saves the item in ``SavedItemFolderId`` (Drafts when absent) and
  returns its ItemId with a ChangeKey; ``SendOnly`` sends without a copy and returns no ID;
  ``SendAndSaveCopy`` sends and keeps a copy (Sent Items when no folder is given).
- ``ToRecipients`` / ``CcRecipients`` / ``BccRecipients`` beside ``MimeContent`` add to the MIME's own (a client
  keeps Bcc out of the MIME and names them there, as Thunderbird's EWS send does).
- SendItem needs the item's current ChangeKey (missing, empty or outdated: ``ErrorStaleObject``);
  ``SaveItemToFolder="true"`` keeps the sent copy in ``SavedItemFolderId`` or else Sent Items, ``"false"`` with a
  folder is ``ErrorInvalidSendItemSaveSettings``. A sent item leaves its folder, and its copy gets a new ID
  (an item moved in the store gets a new ID), so GetItem of the draft's ID then answers ``ErrorItemNotFound``.
- The Send As right is checked when the item is sent (``ErrorSendAsDenied``), not when a draft is saved.
"""

from __future__ import annotations

import base64
import copy

from wizard.sandbox.identity import Response
from wizard.sandbox.mailstore import LOCK, deliver, mime_draft, new_id
from wizard.sandbox.ews_xml import M, T, _q, _text, item_id
from wizard.sandbox.ews_folders import _change_key, _items


class DraftOperations:
    """Mixed into ``Ews`` beside ``ItemOperations``; keeps the Bcc of saved MIME items in ``self.bcc``."""

    def _addresses(self, msg, kind: str) -> list[str]:
        box = msg.find(_q(T, kind))
        return [a for a in (_text(mb, "EmailAddress") for mb in (list(box) if box is not None else [])) if a]

    def _create_from_mime(self, msg, mime, disposition: str, op, actor) -> str:
        """One CreateItem response message for a <t:Message> carrying <t:MimeContent>."""
        try:
            m, bcc = mime_draft(base64.b64decode((mime.text or "").strip(), validate=True))
        except (ValueError, TypeError):
            return self._error_msg("CreateItem", "ErrorMimeContentConversionFailed",
                                   "The MIME content could not be converted: it is not base64 of a message with "
                                   "header lines.")
        m.to += self._addresses(msg, "ToRecipients")
        m.cc += self._addresses(msg, "CcRecipients")
        bcc += self._addresses(msg, "BccRecipients")
        acting = actor["mailbox"]
        sender = self.tenant.mailbox(m.sender) if m.sender else acting
        if sender is None and acting is None:
            return self._error_msg("CreateItem", "ErrorNonExistentMailbox")
        sending = disposition in ("SendOnly", "SendAndSaveCopy")
        target = None
        if disposition != "SendOnly":
            saved = op.find(_q(M, "SavedItemFolderId"))
            if saved is not None and len(saved):
                target = self._resolve_folder(saved[0], actor)
                if isinstance(target, str):
                    return self._error_msg("CreateItem", target)
            else:
                home = acting or sender
                target = (home, "sentitems" if sending else "drafts")
        if sending:
            refused = self._refuse_send(m, bcc, actor)
            if refused:
                return self._error_msg("CreateItem", refused)
        with LOCK:
            if sending:
                _deliver(self.tenant, m, bcc)
            m.is_read = True
            if target is None:
                return "<m:Items/>"
            dest = _items(*target, create=True)
            if dest is None:
                return self._error_msg("CreateItem", "ErrorInvalidOperation",
                                       "The sandbox saves messages in mail folders only.")
            dest.append(m)
            if not sending and bcc:
                self.bcc[m.id] = bcc
        if sending:
            return "<m:Items/>"
        return (f'<m:Items><t:Message><t:ItemId Id="{item_id(target[0].address, m.id)}" '
                f'ChangeKey="{_change_key(m)}"/></t:Message></m:Items>')

    def _refuse_send(self, m, bcc: list[str], actor) -> str | None:
        """The response code that refuses sending ``m`` for ``actor``, or None."""
        sender = self.tenant.mailbox(m.sender) if m.sender else actor["mailbox"]
        if sender is None:
            return "ErrorNonExistentMailbox"
        if not self._may_send_as(sender, actor):
            return "ErrorSendAsDenied"
        m.sender = sender.address
        if not (m.to or m.cc or bcc):
            return "ErrorInvalidRecipients"
        return None

    def op_SendItem(self, op, actor, claims) -> Response:
        save = op.get("SaveItemToFolder", "").strip().lower() in ("true", "1")
        saved = op.find(_q(M, "SavedItemFolderId"))
        folder_given = saved is not None and len(saved)
        ids = op.find(_q(M, "ItemIds"))
        out = []
        for elem in list(ids) if ids is not None else []:
            if folder_given and not save:
                out.append(self._error_msg("SendItem", "ErrorInvalidSendItemSaveSettings",
                                           "SavedItemFolderId is given but SaveItemToFolder is false."))
                continue
            target = self._resolve_folder(saved[0], actor) if folder_given else None
            if isinstance(target, str):
                out.append(self._error_msg("SendItem", target))
                continue
            with LOCK:
                res = self._locate(elem, actor)
                if isinstance(res, str):
                    out.append(self._error_msg("SendItem", res))
                    continue
                mailbox, key, m = res
                if not elem.get("ChangeKey") or elem.get("ChangeKey") != _change_key(m):
                    out.append(self._error_msg("SendItem", "ErrorStaleObject", "The change key is missing or "
                                               "outdated: get the item again for its current change key."))
                    continue
                bcc = self.bcc.get(m.id, [])
                refused = self._refuse_send(m, bcc, actor)
                if refused:
                    out.append(self._error_msg("SendItem", refused))
                    continue
                _deliver(self.tenant, m, bcc)
                self.bcc.pop(m.id, None)
                _items(mailbox, key).remove(m)
                if save:
                    place = target or (mailbox, "sentitems")
                    kept = copy.deepcopy(m)
                    kept.id, kept.uid, kept.is_read = new_id(), 0, True
                    _items(*place, create=True).append(kept)
            out.append("")
        return self._message("SendItem", out)

    def op_DeleteItem(self, op, actor, claims) -> Response:
        """DeleteItem (any ``DeleteType``): the items leave their folder; one not there: ``ErrorItemNotFound``."""
        ids = op.find(_q(M, "ItemIds"))
        out = []
        for elem in list(ids) if ids is not None else []:
            with LOCK:
                res = self._locate(elem, actor)
                if isinstance(res, str):
                    out.append(self._error_msg("DeleteItem", res))
                    continue
                mailbox, key, m = res
                self.bcc.pop(m.id, None)
                _items(mailbox, key).remove(m)
            out.append("")
        return self._message("DeleteItem", out)


def _deliver(tenant, m, bcc: list[str]) -> None:
    """A copy of ``m`` into each tenant recipient's inbox, unread (no copy in Sent Items: the caller keeps one)."""
    sent = copy.deepcopy(m)
    sent.is_read = False
    deliver(tenant, sent, m.to + m.cc + bcc, save_sent=False)

"""EWS for the runtime, through exchangelib (imported lazily).

Same rules as the connection test (``wizard.runtime.ews_client``): a token we got
with MSAL (exchangelib never fetches one itself), explicit server version, no
autodiscover, ``FailFast``, app-only as impersonation (exchangelib adds the
``ExchangeImpersonation`` SOAP header and ``X-AnchorMailbox``), TLS verified
against our CA bundle by ``TrustingAdapter``. Unlike the test it keeps one
exchangelib configuration per token, so 20 messages share one HTTP session.
"""

from __future__ import annotations

import copy
import threading
from contextlib import ExitStack
from datetime import datetime, timezone

from wizard.diagnosis.classify import diagnose_ews
from wizard.runtime.model import Message, MailError

BUILD = (15, 20)
# The largest EWS request we send: Exchange Server's EWS takes 67,108,864 bytes by default (web.config
# maxAllowedContentLength / maxReceivedMessageSize); Exchange Online does not document its own (64 MB
# reported). The MIME goes base64-encoded in the SOAP body, so mail up to about 48 MB fits.
MAX_REQUEST = 64 * 1024 * 1024 - 64 * 1024
# requests_oauthlib (under exchangelib) logs the whole token dict and the
# Authorization header at debug level, exchangelib the request headers: one
# filter for the runtime and the connection test, in wizard.net.redact.


def _quiet_token_logs() -> None:
    from wizard.net import redact
    redact.install()


class EwsTransport:
    def __init__(self, cfg, tokens, *, server: str | None = None, port: int | None = None,
                 max_connections: int = 16):
        self.cfg = copy.deepcopy(cfg)
        if server:
            self.cfg.outgoing.server = server
        if port:
            self.cfg.outgoing.port = port
        self.tokens = tokens
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._configs: dict[tuple, object] = {}     # (token, flow) -> exchangelib Configuration
        self._accounts: dict[tuple, object] = {}    # (address, token, flow) -> Account
        self._processed: dict[tuple, object] = {}   # (address, folder name) -> Folder
        self._stack = ExitStack()
        self._route = None
        self._change_keys: dict[str, str] = {}      # draft item id -> its ChangeKey (SendItem needs the current one)

    # -- plumbing -----------------------------------------------------------------------
    def _ensure_route(self):
        if self._route is None:
            _quiet_token_logs()
            from wizard.runtime.ews_client import route
            self._route = self._stack.enter_context(route(self.cfg))
        return self._route

    def _configuration(self, token: str):
        from exchangelib import OAUTH2, Build, Configuration, FailFast, Version
        from wizard.runtime.ews_client import credentials_cls
        config = self._configs.get(token)
        if config is None:
            self._drop_stale(token)
            creds = credentials_cls()(client_id=self.cfg.microsoft.client_id,
                                       access_token={"access_token": token, "token_type": "Bearer"})
            config = Configuration(service_endpoint=self.cfg.outgoing.ews_url, credentials=creds,
                                   version=Version(build=Build(*BUILD)), retry_policy=FailFast(),
                                   auth_type=OAUTH2, max_connections=self.max_connections)
            self._configs[token] = config
        return config

    def _drop_stale(self, token: str) -> None:
        """A new token replaces the old: close the old sessions."""
        from wizard.runtime.ews_client import forget
        for key in [k for k in self._accounts if k[1] != token]:
            forget(self._accounts.pop(key))
        for key in [k for k in self._configs if k != token]:
            del self._configs[key]
        self._processed.clear()                     # folder objects hold the old account

    def _account(self, address: str, who, fresh: bool = False):
        from exchangelib import DELEGATE, IMPERSONATION, Account
        token = self.tokens.token("exchange", who)
        with self._lock:
            self._ensure_route()
            key = (address.lower(), token, who.flow)
            account = None if fresh else self._accounts.get(key)
            if account is None:
                account = Account(primary_smtp_address=address, config=self._configuration(token),
                                  autodiscover=False, access_type=IMPERSONATION if who.app_only else DELEGATE)
                if not fresh:
                    self._accounts[key] = account
            return account

    def _run(self, address: str, who, work, fresh: bool = False):
        """work(account) with errors turned into MailError; one retry with a new
        token when Exchange says 401 (token revoked or expired early)."""
        for attempt in (1, 2):
            try:
                return work(self._account(address, who, fresh))
            except MailError:
                raise
            except Exception as exc:
                route = self._route
                diag = diagnose_ews(exc, cfg=self.cfg, flow=who.flow, address=address,
                                    response=route.last if route else None, host=self.cfg.outgoing.server,
                                    port=self.cfg.outgoing.port)
                if diag.code.startswith("ews.401") and attempt == 1:
                    self.tokens.forget("exchange", who)
                    continue
                raise MailError(diag, account=address) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        from wizard.runtime.ews_client import forget
        with self._lock:
            for account in self._accounts.values():
                forget(account)
            self._accounts.clear()
            self._configs.clear()
            self._processed.clear()
            self._stack.close()
            self._route = None

    # -- operations -------------------------------------------------------------------------
    def send(self, who, sender: str, to: list[str], cc: list[str], subject: str, body: str, attachments,
             save_copy: bool = False) -> None:
        if len(subject) > 255:      # exchangelib refuses it before any request; say so, not "unexpected answer"
            from wizard.runtime.model import error
            raise error("config.invalid", cfg=self.cfg,
                        service_message=f"the subject is {len(subject)} characters long; EWS allows at most 255")

        def work(account):
            from exchangelib import FileAttachment, Mailbox
            from exchangelib import Message as EwsMessage
            msg = EwsMessage(account=account, subject=subject, body=body,
                             to_recipients=[Mailbox(email_address=a) for a in to],
                             cc_recipients=[Mailbox(email_address=a) for a in cc] or None)
            if not who.app_only and who.username and who.username.lower() != sender.lower():
                msg.author = Mailbox(email_address=sender)      # Send As: From is the sender, not the user
            for att in attachments:
                msg.attach(FileAttachment(name=att.name, content=att.data, content_type=att.content_type))
            msg.send(save_copy=save_copy)
        # Delegated: the signed-in user's own session sends (From carries the sender).
        self._run(sender if who.app_only or not who.username else who.username, who, work)

    # -- MIME drafts (the relay: exactly once) ------------------------------------------------
    def _drafts_owner(self, who, sender: str) -> str:
        """The mailbox whose Drafts hold the relay's drafts: the sender's (app-only: impersonated), or the
        signed-in user's own (delegated: the MIME's From makes it Send As, as ``send`` does)."""
        return sender if who.app_only or not who.username else who.username

    def create_mime_draft(self, who, sender: str, mime: bytes, bcc=()) -> str:
        """A draft in Drafts from the RFC 5322 bytes as they are (CreateItem, MessageDisposition="SaveOnly",
        ``MimeContent`` base64; ``bcc`` as ``BccRecipients`` beside it, the MIME left as it came); returns its
        ItemId. The request must stay under ``MAX_REQUEST``."""
        if 4 * ((len(mime) + 2) // 3) > MAX_REQUEST:
            from wizard.runtime.model import error
            raise error("ErrorMessageSizeExceeded", cfg=self.cfg, service_message=f"the message is {len(mime)} "
                        f"bytes; in base64 it passes the {MAX_REQUEST // (1024 * 1024)} MB an EWS request takes")
        owner = self._drafts_owner(who, sender)

        def work(account):
            from exchangelib.folders import Drafts
            made = _mime_create_item()(account=account).get(
                items=[(mime, list(bcc))], folder=_distinguished(account, Drafts, owner),
                message_disposition="SaveOnly", send_meeting_invitations="SendToNone")
            return made.id, made.changekey
        item, key = self._run(owner, who, work)
        self._change_keys[item] = key
        return item

    def draft_state(self, who, sender: str, draft_id: str) -> str:
        """"draft" (still unsent), "sent" (IsDraft false) or "gone" (ErrorItemNotFound: a sent item leaves Drafts
        for Sent Items under a new ID; or it was deleted). GetItem, IdOnly + IsDraft."""
        owner = self._drafts_owner(who, sender)
        state, key = self._run(owner, who, lambda account: _item_state(account, draft_id))
        if key:
            self._change_keys[draft_id] = key
        return state

    def send_draft(self, who, sender: str, draft_id: str) -> None:
        """SendItem (SaveItemToFolder=true: the copy in Sent Items) with the draft's current ChangeKey, which
        EWS requires (a missing or outdated one: ErrorStaleObject, then read it again once)."""
        owner = self._drafts_owner(who, sender)

        def work(account):
            from exchangelib.errors import ErrorStaleObject
            from exchangelib.folders import SentItems
            from exchangelib.services import SendItem
            key = self._change_keys.get(draft_id)
            for attempt in (1, 2):
                if key is None:
                    key = _item_state(account, draft_id)[1]
                try:
                    SendItem(account=account).get(items=[(draft_id, key)],
                                                  saved_item_folder=_distinguished(account, SentItems, owner))
                    return
                except ErrorStaleObject:
                    if attempt == 2:
                        raise
                    key = None
        self._run(owner, who, work)
        self._change_keys.pop(draft_id, None)

    def delete_message(self, who, sender: str, message_id: str) -> None:
        """DeleteItem (HardDelete) of a draft that will not be sent; one already gone is no error."""
        owner = self._drafts_owner(who, sender)

        def work(account):
            from exchangelib.errors import ErrorItemNotFound
            from exchangelib.services import DeleteItem
            for answer in DeleteItem(account=account).call(
                    items=[(message_id, None)], delete_type="HardDelete", send_meeting_cancellations="SendToNone",
                    affected_task_occurrences="AllOccurrences", suppress_read_receipts=True):
                if isinstance(answer, Exception) and not isinstance(answer, ErrorItemNotFound):
                    raise answer
        self._run(owner, who, work)
        self._change_keys.pop(message_id, None)

    def check(self, address: str, who) -> None:
        """Open the inbox of ``address`` (GetFolder)."""
        def work(account):
            from exchangelib.properties import DistinguishedFolderId, Mailbox
            from exchangelib.services import GetFolder
            inbox = DistinguishedFolderId(id="inbox", mailbox=Mailbox(email_address=address))
            service = GetFolder(account=account)
            # One GetFolder of the inbox, answers not parsed into folder objects (needs no root folder).
            for answer in service._chunked_get_elements(service.get_payload, items=[inbox], additional_fields=[],
                                                        shape="IdOnly"):
                if isinstance(answer, Exception):
                    raise answer
        self._run(address, who, work, fresh=True)

    def fetch(self, address: str, who, since: datetime | None, limit: int, unprocessed_only: bool) -> list[Message]:
        def work(account):
            from exchangelib import EWSDateTime
            qs = account.inbox.all()
            if unprocessed_only:
                qs = qs.filter(is_read=False)
            if since is not None:
                qs = qs.filter(datetime_received__gte=EWSDateTime.from_datetime(_aware(since)))
            found = list(qs.order_by("datetime_received")[: max(limit * 2, limit)])
            # Filter again here: servers that ignore a restriction must not make us re-read mail.
            found = [i for i in found if not (unprocessed_only and i.is_read)
                     and not (since and i.datetime_received and i.datetime_received < _aware(since))][:limit]
            if not found:
                return []
            full = [i for i in account.fetch(ids=found) if not isinstance(i, Exception)]
            return [_message(i, address) for i in full]
        return self._run(address, who, work)

    def mark_processed(self, address: str, who, message_id: str, folder: str | None) -> None:
        def work(account):
            item = next(iter(account.fetch(ids=[(message_id, None)])), None)
            if item is None or isinstance(item, Exception):
                if isinstance(item, Exception):
                    raise item
                return
            item.is_read = True
            item.save(update_fields=["is_read"])
            if folder:
                key = (address.lower(), folder.lower())
                target = self._processed.get(key)
                if target is None:
                    target = self._processed[key] = _processed_folder(account, folder)
                item.move(target)
        self._run(address, who, work)


def _distinguished(account, cls, address: str):
    """A distinguished folder (Drafts, SentItems...) of ``address`` addressed by its name: no request."""
    from exchangelib.folders import Root
    from exchangelib.properties import DistinguishedFolderId, Mailbox
    return cls(_distinguished_id=DistinguishedFolderId(id=cls.DISTINGUISHED_FOLDER_ID,
                                                       mailbox=Mailbox(email_address=address)),
               root=Root(account=account))


def _item_state(account, item_id: str) -> tuple[str, str | None]:
    """("draft" | "sent" | "gone", the item's ChangeKey or None) from one GetItem."""
    from exchangelib.errors import ErrorItemNotFound
    from exchangelib.fields import FieldPath
    from exchangelib.items import Message as EwsMessage
    from exchangelib.services import GetItem
    fields = [FieldPath(field=EwsMessage.get_field_by_fieldname("is_draft"))]
    for answer in GetItem(account=account).call(items=[(item_id, None)], additional_fields=fields, shape="IdOnly"):
        if isinstance(answer, ErrorItemNotFound):
            return "gone", None
        if isinstance(answer, Exception):
            raise answer
        return ("sent" if answer.is_draft is False else "draft"), answer.changekey
    return "gone", None


_MIME_CREATE = None


def _mime_create_item():
    """exchangelib's CreateItem with a <t:Message> of only ``MimeContent`` (and ``BccRecipients``): its own
    Message model would add Importance, Sensitivity, IsRead... defaults, which could override the MIME's."""
    global _MIME_CREATE
    if _MIME_CREATE is None:
        import base64
        from exchangelib.services import CreateItem
        from exchangelib.services.common import folder_ids_element
        from exchangelib.util import add_xml_child, create_element

        class MimeCreateItem(CreateItem):
            def get_payload(self, items, folder, message_disposition, send_meeting_invitations):
                payload = create_element(f"m:{self.SERVICE_NAME}", attrs=dict(MessageDisposition=message_disposition))
                payload.append(folder_ids_element(folders=[folder], version=self.account.version,
                                                  tag="m:SavedItemFolderId"))
                elems = create_element("m:Items")
                for mime, bcc in items:
                    msg = create_element("t:Message")
                    add_xml_child(msg, "t:MimeContent", base64.b64encode(mime).decode("ascii"))
                    if bcc:
                        box = create_element("t:BccRecipients")
                        for address in bcc:
                            mailbox = create_element("t:Mailbox")
                            add_xml_child(mailbox, "t:EmailAddress", address)
                            box.append(mailbox)
                        msg.append(box)
                    elems.append(msg)
                payload.append(elems)
                return payload
        _MIME_CREATE = MimeCreateItem
    return _MIME_CREATE


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _processed_folder(account, name: str):
    from exchangelib import Folder
    from exchangelib.errors import ErrorFolderNotFound
    root = account.msg_folder_root
    try:
        return root / name
    except ErrorFolderNotFound:
        f = Folder(parent=root, name=name)
        f.save()
        return f


def _message(item, address: str) -> Message:
    sender = item.sender or item.author
    received = item.datetime_received
    return Message(
        id=item.id, account=address,
        sender=(sender.email_address if sender else "") or "",
        to=[r.email_address for r in (item.to_recipients or []) if r.email_address],
        subject=item.subject or "",
        received=datetime.fromtimestamp(received.timestamp(), timezone.utc) if received else None,
        body_text=str(item.text_body or item.body or ""),
        attachments=[(a.name or "", a.content_type or "application/octet-stream", int(a.size or 0))
                     for a in (item.attachments or [])],
        is_read=bool(item.is_read))

"""EWS on the sandbox through exchangelib: attachments, UpdateItem, MoveItem /
CopyItem, custom folders, FindItem restrictions, and the EWS error codes."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
import requests
from requests.adapters import HTTPAdapter

from sandbox_helpers import app_token
from wizard.sandbox import sample

EXCHANGE = "https://outlook.office365.com"
ORDERS, INVOICES = sample.INCOMING
PDF = b"%PDF-1.4 sandbox \x00\x01\xfe" * 3
SOAP_HEAD = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
             'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
             'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header>'
             '<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>'
             '<t:PrimarySmtpAddress>{anchor}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>'
             '</s:Header><s:Body>')


def soap(sb, token, body: str, anchor=ORDERS) -> str:
    """A raw SOAP request as ``anchor`` (app-only impersonation); the response text."""
    r = requests.post(f"{sb.base_url}/EWS/Exchange.asmx", data=SOAP_HEAD.format(anchor=anchor) + body +
                      "</s:Body></s:Envelope>", verify=sb.ca_path, timeout=5,
                      headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {token}",
                               "X-AnchorMailbox": anchor})
    assert r.status_code == 200, r.text
    return r.text


@pytest.fixture
def account(sandbox, monkeypatch):
    """account(address) -> an exchangelib Account impersonating ``address`` with the sample app."""
    from exchangelib import (IMPERSONATION, Account, Build, Configuration, FailFast,
                             OAuth2AuthorizationCodeCredentials, Version)
    from exchangelib.protocol import BaseProtocol

    class SandboxCA(HTTPAdapter):
        def cert_verify(self, conn, url, verify, cert):
            return super().cert_verify(conn, url, sandbox.ca_path, cert)

        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            return super().get_connection_with_tls_context(request, sandbox.ca_path, proxies=proxies, cert=cert)

    monkeypatch.setattr(BaseProtocol, "HTTP_ADAPTER_CLS", SandboxCA)
    monkeypatch.setattr(BaseProtocol, "TIMEOUT", 5)
    token = app_token(sandbox)

    def make(address):
        config = Configuration(
            service_endpoint=f"{sandbox.base_url}/EWS/Exchange.asmx",
            credentials=OAuth2AuthorizationCodeCredentials(access_token={"access_token": token,
                                                                         "token_type": "Bearer"}),
            version=Version(build=Build(15, 20)), retry_policy=FailFast())
        return Account(primary_smtp_address=address, config=config, autodiscover=False, access_type=IMPERSONATION)

    make.token = token
    return make


def send(acc, subject, to=ORDERS, attach=None, save_copy=False, **kw):
    from exchangelib import FileAttachment, Message
    msg = Message(account=acc, subject=subject, body=f"Body of {subject}", to_recipients=[to], **kw)
    for name, ctype, data in attach or []:
        msg.attach(FileAttachment(name=name, content=data, content_type=ctype))
    msg.send(save_copy=save_copy)


def test_attachments_survive_send_and_come_back(sandbox, account):
    erp = account(sample.SENDER)
    send(erp, "Invoice 1", attach=[("invoice.pdf", "application/pdf", PDF), ("rows.csv", "text/csv", b"a;b\n")])
    send(erp, "Invoice 2", attach=[("x.txt", "text/plain", b"x")], save_copy=True)
    box = sandbox.tenant.mailbox(ORDERS)
    assert [a["name"] for a in box.inbox[0].attachments] == ["invoice.pdf", "rows.csv"]
    assert box.inbox[0].attachments[0] == {"name": "invoice.pdf", "content_type": "application/pdf", "content": PDF}
    # SendOnly keeps no copy; SendAndSaveCopy saves one in Sent Items, attachments included
    assert [(m.subject, len(m.attachments), m.is_read) for m in sandbox.tenant.mailbox(sample.SENDER).sent] == \
        [("Invoice 2", 1, True)]

    orders = account(ORDERS)
    first, second = orders.inbox.all().order_by("datetime_received")
    assert (first.subject, first.has_attachments, first.is_read) == ("Invoice 1", True, False)
    [full] = orders.fetch(ids=[first])
    got = [(a.name, a.content_type, a.size) for a in full.attachments]
    assert got == [("invoice.pdf", "application/pdf", len(PDF)), ("rows.csv", "text/csv", 4)]
    assert full.attachments[0].content == PDF                      # GetAttachment
    assert b"Content-Disposition: attachment" in full.mime_content and full.text_body is None
    assert str(full.body) == "Body of Invoice 1" and full.sender.email_address == sample.SENDER
    assert [a.name for a in next(orders.fetch(ids=[second])).attachments] == ["x.txt"]


def test_update_is_read_and_move_to_a_new_folder(sandbox, account):
    from exchangelib import Folder
    from exchangelib.errors import ErrorFolderExists, ErrorFolderNotFound, ErrorItemNotFound
    erp = account(sample.SENDER)
    for n in range(3):
        send(erp, f"order {n}")
    orders = account(ORDERS)
    items = list(orders.inbox.all().order_by("datetime_received"))
    old_key = items[0].changekey
    items[0].is_read = True
    items[0].save(update_fields=["is_read"])
    assert items[0].changekey != old_key
    orders.inbox.refresh()                                          # GetFolder again (counts are cached)
    assert orders.inbox.unread_count == 2 and sandbox.tenant.mailbox(ORDERS).inbox[0].is_read

    root = orders.msg_folder_root
    with pytest.raises(ErrorFolderNotFound):
        root / "Processed"
    processed = Folder(parent=root, name="Processed")
    processed.save()
    with pytest.raises(ErrorFolderExists):
        Folder(parent=root, name="processed").save()
    with pytest.raises(ErrorFolderExists):
        Folder(parent=root, name="Inbox").save()
    old_id = items[0].id
    items[0].move(processed)
    assert items[0].id != old_id                                    # a moved item gets a new ID
    with pytest.raises(ErrorItemNotFound):
        _raise(orders.fetch(ids=[(old_id, None)]))
    items[1].copy(processed)
    processed.refresh()                                             # GetFolder by FolderId
    assert (processed.name, processed.total_count, processed.unread_count) == ("Processed", 2, 1)

    fresh = account(ORDERS)                                         # a new session finds it by name
    found = fresh.msg_folder_root / "Processed"
    assert found.id == processed.id and found.total_count == 2 and found.unread_count == 1
    assert sorted(i.subject for i in found.all()) == ["order 0", "order 1"]
    assert [i.subject for i in fresh.inbox.all().order_by("datetime_received")] == ["order 1", "order 2"]
    # the folder is the mailbox's own: Graph and IMAP see it
    assert sorted(m.subject for m in sandbox.tenant.mailbox(ORDERS).folders["Processed"]) == ["order 0", "order 1"]


def _raise(results):
    for r in results:
        if isinstance(r, Exception):
            raise r


def test_find_item_restrictions_sort_and_paging(sandbox, account):
    erp = account(sample.SENDER)
    for n in range(5):
        send(erp, f"invoice {n}", to=INVOICES, attach=[("a.txt", "text/plain", b"a")] if n % 2 else None)
    box = sandbox.tenant.mailbox(INVOICES)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
    for n, m in enumerate(box.inbox):
        m.received = (base + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    box.inbox[1].is_read = box.inbox[3].is_read = True
    inbox = account(INVOICES).inbox

    def subjects(qs):
        return [i.subject[-1] for i in qs]

    assert subjects(inbox.filter(is_read=False).order_by("datetime_received")) == ["0", "2", "4"]
    since = base + timedelta(hours=2)
    assert subjects(inbox.filter(datetime_received__gte=since).order_by("-datetime_received")) == ["4", "3", "2"]
    assert subjects(inbox.filter(datetime_received__lt=since, is_read=True)) == ["1"]
    assert subjects(inbox.filter(has_attachments=True).order_by("subject")) == ["1", "3"]
    assert subjects(inbox.filter(subject__icontains="VOICE 4")) == ["4"]
    assert subjects(inbox.filter(subject__contains="VOICE 4")) == []         # ContainmentComparison Exact
    assert subjects(inbox.exclude(subject__startswith="invoice 1").order_by("subject")[:2]) == ["0", "2"]
    assert subjects(inbox.all().order_by("datetime_received")[3:]) == ["3", "4"]
    assert inbox.filter(is_read=False).count() == 3


def test_ews_error_codes(sandbox, account):
    from exchangelib.errors import ErrorCrossMailboxMoveCopy, ErrorInvalidIdMalformed, ErrorItemNotFound
    send(account(sample.SENDER), "hello")
    orders = account(ORDERS)
    [item] = orders.inbox.all()
    bad = base64.b64encode(b"AAMkI:orders@contoso.com:no-such-message").decode()
    with pytest.raises(ErrorItemNotFound):
        _raise(orders.fetch(ids=[(bad, None)]))
    with pytest.raises(ErrorInvalidIdMalformed):
        _raise(orders.fetch(ids=[("not an id", None)]))
    with pytest.raises(ErrorCrossMailboxMoveCopy):
        item.move(account(INVOICES).inbox)

    token = account.token
    item_ref = f'<t:ItemId Id="{item.id}"/>'
    text = soap(sandbox, token, '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AutoResolve">'
                f'<m:ItemChanges><t:ItemChange>{item_ref}<t:Updates><t:SetItemField>'
                '<t:FieldURI FieldURI="item:Importance"/><t:Message><t:Importance>High</t:Importance></t:Message>'
                '</t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>')
    assert "<m:ResponseCode>ErrorInvalidPropertySet</m:ResponseCode>" in text
    text = soap(sandbox, token, '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="NeverOverwrite">'
                f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{item.id}" ChangeKey="CQAAAstale"/><t:Updates>'
                '<t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead>'
                '</t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>')
    assert "<m:ResponseCode>ErrorIrresolvableConflict</m:ResponseCode>" in text
    assert sandbox.tenant.mailbox(ORDERS).inbox[0].is_read is False
    text = soap(sandbox, token, '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
                '</m:ItemShape><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="item:Importance"/>'
                '<t:FieldURIOrConstant><t:Constant Value="High"/></t:FieldURIOrConstant></t:IsEqualTo>'
                '</m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds>'
                '</m:FindItem>')
    assert "<m:ResponseCode>ErrorUnsupportedPathForQuery</m:ResponseCode>" in text
    text = soap(sandbox, token, '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/>'
                '</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Sub</t:DisplayName></t:Folder>'
                '</m:Folders></m:CreateFolder>')
    assert "<m:ResponseCode>ErrorInvalidOperation</m:ResponseCode>" in text
    text = soap(sandbox, token, '<m:GetRooms><m:RoomList><t:EmailAddress>rooms@contoso.com</t:EmailAddress>'
                '</m:RoomList></m:GetRooms>')                              # an operation the sandbox lacks
    assert "<m:ResponseCode>ErrorInvalidOperation</m:ResponseCode>" in text
    text = soap(sandbox, token, '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
                '<m:FolderIds><t:FolderId Id="bm90LWEtZm9sZGVy"/><t:FolderId Id="%s"/></m:FolderIds>'
                '</m:GetFolder>' % base64.b64encode(b"AAMk:orders@contoso.com:~Gone").decode())
    assert text.count("ResponseClass=\"Error\"") == 2 and "ErrorInvalidIdMalformed" in text \
        and "ErrorFolderNotFound" in text


def test_mime_items_saved_and_sent_as_exchange_documents(sandbox):
    """CreateItem with MimeContent (SendAndSaveCopy; SaveOnly into Drafts, then SendItem with its ChangeKey),
    the Bcc from the MIME or beside it, and the answers for a stale key, a sent draft and bad MIME."""
    import re
    token = app_token(sandbox)
    mime = (f"From: {ORDERS}\r\nTo: {sample.RECIPIENT}\r\nBcc: {INVOICES}\r\nSubject: From MIME\r\n"
            "Message-ID: <mime-1@contoso.com>\r\n\r\nHello.\r\n").encode()
    item = '<t:Message><t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>%s</t:Message>'
    text = soap(sandbox, token, '<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items>%s</m:Items>'
                '</m:CreateItem>' % (item % (base64.b64encode(mime).decode(), "")))
    assert "NoError" in text and "<t:ItemId" not in text                  # sent: no ID comes back
    assert [m.subject for m in sandbox.tenant.mailbox(INVOICES).inbox] == ["From MIME"]   # the MIME's Bcc
    assert [m.internet_message_id for m in sandbox.tenant.mailbox(ORDERS).sent] == ["<mime-1@contoso.com>"]
    draft = mime.replace(b"Bcc: " + INVOICES.encode() + b"\r\n", b"").replace(b"mime-1", b"mime-2")
    text = soap(sandbox, token, '<m:CreateItem MessageDisposition="SaveOnly"><m:Items>%s</m:Items></m:CreateItem>'
                % (item % (base64.b64encode(draft).decode(), f"<t:BccRecipients><t:Mailbox><t:EmailAddress>"
                           f"{INVOICES}</t:EmailAddress></t:Mailbox></t:BccRecipients>")))
    item_id, key = re.search(r'<t:ItemId Id="([^"]+)" ChangeKey="([^"]+)"', text).groups()
    assert [m.subject for m in sandbox.tenant.mailbox(ORDERS).folders["Drafts"]] == ["From MIME"]
    get = ('<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI '
           'FieldURI="item:IsDraft"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="%s"/>'
           '</m:ItemIds></m:GetItem>' % item_id)
    assert "<t:IsDraft>true</t:IsDraft>" in soap(sandbox, token, get)
    send = '<m:SendItem SaveItemToFolder="%s"><m:ItemIds><t:ItemId Id="%s"%s/></m:ItemIds>%s</m:SendItem>'
    sent_items = '<m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId>'
    assert "ErrorStaleObject" in soap(sandbox, token, send % ("true", item_id, "", ""))
    assert "ErrorStaleObject" in soap(sandbox, token, send % ("true", item_id, ' ChangeKey="CQAAABYAAAold"', ""))
    assert "ErrorInvalidSendItemSaveSettings" in soap(sandbox, token, send % ("false", item_id, f' ChangeKey="{key}"',
                                                                             sent_items))
    assert "NoError" in soap(sandbox, token, send % ("true", item_id, f' ChangeKey="{key}"', sent_items))
    assert [m.subject for m in sandbox.tenant.mailbox(INVOICES).inbox] == ["From MIME"] * 2   # BccRecipients
    assert sandbox.tenant.mailbox(ORDERS).folders["Drafts"] == [] and len(sandbox.tenant.mailbox(ORDERS).sent) == 2
    assert "ErrorItemNotFound" in soap(sandbox, token, get)               # the sent draft left under a new ID
    text = soap(sandbox, token, '<m:CreateItem MessageDisposition="SaveOnly"><m:Items>%s</m:Items></m:CreateItem>'
                % (item % ("not base64!", "")))
    assert "ErrorMimeContentConversionFailed" in text

"""Microsoft's own Graph client (msgraph-sdk + azure-identity) against the sandbox's Graph: a second
opinion on the sandbox, for every call the runtime and the connection test make (wizard/runtime/graph.py)
and the ones a mail relay makes (drafts from MIME and their send, upload sessions, move, child folders,
mark read). TLS verification stays on: httpx trusts the sandbox's CA, azure-identity signs in at the
sandbox's authority with the same CA. All the SDK tests live in this one module (its import is heavy)."""

from __future__ import annotations

import base64
import ssl
import warnings
from email.message import EmailMessage

import pytest

pytest.importorskip("msgraph", reason="msgraph-sdk is in the test extra: pip install -e '.[test]'")
# the SDK's builders, imported lazily, warn about their own deprecated configuration classes
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

with warnings.catch_warnings():      # the generated builders warn about their own deprecated classes
    warnings.simplefilter("ignore", DeprecationWarning)
    import httpx
    from azure.identity.aio import ClientSecretCredential
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider)
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.attachment_item import AttachmentItem
    from msgraph.generated.models.attachment_type import AttachmentType
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.mail_folder import MailFolder
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
        MessagesRequestBuilder)
    from msgraph.generated.users.item.mail_folders.item.mail_folder_item_request_builder import (
        MailFolderItemRequestBuilder)
    from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
        MailFoldersRequestBuilder)
    from msgraph.generated.users.item.messages.item.attachments.attachments_request_builder import (
        AttachmentsRequestBuilder)
    from msgraph.generated.users.item.messages.item.attachments.create_upload_session.\
        create_upload_session_post_request_body import CreateUploadSessionPostRequestBody
    from msgraph.generated.users.item.messages.item.move.move_post_request_body import MovePostRequestBody
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
    from msgraph_core import GraphClientFactory

from wizard.sandbox import Fault, sample  # noqa: E402

MailFolderGet = MailFolderItemRequestBuilder.MailFolderItemRequestBuilderGetQueryParameters
MB = 1024 * 1024
ORDERS = sample.INCOMING[0]


class Sdk:
    """A GraphServiceClient signed in as the sample app, at the sandbox, trusting only the sandbox's CA."""

    def __init__(self, sb):
        self.credential = ClientSecretCredential(sample.TENANT_ID, sample.SECRET_APP_ID, sample.SECRET_VALUE,
                                                 authority=sb.base_url, connection_verify=sb.ca_path,
                                                 disable_instance_discovery=True)
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=["https://graph.microsoft.com/.default"],
                                                   allowed_hosts=[sb.host])
        self.http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=sb.ca_path))
        self.adapter = GraphRequestAdapter(auth, client=GraphClientFactory.create_with_default_middleware(
            client=self.http))
        self.adapter.base_url = sb.base_url + "/v1.0"
        self.client = GraphServiceClient(request_adapter=self.adapter)

    def user(self, address: str):
        return self.client.users.by_user_id(address)

    async def raw(self, method: Method, url: str, body: bytes = b"", content_type: str = "text/plain",
                  model=None):
        """A request the generated builders have no shape for (base64 MIME bodies)."""
        info = RequestInformation(method)
        info.url = url
        if body:
            info.set_stream_content(body, content_type)
        errors = {"XXX": ODataError}
        if model is None:
            return await self.adapter.send_no_response_content_async(info, errors)
        return await self.adapter.send_async(info, model, errors)

    async def close(self) -> None:
        await self.credential.close()
        await self.http.aclose()


@pytest.fixture
async def sdk(sandbox):
    from runtime_helpers import grant_all
    grant_all(sandbox)
    client = Sdk(sandbox)
    yield client
    await client.close()


def mail(subject: str, to: str = sample.RECIPIENT, attachments=()) -> Message:
    return Message(subject=subject, body=ItemBody(content_type=BodyType.Text, content=f"Body of {subject}"),
                   to_recipients=[Recipient(email_address=EmailAddress(address=to))],
                   attachments=[FileAttachment(odata_type="#microsoft.graph.fileAttachment", name=n,
                                               content_type="application/pdf", content_bytes=data)
                                for n, data in attachments] or None)


def mime(subject: str, to: str = ORDERS, bcc: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sample.SENDER, to, subject
    if bcc:
        m["Bcc"] = bcc
    m.set_content(f"Body of {subject}\n")
    m.add_attachment(b"id;qty\n1;2\n", maintype="text", subtype="csv", filename="order.csv")
    return base64.b64encode(m.as_bytes())


def graph_paths(sb) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path.split("?")[0], r.status) for r in sb.requests if r.path.startswith(("/v1.0", "/api"))]


# -- item 7: action parameters as the SDK writes them (Message, SaveToSentItems, DestinationId) --------------

async def test_send_mail_and_move_as_the_sdk_writes_them(sandbox, sdk):
    body = SendMailPostRequestBody(message=mail("Order 1", to=ORDERS, attachments=[("a.pdf", b"%PDF-1 a")]),
                                   save_to_sent_items=False)
    await sdk.user(sample.SENDER).send_mail.post(body)
    sent = [r for r in sandbox.requests if r.path.endswith("/sendMail")]
    assert b'"Message"' in sent[0].body and sent[0].status == 202      # the SDK's PascalCase, accepted
    assert sandbox.tenant.mailbox(sample.SENDER).sent == []            # SaveToSentItems: false was read
    [got] = sandbox.tenant.mailbox(ORDERS).inbox
    assert [a["content"] for a in got.attachments] == [b"%PDF-1 a"]
    old_id = got.id
    moved = await sdk.user(ORDERS).messages.by_message_id(old_id).move.post(
        MovePostRequestBody(destination_id="archive"))
    assert moved.subject == "Order 1" and moved.id != old_id
    archive = await sdk.user(ORDERS).mail_folders.by_mail_folder_id("archive").get()
    assert moved.parent_folder_id == archive.id and archive.total_item_count == 1


# -- the runtime's and the connection test's calls ------------------------------------------------------

async def test_the_runtimes_reads_paging_attachments_mark_read_and_processed_folder(sandbox, sdk):
    for i in range(3):
        atts = [("invoice.pdf", b"%PDF-1.4 " + bytes([i]))] if i == 1 else ()
        await sdk.user(sample.SENDER).send_mail.post(SendMailPostRequestBody(message=mail(f"Order {i}", ORDERS,
                                                                                          atts)))
    inbox = await sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox").get(
        request_configuration=RequestConfiguration(query_parameters=MailFolderGet(
            select=["totalItemCount", "unreadItemCount"])))
    assert (inbox.total_item_count, inbox.unread_item_count) == (3, 3)
    params = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        select=["id", "subject", "from", "receivedDateTime", "hasAttachments", "isRead"],
        filter="receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false", orderby=["receivedDateTime asc"],
        top=2)
    messages = sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox").messages
    page = await messages.get(request_configuration=RequestConfiguration(query_parameters=params))
    rows = list(page.value)
    while page.odata_next_link:
        page = await messages.with_url(page.odata_next_link).get()
        rows += page.value
    assert [m.subject for m in rows] == ["Order 0", "Order 1", "Order 2"]
    with_att = next(m for m in rows if m.has_attachments)
    meta = await sdk.user(ORDERS).messages.by_message_id(with_att.id).attachments.get(
        request_configuration=RequestConfiguration(query_parameters=AttachmentsRequestBuilder.
                                                       AttachmentsRequestBuilderGetQueryParameters(
                                                           select=["name", "contentType", "size"])))
    assert [(a.name, a.content_type, a.size) for a in meta.value] == [("invoice.pdf", "application/pdf", 10)]

    found = await sdk.user(ORDERS).mail_folders.get(
        request_configuration=RequestConfiguration(query_parameters=MailFoldersRequestBuilder.
                                                       MailFoldersRequestBuilderGetQueryParameters(
                                                           filter="displayName eq 'Processed'")))
    assert found.value == []
    processed = await sdk.user(ORDERS).mail_folders.post(MailFolder(display_name="Processed"))
    read = await sdk.user(ORDERS).messages.by_message_id(rows[0].id).patch(Message(is_read=True))
    assert read.is_read is True
    moved = await sdk.user(ORDERS).messages.by_message_id(rows[0].id).move.post(
        MovePostRequestBody(destination_id=processed.id))
    assert moved.parent_folder_id == processed.id and moved.is_read is True
    with pytest.raises(ODataError) as e:
        await sdk.user(ORDERS).messages.by_message_id(rows[0].id).get()      # moved: a new ID
    assert e.value.response_status_code == 404 and e.value.error.code == "ErrorItemNotFound"


# -- item 8: child folders ---------------------------------------------------------------------------------

async def test_child_folders(sandbox, sdk):
    inbox = sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox")
    orders = await inbox.child_folders.post(MailFolder(display_name="Orders"))
    assert orders.display_name == "Orders"
    with pytest.raises(ODataError) as e:
        await inbox.child_folders.post(MailFolder(display_name="orders"))
    assert e.value.response_status_code == 409 and e.value.error.code == "ErrorFolderExists"
    done = await sdk.user(ORDERS).mail_folders.by_mail_folder_id(orders.id).child_folders.post(
        MailFolder(display_name="Done"))
    again = await inbox.child_folders.by_mail_folder_id1(orders.id).get()
    assert (again.id, again.parent_folder_id, again.display_name) == (orders.id, orders.parent_folder_id, "Orders")
    kids = await inbox.child_folders.get()
    assert [f.display_name for f in kids.value] == ["Orders"] and kids.value[0].child_folder_count == 1
    grandkids = await sdk.user(ORDERS).mail_folders.by_mail_folder_id(orders.id).child_folders.get()
    assert [(f.id, f.parent_folder_id) for f in grandkids.value] == [(done.id, orders.id)]
    top = await sdk.user(ORDERS).mail_folders.get()
    assert "Orders" not in [f.display_name for f in top.value]
    await sdk.user(sample.SENDER).send_mail.post(SendMailPostRequestBody(message=mail("File me", ORDERS)))
    [got] = sandbox.tenant.mailbox(ORDERS).inbox
    moved = await sdk.user(ORDERS).messages.by_message_id(got.id).move.post(MovePostRequestBody(destination_id=done.id))
    assert moved.parent_folder_id == done.id
    listed = await sdk.user(ORDERS).mail_folders.by_mail_folder_id(done.id).messages.get()
    assert [m.subject for m in listed.value] == ["File me"]


# -- item 9: @odata.context, conversationIndex, webLink, changeKey per update ------------------------------

async def test_entities_carry_context_and_a_new_change_key_per_update(sandbox, sdk):
    await sdk.user(sample.SENDER).send_mail.post(SendMailPostRequestBody(message=mail("Versioned", ORDERS)))
    [got] = sandbox.tenant.mailbox(ORDERS).inbox
    msg = await sdk.user(ORDERS).messages.by_message_id(got.id).get()
    assert msg.additional_data["@odata.context"].endswith("/messages/$entity")
    assert len(msg.conversation_index) == 22 and msg.web_link.startswith("https://outlook.office365.com/owa/")
    keys = {(msg.change_key, msg.additional_data["@odata.etag"])}
    for _ in range(2):                   # marking read twice: two updates, two new keys
        upd = await sdk.user(ORDERS).messages.by_message_id(got.id).patch(Message(is_read=True))
        keys.add((upd.change_key, upd.additional_data["@odata.etag"]))
    assert len(keys) == 3 and len({k for k, _ in keys}) == 3 and len({e for _, e in keys}) == 3
    folder = await sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox").get()
    assert folder.additional_data["@odata.context"].endswith("/mailFolders/$entity")


# -- item 10: a fault for a path with "@" fires although the SDK sends "%40" ---------------------------------

async def test_fault_for_an_address_fires_for_the_sdks_percent_encoded_path(sandbox, sdk):
    sandbox.inject(Fault(f"/v1.0/users/{ORDERS}/mailFolders", status=500, times=1))
    with pytest.raises(ODataError) as e:
        await sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox").get()
    assert e.value.response_status_code == 500
    assert [p for p in graph_paths(sandbox) if p[0] == "GET"] == [
        ("GET", f"/v1.0/users/{ORDERS.replace('@', '%40')}/mailFolders/inbox", 500)]
    assert (await sdk.user(ORDERS).mail_folders.by_mail_folder_id("inbox").get()).display_name == "Inbox"


# -- a relay's calls: drafts from MIME, send, upload sessions, mark read ------------------------------------

async def test_relay_mime_draft_with_a_large_attachment_then_send(sandbox, sdk):
    draft = await sdk.raw(Method.POST, f"{sandbox.base_url}/v1.0/users/{sample.SENDER}/messages",
                          mime("From the relay", bcc=sample.RECIPIENT), model=Message)
    assert draft.is_draft is True and draft.subject == "From the relay"
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * (12 * MB // 256)
    session = await sdk.user(sample.SENDER).messages.by_message_id(draft.id).attachments.create_upload_session.post(
        CreateUploadSessionPostRequestBody(attachment_item=AttachmentItem(
            attachment_type=AttachmentType.File, name="big.pdf", size=len(pdf), content_type="application/pdf")))
    assert b'"AttachmentItem"' in next(r.body for r in sandbox.requests if r.path.endswith("createUploadSession"))
    assert session.next_expected_ranges == ["0-"] and session.expiration_date_time is not None
    # msgraph-core's LargeFileUploadTask cannot follow Outlook's documented nextExpectedRanges (["{start}"],
    # no end: it fails on int(""); msgraph-sdk-python-core issue 691), so the ranges go out over the SDK's
    # own HTTP client, without a token
    start, chunk = 0, 10 * 320 * 1024
    while start < len(pdf):
        end = min(start + chunk, len(pdf)) - 1
        r = await sdk.http.put(session.upload_url, content=pdf[start:end + 1], headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"bytes {start}-{end}/{len(pdf)}"})
        assert r.status_code in (200, 201), r.text
        start = len(pdf) if r.status_code == 201 else int(r.json()["nextExpectedRanges"][0])
    puts = [p for p in graph_paths(sandbox) if p[0] == "PUT"]
    assert [s for *_, s in puts] == [200] * (len(puts) - 1) + [201]
    atts = await sdk.user(sample.SENDER).messages.by_message_id(draft.id).attachments.get()
    assert sorted((a.name, a.size) for a in atts.value) == [("big.pdf", len(pdf)), ("order.csv", 11)]
    await sdk.user(sample.SENDER).messages.by_message_id(draft.id).send.post()
    for box in (ORDERS, sample.RECIPIENT):                        # To, and the Bcc of the MIME
        [got] = sandbox.tenant.mailbox(box).inbox
        assert {a["name"]: a["content"] for a in got.attachments}["big.pdf"] == pdf
    assert [m.subject for m in sandbox.tenant.mailbox(sample.SENDER).sent] == ["From the relay"]
    drafts = await sdk.user(sample.SENDER).mail_folders.by_mail_folder_id("drafts").get()
    assert drafts.total_item_count == 0


async def test_relay_sends_mime_directly_and_marks_read(sandbox, sdk):
    await sdk.raw(Method.POST, f"{sandbox.base_url}/v1.0/users/{sample.SENDER}/sendMail", mime("Raw MIME"))
    [got] = sandbox.tenant.mailbox(ORDERS).inbox
    assert got.subject == "Raw MIME" and got.attachments[0]["name"] == "order.csv"
    read = await sdk.user(ORDERS).messages.by_message_id(got.id).patch(Message(is_read=True))
    assert read.is_read is True and got.is_read is True


async def test_upload_session_refuses_a_small_file_and_inline_refuses_3_mb(sandbox, sdk):
    draft = await sdk.user(sample.SENDER).messages.post(mail("Small"))
    attachments = sdk.user(sample.SENDER).messages.by_message_id(draft.id).attachments
    with pytest.raises(ODataError) as e:
        await attachments.create_upload_session.post(CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(attachment_type=AttachmentType.File, name="s.pdf", size=1000)))
    assert e.value.error.code == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    with pytest.raises(ODataError) as e:
        await attachments.post(FileAttachment(odata_type="#microsoft.graph.fileAttachment", name="b.bin",
                                              content_bytes=b"\0" * (3 * MB)))
    assert e.value.response_status_code == 413
    added = await attachments.post(FileAttachment(odata_type="#microsoft.graph.fileAttachment", name="ok.txt",
                                                  content_bytes=b"fine"))
    assert added.size == 4
    await sdk.user(sample.SENDER).messages.by_message_id(draft.id).delete()     # the runtime's clean-up
    with pytest.raises(ODataError) as e:
        await sdk.user(sample.SENDER).messages.by_message_id(draft.id).get()
    assert e.value.error.code == "ErrorItemNotFound"

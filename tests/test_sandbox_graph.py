"""Microsoft Graph mail on the sandbox: send, read with paging, attachments, PATCH, move, errors."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
import requests

from sandbox_helpers import app_token, password_token
from wizard.sandbox import Fault, sample

GRAPH = "https://graph.microsoft.com"
EXCHANGE = "https://outlook.office365.com"
ERROR_INNER = {"date", "request-id", "client-request-id"}


def token(sb, resource=GRAPH, client_id=sample.SECRET_APP_ID, secret=sample.SECRET_VALUE) -> str:
    return app_token(sb, resource, client_id, secret)


def user_token(sb, scope=f"{GRAPH}/Mail.Send {GRAPH}/Mail.Read") -> str:
    return password_token(sb, scope)


def call(sb, method, path, tok=None, **kw) -> requests.Response:
    url = path if path.startswith("https://") else f"{sb.base_url}/v1.0/{path}"
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    headers.update(kw.pop("headers", {}))
    return requests.request(method, url, headers=headers, verify=sb.ca_path, timeout=5, **kw)


def mail(subject, to=sample.RECIPIENT, attachment: bytes | None = None, **extra) -> dict:
    msg = {"subject": subject, "body": {"contentType": "Text", "content": f"Body of {subject}"},
           "toRecipients": [{"emailAddress": {"address": to}}], **extra}
    if attachment is not None:
        msg["attachments"] = [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "invoice.pdf",
                               "contentType": "application/pdf",
                               "contentBytes": base64.b64encode(attachment).decode()}]
    return {"message": msg, "saveToSentItems": True}


def graph_error(r: requests.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and ERROR_INNER <= set(err["innerError"]), err
    return err["message"]


def test_send_with_attachment_then_read_back_with_paging(sandbox):
    tok = token(sandbox)
    pdf = b"%PDF-1.4 sandbox \x00\xff"
    for i, att in enumerate([None, pdf, None]):
        r = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail(f"Order {i}", attachment=att))
        assert (r.status_code, r.content) == (202, b"")
    inbox = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox", tok).json()
    assert (inbox["displayName"], inbox["totalItemCount"], inbox["unreadItemCount"]) == ("Inbox", 3, 3)
    assert call(sandbox, "GET", f"users/{sample.SENDER}/mailFolders/sentitems", tok).json()["totalItemCount"] == 3

    url, pages, seen = (f"users/{sample.RECIPIENT}/mailFolders/inbox/messages"
                        f"?$select=subject,hasAttachments,from,isRead&$top=2"), 0, []
    while url:
        body = call(sandbox, "GET", url, tok).json()
        pages += 1
        seen += body["value"]
        url = body.get("@odata.nextLink")
    assert pages == 2 and [m["subject"] for m in seen] == ["Order 2", "Order 1", "Order 0"]   # newest first
    assert all(set(m) == {"@odata.etag", "id", "subject", "hasAttachments", "from", "isRead"} for m in seen)
    assert seen[0]["from"] == {"emailAddress": {"name": sample.SENDER, "address": sample.SENDER}}

    with_att = next(m for m in seen if m["hasAttachments"])
    full = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{with_att['id']}", tok).json()
    assert full["body"] == {"contentType": "text", "content": "Body of Order 1"}
    assert full["toRecipients"][0]["emailAddress"]["address"] == sample.RECIPIENT
    assert full["internetMessageId"].startswith("<") and full["receivedDateTime"].endswith("Z")
    assert full["isRead"] is False
    atts = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{with_att['id']}/attachments", tok).json()
    [att] = atts["value"]
    assert att["@odata.type"] == "#microsoft.graph.fileAttachment" and att["name"] == "invoice.pdf"
    assert base64.b64decode(att["contentBytes"]) == pdf and att["size"] == len(pdf)
    meta = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{with_att['id']}/attachments"
                "?$select=name,contentType,size", tok).json()["value"]
    assert meta == [{"@odata.type": "#microsoft.graph.fileAttachment", "id": att["id"], "name": "invoice.pdf",
                     "contentType": "application/pdf", "size": len(pdf)}]
    raw = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{with_att['id']}/attachments/{att['id']}/$value",
               tok)
    assert raw.content == pdf


def test_filter_patch_and_move_need_readwrite(sandbox):
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"].discard("Mail.ReadWrite")    # the sample has it
    tok = token(sandbox)
    for i in range(2):
        call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail(f"Invoice {i}"))
    msgs = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox/messages", tok).json()["value"]
    first = msgs[0]["id"]
    r = call(sandbox, "PATCH", f"users/{sample.RECIPIENT}/messages/{first}", tok, json={"isRead": True})
    assert graph_error(r, 403, "ErrorAccessDenied").startswith("Access is denied")    # Mail.Read only

    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"].add("Mail.ReadWrite")
    tok = token(sandbox)
    r = call(sandbox, "PATCH", f"users/{sample.RECIPIENT}/messages/{first}", tok, json={"isRead": True})
    assert r.status_code == 200 and r.json()["isRead"] is True
    unread = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox/messages"
                  "?$filter=isRead eq false&$select=subject", tok).json()["value"]
    assert [m["subject"] for m in unread] == [msgs[1]["subject"]]

    r = call(sandbox, "POST", f"users/{sample.RECIPIENT}/messages/{first}/move", tok,
             json={"destinationId": "Processed"})         # a display name is not an ID
    assert graph_error(r, 400, "ErrorInvalidIdMalformed") == "Id is malformed."
    created = call(sandbox, "POST", f"users/{sample.RECIPIENT}/mailFolders", tok, json={"displayName": "Processed"})
    assert created.status_code == 201 and created.json()["totalItemCount"] == 0
    again = call(sandbox, "POST", f"users/{sample.RECIPIENT}/mailFolders", tok, json={"displayName": "processed"})
    graph_error(again, 409, "ErrorFolderExists")
    found = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders?$filter=displayName eq 'Processed'", tok)
    assert [f["id"] for f in found.json()["value"]] == [created.json()["id"]]
    moved = call(sandbox, "POST", f"users/{sample.RECIPIENT}/mailFolders/inbox/messages/{first}/move", tok,
                 json={"destinationId": created.json()["id"]})
    assert moved.status_code == 201 and moved.json()["parentFolderId"] == created.json()["id"]
    assert moved.json()["id"] != first
    graph_error(call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{first}", tok), 404, "ErrorItemNotFound")
    folder = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/{created.json()['id']}/messages", tok)
    assert [m["subject"] for m in folder.json()["value"]] == [msgs[0]["subject"]]
    assert call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox", tok).json()["totalItemCount"] == 1
    assert [m.subject for m in sandbox.tenant.mailbox(sample.RECIPIENT).folders["Processed"]] == [msgs[0]["subject"]]


def test_delegated_me_send_as_and_other_mailboxes(sandbox):
    # the token carries every consented scope: take the sample's .Shared consent away first
    sandbox.tenant.app(sample.PASSWORD_APP_ID).scopes["graph"] -= {"Mail.ReadWrite.Shared", "Mail.Send.Shared"}
    tok = user_token(sandbox)
    r = call(sandbox, "POST", "me/sendMail", tok,
             json=mail("From ERP", **{"from": {"emailAddress": {"address": sample.SENDER}}}))
    assert r.status_code == 202, r.text
    [got] = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert got.sender == sample.SENDER
    r = call(sandbox, "POST", "me/sendMail", tok,
             json=mail("Spoof", **{"from": {"emailAddress": {"address": sample.RECIPIENT}}}))
    graph_error(r, 403, "ErrorSendAsDenied")
    assert call(sandbox, "GET", "me/mailFolders/inbox", tok).json()["totalItemCount"] == 0
    # another mailbox needs Mail.Read.Shared (consent taken away above) besides the mailbox right
    graph_error(call(sandbox, "GET", f"users/{sample.INCOMING[0]}/mailFolders/inbox", tok), 403, "ErrorAccessDenied")
    sandbox.tenant.app(sample.PASSWORD_APP_ID).scopes["graph"].add("Mail.Read.Shared")
    shared = user_token(sandbox, f"{GRAPH}/Mail.Read.Shared")
    assert call(sandbox, "GET", f"users/{sample.INCOMING[0]}/mailFolders/inbox", shared).status_code == 200
    graph_error(call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox", shared), 403, "ErrorAccessDenied")
    app_me = call(sandbox, "GET", "me/mailFolders/inbox", token(sandbox))
    assert "only valid with delegated" in graph_error(app_me, 400, "BadRequest")


def test_auth_and_mailbox_errors_are_graph_shaped(sandbox):
    tok = token(sandbox)
    r = call(sandbox, "GET", f"users/{sample.SENDER}/mailFolders/inbox", headers={"client-request-id": "abc-1"})
    assert graph_error(r, 401, "InvalidAuthenticationToken") == "Access token is empty."
    assert r.json()["error"]["innerError"]["client-request-id"] == "abc-1" and "WWW-Authenticate" in r.headers
    wrong_aud = call(sandbox, "GET", f"users/{sample.SENDER}/mailFolders/inbox", token(sandbox, EXCHANGE))
    assert "Invalid audience" in graph_error(wrong_aud, 401, "InvalidAuthenticationToken")
    forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    graph_error(call(sandbox, "GET", f"users/{sample.SENDER}/mailFolders/inbox", forged), 401,
                "InvalidAuthenticationToken")

    no_roles = token(sandbox, client_id=sample.NO_CONSENT_APP_ID, secret=sample.NO_CONSENT_SECRET_VALUE)
    graph_error(call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", no_roles, json=mail("x")), 403,
                "ErrorAccessDenied")
    sandbox.tenant.mailbox(sample.SENDER).scoped_out_apps.add(sample.SECRET_APP_ID)
    scoped = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("x"))
    assert "[RAOP]" in graph_error(scoped, 403, "ErrorAccessDenied")

    unknown = call(sandbox, "GET", "users/nobody@contoso.com/mailFolders/inbox", tok)
    assert graph_error(unknown, 404, "ErrorInvalidUser") == "The requested user 'nobody@contoso.com' is invalid."
    graph_error(call(sandbox, "GET", f"users/{sample.MFA_USER}/mailFolders/inbox", tok), 404,
                "MailboxNotEnabledForRESTAPI")
    graph_error(call(sandbox, "POST", f"users/{sample.RECIPIENT}/sendMail", tok,
                     json={"message": {"subject": "no one"}}),
                400, "ErrorInvalidRecipients")


def test_throttling_fault_has_retry_after(sandbox):
    tok = token(sandbox)
    sandbox.inject(Fault("/v1.0/", status=429, retry_after=7, times=1))
    r = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("x"))
    assert graph_error(r, 429, "ApplicationThrottled") and r.headers["Retry-After"] == "7"
    assert call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("x")).status_code == 202
    assert [rec.status for rec in sandbox.requests if rec.path.startswith("/v1.0/")] == [429, 202]


def test_config_protocol_overrides(sandbox):
    from wizard.config.schema import validate
    cfg = sandbox.config(protocol="graph")
    assert (cfg.outgoing.protocol, cfg.incoming.protocol, cfg.endpoints.graph_url) == ("graph", "graph",
                                                                                       sandbox.base_url)
    assert (cfg.outgoing.server, cfg.outgoing.port) == ("127.0.0.1", sandbox.port)
    both = sandbox.config(flow="password", protocol="smtp+imap")
    assert (both.outgoing.protocol, both.outgoing.port) == ("smtp", sandbox.smtp_port)
    assert (both.incoming.protocol, both.incoming.server, both.incoming.port) == ("imap", "127.0.0.1",
                                                                                  sandbox.imap_port)
    for c in (cfg, both):
        assert [p for p in validate(c) if not p.warning] == []
    with pytest.raises(ValueError):
        sandbox.config(protocol="pop3")


# -- large attachments: the runtime's draft + upload session path, and the sandbox's limits -------------

MB = 1024 * 1024


def big_pdf(size: int) -> bytes:
    import random
    return b"%PDF-1.7\n" + random.Random(size).randbytes(size - 9)


def test_runtime_sends_a_12_mb_pdf_over_graph_byte_identical(sandbox):
    from runtime_helpers import FakeClock, config
    from wizard.runtime import Attachment, Mailer, graph
    pdf = big_pdf(12 * MB)
    clock = FakeClock()
    with Mailer(config(sandbox, "graph"), clock=clock, sleep=clock.sleep) as mailer:
        mailer.send(sample.RECIPIENT, "Invoice 1001", "See the attached invoice.",
                    attachments=[Attachment("invoice-1001.pdf", "application/pdf", pdf),
                                 Attachment("order.csv", "text/csv", b"id;qty\n1;2\n")])
        [got] = mailer.fetch(sample.RECIPIENT)
    assert got.attachments == [("invoice-1001.pdf", "application/pdf", len(pdf)), ("order.csv", "text/csv", 11)]
    tok = token(sandbox)
    atts = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{got.id}/attachments?$select=name", tok).json()
    raw = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{got.id}/attachments/{atts['value'][0]['id']}"
               "/$value", tok)
    assert raw.content == pdf                                      # byte-identical after 4 ranged PUTs
    reqs = [r for r in sandbox.requests if not r.path.endswith("/token") and "/openid" not in r.path]
    puts = [r for r in reqs if r.method == "PUT"]
    assert len(puts) == -(-len(pdf) // graph.CHUNK) and not any("/sendMail" in r.path for r in reqs)
    assert all("Authorization" not in r.headers for r in puts)    # the upload URL carries its own token
    sizes = [len(r.body) for r in puts]
    assert all(s % (320 * 1024) == 0 and s < 4 * MB for s in sizes[:-1]) and sum(sizes) == len(pdf)
    assert [r.status for r in puts] == [200] * (len(puts) - 1) + [201]
    assert [m.subject for m in sandbox.tenant.mailbox(sample.SENDER).sent] == ["Invoice 1001"]
    assert sandbox.tenant.mailbox(sample.SENDER).folders.get("Drafts", []) == []


def test_large_graph_send_without_readwrite_names_the_permission(sandbox):
    from runtime_helpers import FakeClock, config
    from wizard.runtime import Attachment, MailError, Mailer
    cfg = config(sandbox, "graph")
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"] = {"Mail.Send", "Mail.Read"}
    clock = FakeClock()
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        mailer.send(sample.RECIPIENT, "small", "x", attachments=[Attachment("a.txt", "text/plain", b"x")])
        with pytest.raises(MailError) as e:
            mailer.send(sample.RECIPIENT, "big", "x", attachments=[Attachment("b.pdf", "application/pdf",
                                                                              big_pdf(4 * MB))])
        with pytest.raises(MailError) as over:
            mailer.send(sample.RECIPIENT, "huge", "x",
                        attachments=[Attachment("c.bin", "application/octet-stream", b"\0" * (150 * MB + 1))])
    assert e.value.code == "graph.large_attachment" and "Mail.ReadWrite" in e.value.diagnosis.cause
    assert "Mail.ReadWrite" in e.value.diagnosis.fix
    assert over.value.code == "config.invalid" and "at most 150 MB" in over.value.diagnosis.service_message
    assert [m.subject for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox] == ["small"]


def draft_with_session(sandbox, tok, size: int, **item):
    draft = call(sandbox, "POST", f"users/{sample.SENDER}/messages", tok, json=mail("Big")["message"])
    assert draft.status_code == 201 and draft.json()["isDraft"] is True, draft.text
    mid = draft.json()["id"]
    r = call(sandbox, "POST", f"users/{sample.SENDER}/messages/{mid}/attachments/createUploadSession", tok,
             json={"AttachmentItem": {"attachmentType": "file", "name": "big.pdf", "size": size, **item}})
    return mid, r


def put(sandbox, url, data: bytes, start: int, total: int, **headers):
    end = start + len(data) - 1
    return requests.put(url, data=data, verify=sandbox.ca_path, timeout=10,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"bytes {start}-{end}/{total}", **headers})


def test_upload_session_limits_and_errors(sandbox):
    tok = token(sandbox)
    pdf = big_pdf(5 * MB)
    mid, small = draft_with_session(sandbox, tok, 3 * MB - 1)
    graph_error(small, 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
    _, huge = draft_with_session(sandbox, tok, 150 * MB + 1)
    graph_error(huge, 400, "ErrorMessageSizeExceeded")
    mid, r = draft_with_session(sandbox, tok, len(pdf))
    assert r.status_code == 201 and r.json()["nextExpectedRanges"] == ["0-"], r.text
    assert r.json()["@odata.context"].endswith("$metadata#microsoft.graph.uploadSession")
    url = r.json()["uploadUrl"]
    assert "authtoken=" in url
    graph_error(put(sandbox, url, pdf[:1 * MB], 0, len(pdf) + 1), 400, "ErrorInvalidRequest")      # wrong total
    graph_error(put(sandbox, url, pdf[:5 * MB], 0, len(pdf)), 413, "RequestEntityTooLarge")        # over 4 MB
    graph_error(put(sandbox, url, pdf[MB:2 * MB], MB, len(pdf)), 416, "InvalidRange")              # not in order
    graph_error(put(sandbox, url.replace("authtoken=", "authtoken=x"), pdf[:MB], 0, len(pdf)), 401,
                "InvalidAuthenticationToken")
    first = put(sandbox, url, pdf[:2 * MB], 0, len(pdf))
    assert first.status_code == 200 and first.json()["nextExpectedRanges"] == [str(2 * MB)]
    graph_error(put(sandbox, url, pdf[:MB], 0, len(pdf)), 416, "InvalidRange")                     # again
    last = put(sandbox, url, pdf[2 * MB:], 2 * MB, len(pdf))
    assert last.status_code == 201 and "/Attachments('" in last.headers["Location"]
    graph_error(put(sandbox, url, pdf[:MB], 0, len(pdf)), 404, "ErrorItemNotFound")                # done
    atts = call(sandbox, "GET", f"users/{sample.SENDER}/messages/{mid}/attachments", tok).json()["value"]
    assert [(a["name"], a["size"]) for a in atts] == [("big.pdf", len(pdf))]
    assert base64.b64decode(atts[0]["contentBytes"]) == pdf

    # expiry, and cancelling with DELETE
    _, r = draft_with_session(sandbox, tok, len(pdf))
    url = r.json()["uploadUrl"]
    old = sandbox.graph.uploads.clock
    sandbox.graph.uploads.clock = lambda: old() + sandbox.graph.uploads.lifetime + 1
    try:
        assert "expired" in graph_error(put(sandbox, url, pdf[:MB], 0, len(pdf)), 401, "InvalidAuthenticationToken")
    finally:
        sandbox.graph.uploads.clock = old
    assert requests.delete(url, verify=sandbox.ca_path, timeout=5).status_code == 204
    graph_error(put(sandbox, url, pdf[:MB], 0, len(pdf)), 404, "ErrorItemNotFound")


def test_inline_attachments_of_3_mb_are_refused_like_graph(sandbox):
    tok = token(sandbox)
    just_under = b"x" * (3 * MB - 1)
    r = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("big", attachment=b"x" * 3 * MB))
    assert "upload session" in graph_error(r, 413, "RequestEntityTooLarge")
    assert call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok,
                json=mail("ok", attachment=just_under)).status_code == 202
    two = mail("two halves", attachment=b"x" * (3 * MB // 2))
    two["message"]["attachments"] *= 2                                 # each under 3 MB, together not
    graph_error(call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=two), 413,
                "RequestEntityTooLarge")
    mid = call(sandbox, "POST", f"users/{sample.SENDER}/messages", tok, json=mail("d")["message"]).json()["id"]
    att = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.bin",
           "contentBytes": base64.b64encode(b"y" * 3 * MB).decode()}
    graph_error(call(sandbox, "POST", f"users/{sample.SENDER}/messages/{mid}/attachments", tok, json=att), 413,
                "RequestEntityTooLarge")
    att["contentBytes"] = base64.b64encode(b"y" * 1000).decode()
    added = call(sandbox, "POST", f"users/{sample.SENDER}/messages/{mid}/attachments", tok, json=att)
    assert added.status_code == 201 and added.json()["size"] == 1000
    assert added.json()["@odata.context"].endswith("/attachments/$entity")
    sent = call(sandbox, "POST", f"users/{sample.SENDER}/messages/{mid}/send", tok)
    assert sent.status_code == 202, sent.text
    assert [len(m.attachments) for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox] == [1, 1]


# -- what Microsoft's Graph SDK exposed (issue 13, items 7-10), over plain HTTP ----------------------------

def test_action_parameters_in_either_case(sandbox):
    tok = token(sandbox)
    body = {"Message": mail("Pascal")["message"], "SaveToSentItems": False}
    assert call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=body).status_code == 202
    assert sandbox.tenant.mailbox(sample.SENDER).sent == []              # SaveToSentItems false was read
    [msg] = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox/messages", tok).json()["value"]
    moved = call(sandbox, "POST", f"users/{sample.RECIPIENT}/messages/{msg['id']}/move", tok,
                 json={"DestinationId": "archive"})
    assert moved.status_code == 201 and moved.json()["subject"] == "Pascal"
    bad = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, data=b"not json",
               headers={"Content-Type": "application/json"})
    assert "Empty Payload" not in graph_error(bad, 400, "BadRequest")
    empty = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, data=b"")
    assert "Empty Payload" in graph_error(empty, 400, "ErrorInvalidRequest")


def test_child_folders(sandbox):
    tok = token(sandbox)
    base = f"users/{sample.RECIPIENT}/mailFolders"
    orders = call(sandbox, "POST", f"{base}/inbox/childFolders", tok, json={"displayName": "Orders"})
    assert orders.status_code == 201, orders.text
    inbox = call(sandbox, "GET", f"{base}/inbox", tok).json()
    assert orders.json()["parentFolderId"] == inbox["id"] and inbox["childFolderCount"] == 1
    graph_error(call(sandbox, "POST", f"{base}/inbox/childFolders", tok, json={"displayName": "orders"}), 409,
                "ErrorFolderExists")
    # the same name elsewhere is another folder
    top = call(sandbox, "POST", base, tok, json={"displayName": "Orders"})
    assert top.status_code == 201 and top.json()["id"] != orders.json()["id"]
    done = call(sandbox, "POST", f"{base}/{orders.json()['id']}/childFolders", tok, json={"DisplayName": "Done"})
    assert done.status_code == 201 and done.json()["parentFolderId"] == orders.json()["id"]
    kids = call(sandbox, "GET", f"{base}/inbox/childFolders", tok).json()
    assert [f["displayName"] for f in kids["value"]] == ["Orders"] and "childFolders" in kids["@odata.context"]
    assert "Done" not in [f["displayName"] for f in call(sandbox, "GET", base, tok).json()["value"]]
    call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("to file"))
    [msg] = call(sandbox, "GET", f"{base}/inbox/messages", tok).json()["value"]
    moved = call(sandbox, "POST", f"users/{sample.RECIPIENT}/messages/{msg['id']}/move", tok,
                 json={"destinationId": done.json()["id"]})
    assert moved.json()["parentFolderId"] == done.json()["id"]
    listed = call(sandbox, "GET", f"{base}/inbox/childFolders/{orders.json()['id']}/childFolders/"
                  f"{done.json()['id']}/messages", tok).json()["value"]
    assert [m["subject"] for m in listed] == ["to file"]
    ctx = call(sandbox, "GET", f"{base}/{done.json()['id']}/messages", tok).json()["@odata.context"]
    assert ctx.endswith(f"/mailFolders('{quote(done.json()['id'], safe='')}')/messages")   # encoded, as Graph
    got = call(sandbox, "GET", f"{base}/{done.json()['id']}", tok).json()
    assert (got["displayName"], got["totalItemCount"]) == ("Done", 1)


def test_entities_carry_context_conversation_index_weblink_and_a_new_change_key_per_update(sandbox):
    tok = token(sandbox)
    call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, json=mail("Versioned"))
    [row] = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages", tok).json()["value"]
    one = call(sandbox, "GET", f"users/{sample.RECIPIENT}/messages/{row['id']}", tok).json()
    assert one["@odata.context"].endswith("/messages/$entity")
    assert len(base64.b64decode(one["conversationIndex"])) == 22
    assert one["webLink"].startswith("https://outlook.office365.com/owa/?ItemID=")
    folder = call(sandbox, "GET", f"users/{sample.RECIPIENT}/mailFolders/inbox", tok).json()
    assert folder["@odata.context"].endswith("/mailFolders/$entity")
    keys = [(one["changeKey"], one["@odata.etag"])]
    for _ in range(2):                        # the same value twice: still an update, still a new key
        r = call(sandbox, "PATCH", f"users/{sample.RECIPIENT}/messages/{row['id']}", tok, json={"isRead": True})
        keys.append((r.json()["changeKey"], r.json()["@odata.etag"]))
    assert len({k for k, _ in keys}) == 3 and len({e for _, e in keys}) == 3
    assert all(e == f'W/"{k}"' for k, e in keys)


def test_fault_prefix_with_at_fires_for_a_percent_encoded_address(sandbox):
    tok = token(sandbox)
    sandbox.inject(Fault(f"/v1.0/users/{sample.INCOMING[0]}/", status=503, times=1))
    r = call(sandbox, "GET", f"users/{sample.INCOMING[0].replace('@', '%40')}/mailFolders/inbox", tok)
    graph_error(r, 503, "ServiceNotAvailable")
    assert call(sandbox, "GET", f"users/{sample.INCOMING[0].replace('@', '%40')}/mailFolders/inbox",
                tok).status_code == 200


def test_runtime_starts_a_vanished_upload_session_again_once_then_says_so(sandbox):
    from runtime_helpers import FakeClock, config
    from wizard.runtime import Attachment, MailError, Mailer
    pdf = big_pdf(5 * MB)
    clock = FakeClock()
    with Mailer(config(sandbox, "graph"), clock=clock, sleep=clock.sleep) as mailer:
        sandbox.inject(Fault("/api/v2.0/", status=404, times=1))      # the first range finds no session
        mailer.send(sample.RECIPIENT, "retried", "x", attachments=[Attachment("a.pdf", "application/pdf", pdf)])
        assert len([r for r in sandbox.requests if r.path.endswith("/createUploadSession")]) == 2
        [got] = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
        assert got.attachments[0]["content"] == pdf
        sandbox.inject(Fault("/api/v2.0/", status=404, times=None))
        with pytest.raises(MailError) as e:
            mailer.send(sample.RECIPIENT, "lost", "x", attachments=[Attachment("a.pdf", "application/pdf", pdf)])
    assert e.value.code == "http.unexpected" and "upload session: HTTP 404" in e.value.diagnosis.service_message
    assert sandbox.tenant.mailbox(sample.SENDER).folders.get("Drafts", []) == []      # the draft was removed
    assert [m.subject for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox] == ["retried"]


def test_mime_send_over_4_mb_is_refused_and_malformed_mime_named(sandbox):
    tok = token(sandbox)
    big = base64.b64encode(b"Subject: x\r\nTo: " + sample.RECIPIENT.encode() + b"\r\n\r\n" + b"y" * (3 * MB + 1000))
    r = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, data=big, headers={"Content-Type": "text/plain"})
    assert graph_error(r, 413, "RequestEntityTooLarge") == "The maximum request length supported is 4MB."
    r = call(sandbox, "POST", f"users/{sample.SENDER}/sendMail", tok, data=b"%%%", headers={"Content-Type": "text/plain"})
    assert graph_error(r, 400, "ErrorMimeContentInvalidBase64String") == "Invalid base64 string for MIME content."

"""Microsoft Graph mail on the sandbox: send, read with paging, attachments, PATCH, move, errors."""

from __future__ import annotations

import base64

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

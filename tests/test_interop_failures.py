"""Against real servers (issue 13): what goes wrong, refused by Dovecot or Postfix themselves, and
the diagnosis the user gets (code, cause, fix, the server's own words; no traceback, no token or
password anywhere). See tests/interop_servers.py."""

from __future__ import annotations

import json

import pytest

from interop_servers import FixedTokens, assert_clean, cli, closed_port, expired_token, save
from sandbox_helpers import password_token
from wizard.runtime import MailError, Mailer
from wizard.sandbox import sample

USER = sample.SERVICE_USER
OTHER = sample.RECIPIENT
SCOPES = "https://outlook.office365.com/SMTP.Send https://outlook.office365.com/IMAP.AccessAsUser.All"


def _words(d) -> str:
    return f"{d.code}: {d.cause} {d.fix} {d.service_message}"


def test_another_users_mailbox_is_refused_by_dovecot_and_poll_json_keeps_its_words(mail_servers, capsys):
    save(mail_servers.config("password", accounts=[OTHER]))     # svc-erp's token, OTHER's mailbox
    code, out, err = cli(["poll", "--once", "--json"], capsys)
    [line] = [json.loads(x) for x in out.splitlines()]
    assert code == 1 and line["account"] == OTHER
    error = line["error"]
    assert error["code"] == "imap.auth" and error["fix"]
    assert "[AUTHENTICATIONFAILED] Authentication failed." in error["cause"]
    assert "Microsoft" not in error["fix"]


def test_another_users_token_for_smtp_is_refused_by_the_server(mail_servers):
    cfg = mail_servers.config("client_secret")       # app-only: the XOAUTH2 user is the sender, erp@
    token = password_token(mail_servers.sb, SCOPES)  # but the token is svc-erp's
    with Mailer(cfg, tokens=FixedTokens(cfg, token)) as mailer, pytest.raises(MailError) as e:
        mailer.send(OTHER, "not mine", "x")
    d = e.value.diagnosis
    assert d.code == "smtp.auth" and sample.SENDER in d.cause
    assert "535 5.7.8" in d.cause and "status 401" in d.service_message     # final reply and error challenge
    assert_clean(_words(d))


def test_an_expired_token_is_refused_by_smtp_and_imap(mail_servers):
    cfg = mail_servers.config("password")
    token = expired_token(mail_servers.sb, USER)
    with Mailer(cfg, tokens=FixedTokens(cfg, token)) as mailer:
        with pytest.raises(MailError) as sent:
            mailer.send(USER, "too late", "x")
        with pytest.raises(MailError) as read:
            mailer.fetch(USER)
    assert sent.value.code == "smtp.auth" and "535" in sent.value.diagnosis.cause
    assert read.value.code == "imap.auth" and "[AUTHENTICATIONFAILED]" in read.value.diagnosis.cause
    for d in (sent.value.diagnosis, read.value.diagnosis):
        assert_clean(_words(d))
    assert "Local validation failed: Token has expired" in mail_servers.dovecot_log()


def test_a_recipient_refused_by_postfix(mail_servers, capsys):
    save(mail_servers.config("password", submit="postfix"))
    code, out, err = cli(["send", "--to", "someone@fabrikam.example", "--subject", "x"], capsys)
    assert code == 1
    assert "smtp.rcpt" in err and "someone@fabrikam.example" in err and "fix:" in err
    assert "554 5.7.1 <someone@fabrikam.example>: Relay access denied" in err


def test_a_closed_port(mail_servers, capsys):
    cfg = mail_servers.config("password")
    cfg.outgoing.port = closed_port()
    save(cfg)
    code, out, err = cli(["send", "--to", USER, "--subject", "x"], capsys)
    assert code == 1 and "net.refused" in err and f"127.0.0.1:{cfg.outgoing.port}" in err


def test_an_untrusted_certificate(mail_servers, capsys):
    cfg = mail_servers.config("password")
    cfg.endpoints.ca_bundle = mail_servers.sb.ca_path        # trusts the sandbox, not the mail servers' CA
    save(cfg)
    code, out, err = cli(["check", "--json"], capsys)
    data = json.loads(out)
    tls = next(s for s in data["steps"] if s["id"] == "tls")
    assert code == 1 and tls["status"] == "fail" and tls["code"] == "tls.untrusted" and tls["fix"]
    code, out, err = cli(["send", "--to", USER, "--subject", "x"], capsys)
    assert code == 1 and "tls.untrusted" in err


def test_a_server_that_speaks_another_protocol(mail_servers, capsys):
    cfg = mail_servers.config("password")
    cfg.outgoing.port = mail_servers.ports["imap_plain"]      # SMTP pointed at Dovecot's IMAP
    cfg.incoming.port = mail_servers.ports["postfix_relay"]   # IMAP over TLS pointed at Postfix's SMTP
    save(cfg)
    code, out, err = cli(["send", "--to", USER, "--subject", "x"], capsys)
    assert code == 1 and "net.protocol" in err and "it speaks IMAP" in err and "* OK" in err
    code, out, err = cli(["poll", "--once", "--json"], capsys)
    [line] = [json.loads(x) for x in out.splitlines()]
    assert code == 1 and line["error"]["code"] == "net.protocol"
    assert "it speaks SMTP" in line["error"]["cause"] and "220 relay.contoso.com ESMTP" in line["error"]["cause"]


@pytest.mark.parametrize("forge", ["another key", "another issuer"])
def test_a_token_dovecot_cannot_verify_is_refused(mail_servers, forge):
    import base64
    from cryptography.hazmat.primitives.asymmetric import rsa
    from wizard.sandbox.ca import material
    from wizard.sandbox.identity import sign_jwt
    token = password_token(mail_servers.sb, SCOPES)
    body = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    key = material()
    if forge == "another key":      # same kid, signed by a key Dovecot does not have
        key = type(key)(**{**key.__dict__, "jwt_key": rsa.generate_private_key(public_exponent=65537, key_size=2048)})
    else:
        claims["iss"] = "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"
    cfg = mail_servers.config("password")
    with Mailer(cfg, tokens=FixedTokens(cfg, sign_jwt(claims, key))) as mailer, pytest.raises(MailError) as e:
        mailer.fetch(USER)
    assert e.value.code == "imap.auth" and "[AUTHENTICATIONFAILED]" in e.value.diagnosis.cause
    reason = "Bad signature" if forge == "another key" else f"Issuer '{claims['iss']}' is not allowed"
    assert f"Local validation failed: {reason}" in mail_servers.dovecot_log()        # Dovecot's own check

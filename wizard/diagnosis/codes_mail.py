"""SMTP and IMAP replies: Exchange Online's, and those of any RFC-conforming
server (a refused recipient, try again later, another protocol on the port)."""

from __future__ import annotations

from wizard.diagnosis.model import Entry, entry


MAIL: dict[str, Entry] = {
    # -- SMTP / IMAP ----------------------------------------------------
    "535 5.7.139": entry(
        "SMTP AUTH is switched off for the mailbox {address} or for the whole tenant, so the server refuses "
        "any sign-in over SMTP (also with OAuth).",
        "In Exchange Online PowerShell run: Set-CASMailbox -Identity {address} "
        "-SmtpClientAuthenticationDisabled $false (if the whole tenant has it off, check "
        "Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled; the mailbox setting above "
        "overrides it for this mailbox). Changes can take up to an hour.", None, "mail"),
    "535 5.7.3": entry(
        "The SMTP server rejected the token for {address} (535 5.7.3 Authentication unsuccessful).",
        "App-only: register the app's service principal in Exchange (New-ServicePrincipal -AppId {client_id} "
        "-ObjectId <enterprise application object id>), give it rights on the mailbox (Add-MailboxPermission "
        "-Identity {address} -User <service principal id> -AccessRights FullAccess) and check that the app has "
        "the SMTP.SendAsApp permission with admin consent. User sign-in: the user needs a mailbox and the "
        "delegated SMTP.Send permission consented.", None, "registration"),
    "554 5.2.252": entry(
        "The account may not send as {address} (554 5.2.252 SendAsDenied).",
        "Give the signing-in account the Send As right on {address} (Add-RecipientPermission -Identity "
        "{address} -AccessRights SendAs -Trustee <the account>), or send from the account's own address.",
        None, "mail"),
    "IMAP AUTHENTICATE failed": entry(
        "The IMAP server refused the sign-in to {address} (AUTHENTICATE failed): the token was rejected, or "
        "IMAP is switched off for the mailbox.",
        "Check that IMAP is on for the mailbox (Set-CASMailbox -Identity {address} -ImapEnabled $true). "
        "App-only: register the app's service principal (New-ServicePrincipal -AppId {client_id} -ObjectId "
        "<enterprise application object id>), give it Full Access to {address} (Add-MailboxPermission "
        "-Identity {address} -User <service principal id> -AccessRights FullAccess) and grant the "
        "IMAP.AccessAsApp permission. User sign-in: the user needs Full Access to {address} and the delegated "
        "IMAP.AccessAsUser.All permission.", None, "registration"),
    "imap.error": entry(
        "The IMAP server refused a command for {address}.",
        "See the server's message below; check that the mailbox exists and that the account may open it.",
        None, "mail"),
    # SMTP / IMAP servers other than Exchange Online (the fix never points to Microsoft's documentation),
    # and what any server may answer: a refused recipient, try-again-later, another protocol on the port.
    "smtp.auth": entry(
        "The SMTP server {host} refused the sign-in as {user} (AUTH XOAUTH2): it did not accept the token "
        "for this account.",
        "The XOAUTH2 user must be the account the token was issued for (app-only: the sending mailbox; user "
        "sign-in: the signed-in user). Check the user name and sender, then ask the admin of {host} whether "
        "it accepts tokens of this tenant and app (issuer, signing key, expiry); its own words are below.",
        None, "mail"),
    "smtp.rcpt": entry(
        "The SMTP server {host} refused the recipient {recipient}.",
        "Check the recipient's address. A server that relays only for its own domains refuses others "
        "('Relay access denied'): send to an address that server delivers, or ask its admin to let {user} "
        "relay. The server's own words are below.", None, "mail"),
    "smtp.transient": entry(
        "The SMTP server {host} asked to try again later ({said}), still after {attempts} tries: the message "
        "was not sent.",
        "Send it again in a few minutes. If it persists, ask the admin of {host} about the reply below (4xx "
        "replies are temporary: the server is busy, a limit was reached, or a service behind it is down).",
        None, None),
    "smtp.refused": entry(
        "The SMTP server {host} refused the message from {address}.",
        "Read the server's own words below: they name what it objects to (sender, recipient, size or "
        "content). {host} is not Exchange Online, so its admin decides; check the server name and port "
        "if this is not the server you meant.", None, "mail"),
    "imap.auth": entry(
        "The IMAP server {host} refused the sign-in to {address} (AUTHENTICATE XOAUTH2): it did not accept "
        "the token for this mailbox.",
        "The XOAUTH2 user must be the mailbox the token may open (a user sign-in: normally the signed-in "
        "user's own). Check the account address and user name, then ask the admin of {host} whether it "
        "accepts tokens of this tenant and app (issuer, signing key, expiry); its own words are below.",
        None, "mail"),
    "net.protocol": entry(
        "{host}:{port} answered, but not as {expected}: {speaks}",
        "Check the port: {expected} is on {usual}. The server's first words are below.", None, "mail"),
}

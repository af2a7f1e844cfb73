"""mailwizard's own codes for what the services do not name: the config, the
network and TLS, HTTP answers that are not the service's, token claims, and
a cancelled or failed test."""

from __future__ import annotations

from wizard.diagnosis.aadsts import CLOUD_CHOICE
from wizard.diagnosis.model import EWS_SHUTDOWN_DATE, Entry, IDS, PERMS, SECRET, entry


LOCAL: dict[str, Entry] = {
    # -- our own: config, network, TLS, HTTP ---------------------------------
    "secret.id_pasted": entry(
        "The client secret field holds the Secret ID (a GUID), not the secret Value.",
        "In Certificates & secrets copy the column named 'Value' (about 40 characters with '~'). If the Value "
        "is hidden already, create a new secret and copy its Value at once.", SECRET, "ids"),
    "secret.expiring": entry(
        "The client secret expires soon.",
        "Create the next client secret for app {client_id} before it expires, and update it here.",
        SECRET, "ids"),
    "config.invalid": entry(
        "A setting is missing or not valid.",
        "Correct the named field; the message under it says what is expected.", None, None),
    "net.dns": entry(
        "The name {host} could not be found (DNS).",
        "Check the spelling of the server name and the computer's network and DNS settings.", None, "mail"),
    "net.refused": entry(
        "The connection to {host}:{port} was refused: nothing answers on that port.",
        "Check the host name and port; for Exchange Online it is outlook.office365.com, port 443 (EWS; "
        "port 993 for IMAP), and smtp.office365.com, port 587 for SMTP.",
        None, "mail"),
    "net.timeout": entry(
        "{host}:{port} did not answer in time.",
        "Check the network, firewall and proxy (HTTPS_PROXY / NO_PROXY); the server must be reachable on "
        "port {port}.", None, "mail"),
    "net.unreachable": entry(
        "{host}:{port} cannot be reached from this computer (no route to it).",
        "Check the network connection, firewall and proxy settings.", None, "mail"),
    "net.reset": entry(
        "The connection to {host}:{port} was cut off by the other side or a firewall.",
        "Check firewall and proxy settings; try again in a moment.", None, "mail"),
    "net.proxy": entry(
        "The proxy refused or could not open the connection to {host}.",
        "Check HTTPS_PROXY / NO_PROXY and that the proxy allows {host}; a proxy that needs a sign-in must "
        "allow this computer through.", None, None),
    "tls.untrusted": entry(
        "The certificate of {host} is not trusted: it is signed by an authority this computer does not know "
        "(often an inspecting proxy or firewall).",
        "If your network inspects TLS, put its CA certificate in a PEM file and give its path as the CA bundle "
        "(endpoints.ca_bundle). Verification is never switched off.", None, "target"),
    "tls.ca_not_strict": entry(
        "The certificate of {host} comes from an authority this computer trusts (often the company's TLS "
        "inspection proxy or firewall), but it breaks a rule of the certificate standard (RFC 5280) that "
        "Python 3.13 and later enforce: {problem}.",
        "Ask the admin of that proxy or company CA to issue a CA certificate whose Basic Constraints are marked "
        "critical, with Key Usage (keyCertSign) and a Subject Key Identifier, and certificates with an "
        "Authority Key Identifier; then put the new CA certificate in the CA bundle (endpoints.ca_bundle). "
        "Verification is never switched off; Python 3.12 and older do not apply this rule.", None, "target"),
    "tls.hostname": entry(
        "The certificate of {host} is valid, but for another name.",
        "Check the server name: for Exchange Online it is outlook.office365.com. A proxy that rewrites "
        "certificates may also cause this.", None, "mail"),
    "tls.expired": entry(
        "The certificate of {host} has expired (or the computer's clock is wrong).",
        "Check the computer's date and time; if they are right, the server's certificate must be renewed.",
        None, None),
    "tls.error": entry(
        "The secure connection (TLS) to {host} could not be set up.",
        "Check proxy and firewall settings; the server must speak TLS 1.2 or later on port {port}.",
        None, None),
    "http.html": entry(
        "{host} answered with a web page instead of the expected data: usually a proxy or captive-portal "
        "sign-in page, or the wrong address.",
        "Open https://{host} in a browser on this computer and complete any network sign-in; check the "
        "proxy settings and the server name.", None, "target"),
    "http.5xx": entry(
        "The Microsoft identity platform is having trouble (server error), even after a few tries.",
        "Try again in a few minutes; check https://status.cloud.microsoft for incidents.", None, None),
    "http.unexpected": entry(
        "{host} gave an answer the wizard did not expect.",
        "Check the server name and any proxy in between; the message below is the service's own.",
        None, None),
    # -- token claims --------------------------------------------------------
    "claims.aud": entry(
        "The token is meant for another service ({service}), not {resource}.",
        "Check " + CLOUD_CHOICE + " and the Exchange server name.", None, "target"),
    "claims.tid": entry(
        "The token comes from another tenant than {tenant_id}.",
        "Copy the Directory (tenant) ID again from the app's Overview page.", IDS, "ids"),
    "claims.roles": entry(
        "The token carries no {permission} role: admin consent missing or permission type wrong "
        "(Delegated instead of Application).",
        "In API permissions of app {client_id}, add {api} > {permission} of type Application, then click "
        "'Grant admin consent' until the status is green.", PERMS, "registration"),
    "claims.scp": entry(
        "The token carries no {permission} permission: admin consent missing or permission type wrong "
        "(Application instead of Delegated).",
        "In API permissions of app {client_id}, add {api} > {permission} of type Delegated, then click "
        "'Grant admin consent' until the status is green.", PERMS, "registration"),
    "claims.readwrite": entry(
        "The token can read mail (Mail.Read) but not change it: the runtime marks each fetched message read "
        "and moves it to 'Processed', which needs Mail.ReadWrite; without it `mailwizard poll` fails on every "
        "message and fetches the same mail again.",
        "In API permissions of app {client_id}, add {api} > Mail.ReadWrite of type {kind} (Mail.Read may then "
        "be removed), then click 'Grant admin consent' until the status is green.", PERMS, "registration"),
    "claims.exp": entry(
        "The token is already expired when it arrives: the computer's clock is probably wrong.",
        "Set the computer's date, time and time zone correctly (or turn on time sync) and test again.",
        None, None),
    "claims.upn": entry(
        "The token was issued for {service}, not for {username}.",
        "Check the user name.", None, "ids"),
    "claims.decode": entry(
        "The token could not be read.",
        "Test again; if it persists, check that nothing between this computer and Microsoft rewrites "
        "responses (proxy).", None, None),
    "ews.retirement": entry(
        "EWS in Exchange Online is switched off for good on " + EWS_SHUTDOWN_DATE + " (blocked by default "
        "since 2026-10-01 unless the tenant allows the app).",
        "This works for now. Plan the move to Microsoft Graph before " + EWS_SHUTDOWN_DATE + "; until then "
        "keep app {client_id} in EwsAllowedAppIDs.", None, None),
    "ews.protocol": entry(      # no longer used by the connection test (it checks every protocol); kept for callers
        "The connection test did not check the mailbox over {service}.",
        "The sign-in was checked; check the mailbox in the system itself after saving.", None, None),
    "ews.redirect": entry(
        "The server redirected the request elsewhere: the server name may be wrong.",
        "Use the Exchange server name itself (outlook.office365.com for Exchange Online).", None, "mail"),
    "ews.error": entry(
        "Exchange reported an error for {address}.",
        "See the service's message below; correct the mailbox settings and test again.", None, "mail"),
    "cancelled": entry("The test was cancelled.", "Run the test again when ready.", None, None),
    "internal": entry(
        "The test stopped on an unexpected problem inside mailwizard.",
        "Test again; if it repeats, report it with the message below.", None, None),
}

"""The identity platform's codes (AADSTS): sign-in, consent, certificates,
the device code flow, and the codes users of peer tools meet most."""

from __future__ import annotations

from wizard.diagnosis.aadsts import CLOUD_CHOICE, PEER_ENTRIES
from wizard.diagnosis.registration_codes import ENTRIES as REGISTRATION_ENTRIES
from wizard.diagnosis.model import ACCOUNT, CA, CONSENT, Entry, GUIDES, IDS, MFA, PUBLIC, SECRET, USERS, entry


IDENTITY: dict[str, Entry] = {
    # -- identity platform (AADSTS) ------------------------------------
    "AADSTS90002": entry(
        "The tenant '{tenant_id}' was not found: the Directory (tenant) ID is wrong, or it belongs to another "
        "Microsoft cloud than the one chosen.",
        "Copy the Directory (tenant) ID again from the app's Overview page, and check " + CLOUD_CHOICE
        + ". F6 on stage 3 finds a domain's tenant ID and cloud.", IDS, "ids"),
    "AADSTS900023": entry(
        "The Directory (tenant) ID '{tenant_id}' is neither a GUID nor a domain name.",
        "Copy the Directory (tenant) ID again from the app's Overview page (a GUID like 5f8d2c1a-...).",
        IDS, "ids"),
    "AADSTS700016": entry(
        "No application with the client ID {client_id} exists in this tenant: the Application (client) ID is "
        "wrong, the app was registered in another tenant, or it was created less than a minute ago.",
        "Copy the Application (client) ID again from the app's Overview page and check the tenant ID next to "
        "it. If you just registered the app, wait a minute and test again.", IDS, "ids"),
    "AADSTS7000215": entry(
        "The client secret was not accepted. Most often the Secret ID was pasted instead of the secret Value, "
        "or part of the Value is missing.",
        "In Certificates & secrets, copy the column named 'Value' (about 40 characters with '~'), not "
        "'Secret ID'. If the Value is hidden already, create a new secret and copy its Value at once.",
        SECRET, "ids"),
    "AADSTS7000222": entry(
        "The client secret has expired.",
        "Create a new client secret in Certificates & secrets for app {client_id}, copy its Value, paste it "
        "here and type its expiry date so the wizard can warn you next time.", SECRET, "ids"),
    "AADSTS7000218": entry(
        "The app {client_id} does not allow public client flows, which the user name/password flow needs.",
        "In the app's Authentication page set 'Allow public client flows' to Yes and save, or choose the "
        "client secret flow instead.", PUBLIC, "registration"),
    "AADSTS50126": entry(
        "The user name or password for {username} is wrong.",
        "Type the password again (it is case sensitive) and check the user name is the full sign-in name "
        "(user@domain).", None, "ids"),
    "AADSTS50034": entry(
        "The user {username} does not exist in this tenant.",
        "Check the spelling of the user name, and that it is an account of this tenant (Entra ID > Users).",
        USERS, "ids"),
    "AADSTS50076": MFA, "AADSTS50079": MFA, "AADSTS50158": MFA,
    "AADSTS53003": CA, "AADSTS530033": CA,
    "AADSTS65001": entry(
        "The permissions of app {client_id} have not been consented to.",
        "In API permissions click 'Grant admin consent' and check that every status icon turns green.",
        CONSENT, "registration"),
    "AADSTS50057": ACCOUNT, "AADSTS50053": ACCOUNT, "AADSTS50055": ACCOUNT,
    "AADSTS500011": entry(
        "The resource {resource} is not known in this tenant: Exchange Online is not licensed there, or the "
        "wrong Microsoft cloud is chosen.",
        "Check that the tenant has Exchange Online mailboxes, and " + CLOUD_CHOICE + ".",
        None, "target"),
    "AADSTS70011": entry(
        "The requested scope is not valid for this flow.",
        "The client secret flow must ask for '{resource}/.default'. If you see this with mailwizard, please "
        "report it; check " + CLOUD_CHOICE + ".", None, "target"),
    "AADSTS50194": entry(
        "The app is single tenant, but the sign-in went to a shared endpoint (common/organizations).",
        "Use the tenant's own Directory (tenant) ID instead of 'common'.", IDS, "ids"),
    "AADSTS700027": entry(
        "The certificate was not accepted: app {client_id} has no uploaded certificate with this thumbprint, "
        "the uploaded one has expired, or the key file does not belong to it.",
        "Upload the .cer file (App registrations > the app > Certificates & secrets > Certificates > Upload "
        "certificate) and check that the Thumbprint column there equals auth.thumbprint; the key file in "
        "auth.certificate must be the one created together with that .cer.", None, "registration"),
    # -- the codes users of peer tools meet most (wizard/aadsts.py) --
    **{code: entry(cause, fix, GUIDES.get(guide), screen) for code, (cause, fix, guide, screen) in PEER_ENTRIES.items()},
    # -- `mailwizard register`: Graph's refusals (diagnosis/registration_codes.py) --
    **{code: entry(cause, fix, guide, screen) for code, (cause, fix, guide, screen) in REGISTRATION_ENTRIES.items()},
    # -- certificate flow: client assertion (wizard/certs.py, sandbox/assertion.py) --
    "AADSTS700024": entry(
        "The signed sign-in request (client assertion) is outside its valid time: this computer's clock is "
        "probably wrong.",
        "Set the computer's date, time and time zone correctly (or turn on time sync) and test again.",
        None, None),
    "AADSTS700021": entry(
        "The signed sign-in request names another application than {client_id}.",
        "Check the Application (client) ID; it must be the app the certificate was uploaded to.", None, "ids"),
    "AADSTS700023": entry(
        "The signed sign-in request was meant for another tenant or cloud than {authority}.",
        "Check the Directory (tenant) ID and " + CLOUD_CHOICE + ".", None, "ids"),
    "AADSTS50027": entry(
        "The identity platform could not read the signed sign-in request (client assertion).",
        "Create a new key and certificate with `mailwizard cert create` and upload the new .cer; if it "
        "persists, report it with the message below.", None, "ids"),
    # -- device code flow (wizard/device_code.py, sandbox/device.py) --
    "AADSTS70019": entry(
        "The sign-in code expired before the sign-in was completed in the browser.",
        "Run `mailwizard login` again and complete the sign-in within the time shown (15 minutes).",
        None, "ids"),
    "AADSTS70016": entry(
        "The sign-in in the browser has not been completed yet.",
        "Open the page shown, type the code and sign in; mailwizard keeps waiting until the code expires.",
        None, "ids"),
    "AADSTS70018": entry(
        "The code typed in the browser was wrong.",
        "Run `mailwizard login` again and type the code exactly as shown.", None, "ids"),
    "authorization_declined": entry(
        "The sign-in was cancelled in the browser (the user chose not to allow it).",
        "Run `mailwizard login` again and approve the sign-in with the account the system should use.",
        None, "ids"),
    "access_denied": entry(
        "The sign-in was cancelled in the browser (the user chose not to allow it).",
        "Run `mailwizard login` again and approve the sign-in with the account the system should use.",
        None, "ids"),
    "AADSTS50173": entry(
        "The saved sign-in was revoked (password changed or sessions revoked by an admin).",
        "Sign in again with `mailwizard login`.", None, "ids"),
    "AADSTS70000": entry(
        "The saved sign-in (refresh token) or sign-in code is no longer valid.",
        "Sign in again with `mailwizard login`.", None, "ids"),
    "auth.signin_needed": entry(
        "No saved sign-in for the device code flow on this computer (or it has expired).",
        "Sign in first with `mailwizard login` (once: the sign-in is then kept and refreshed by itself).",
        None, "ids"),
}

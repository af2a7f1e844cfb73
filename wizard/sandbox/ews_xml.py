"""EWS as the sandbox writes it: SOAP namespaces, envelopes, folder and item
IDs, distinguished folders and the error texts of the real service."""

from __future__ import annotations

import base64



SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
XML_CT = {"Content-Type": "text/xml; charset=utf-8"}
BEARER_CHALLENGE = ('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                    'error="invalid_token"')
# X-EWS-Policy-Reason values are the sandbox's own (the header's presence is what matters).
POLICY_DISABLED = "EwsDisabledForOrganization"
POLICY_NOT_ALLOWED = "AppIdNotInEwsAllowedAppIds"
SERVER_VERSION = ('<h:ServerVersionInfo xmlns:h="%s" MajorVersion="15" MinorVersion="20" '
                  'MajorBuildNumber="8769" MinorBuildNumber="23" Version="V2018_01_08"/>' % T)
FOLDERS = {   # distinguished id -> (display name, folder class, element)
    "root": ("Top of Information Store", None, "Folder"),
    "msgfolderroot": ("Top of Information Store", "IPF.Note", "Folder"),
    "inbox": ("Inbox", "IPF.Note", "Folder"),
    "sentitems": ("Sent Items", "IPF.Note", "Folder"),
    "drafts": ("Drafts", "IPF.Note", "Folder"),
    "deleteditems": ("Deleted Items", "IPF.Note", "Folder"),
    "outbox": ("Outbox", "IPF.Note", "Folder"),
    "junkemail": ("Junk Email", "IPF.Note", "Folder"),
    "archivemsgfolderroot": ("Top of Information Store", "IPF.Note", "Folder"),
    "calendar": ("Calendar", "IPF.Appointment", "CalendarFolder"),
    "contacts": ("Contacts", "IPF.Contact", "ContactsFolder"),
    "tasks": ("Tasks", "IPF.Task", "TasksFolder"),
}
ERROR_TEXT = {
    "ErrorNonExistentMailbox": "The SMTP address has no mailbox associated with it.",
    "ErrorImpersonateUserDenied": "The account does not have permission to impersonate the requested user.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorSendAsDenied": "The user account which was used to submit this request does not have the right "
                         "to send mail on behalf of the specified sending account., Cannot submit message.",
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorMissingEmailAddress": "When making a request as an account that does not have a mailbox, you must "
                                "specify the mailbox primary SMTP address for any distinguished folders.",
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorInvalidOperation": "The operation is not supported.",
    "ErrorInternalServerError": "An internal server error occurred. The operation failed.",
    "ErrorInvalidRecipients": "At least one recipient isn't valid.",
    "ErrorInvalidIdMalformed": "Id is malformed.",
    "ErrorFolderExists": "A folder with the specified name already exists.",
    "ErrorCrossMailboxMoveCopy": "Cross-mailbox move or copy is not supported.",
    "ErrorMoveCopyFailed": "The move or copy operation failed.",
    "ErrorUnsupportedPathForQuery": "The property path is not supported for a query restriction.",
    "ErrorUnsupportedPathForSortGroup": "The property path is not supported for sorting or grouping.",
    "ErrorUnsupportedQueryFilter": "The restriction contains a filter that is not supported.",
    "ErrorInvalidValueForProperty": "The value is invalid for the property.",
    "ErrorInvalidIndexedPagingParameters": "The paging parameters are invalid.",
    "ErrorInvalidPropertySet": "Set action is invalid for property.",
    "ErrorStaleObject": "The change key passed in the request does not match the current change key for the item.",
    "ErrorInvalidSendItemSaveSettings": "SavedItemFolderId is set but SaveItemToFolder is false.",
    "ErrorMimeContentConversionFailed": "The MIME content conversion failed.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
}


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _text(elem, *path) -> str:
    for tag in path:
        if elem is None:
            return ""
        elem = elem.find(_q(T, tag))
    return (elem.text or "").strip() if elem is not None else ""


def _envelope(body_xml: str, header: bool = True) -> bytes:
    head = f"<s:Header>{SERVER_VERSION}</s:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}">{head}<s:Body '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body_xml}</s:Body></s:Envelope>').encode()


def folder_id(address: str, name: str) -> str:
    return base64.b64encode(f"AAMk:{address.lower()}:{name}".encode()).decode()


def item_id(address: str, message_id: str) -> str:
    return base64.b64encode(f"AAMkI:{address.lower()}:{message_id}".encode()).decode()


def _parse_id(value: str, prefix: str) -> tuple[str, str] | None:
    try:
        kind, address, rest = base64.b64decode(value, validate=True).decode().split(":", 2)
    except (ValueError, UnicodeDecodeError):
        return None
    return (address, rest) if kind == prefix else None

"""Microsoft Graph mail folders in the sandbox: the top level (``/mailFolders``),
child folders at any depth (``/mailFolders/{id}/childFolders``), resolving a
folder reference (well-known name or ID) and creating a folder.

A child folder lives in ``Mailbox.folders`` under its path ("Inbox/Orders",
``mailstore.SEP``), so IMAP sees the same tree with "/" as its delimiter.
Creating a folder whose name a sibling already has (case-insensitive) gives
409 ``ErrorFolderExists``, as Graph does."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from wizard.sandbox.graph_json import ROOT_NAME, GraphError, folder_id, folder_json
from wizard.sandbox.identity import Response, json_response
from wizard.sandbox.mailstore import LOCK, SEP, WELL_KNOWN, child_names, folder, folder_names

ROOT = "msgfolderroot"      # Graph's well-known name of the folder over the top level
NOT_FOUND = "The specified object was not found in the store."


def resolve(mb, ref: str) -> str | None:
    """The folder path of a folder reference (well-known name or ID); None: the root."""
    low = ref.lower()
    if low == ROOT or ref == folder_id(mb.address, ROOT_NAME):
        return None
    if low in WELL_KNOWN:
        return WELL_KNOWN[low]
    for name in folder_names(mb):
        if folder_id(mb.address, name) == ref:
            return name
    if not ref.startswith("AAMk"):          # e.g. a display name such as "Processed"
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)


def context(base: str, mb, parent: str | None, entity: bool = False) -> str:
    """@odata.context of a folder collection (or one entity of it) under ``parent``."""
    user = f"{base}/v1.0/$metadata#users('{quote(mb.address)}')"
    coll = "/mailFolders" if parent is None else \
        f"/mailFolders('{quote(folder_id(mb.address, parent), safe='')}')/childFolders"
    return user + coll + ("/$entity" if entity else "")


def one(base: str, mb, name: str) -> Response:
    parent = name.rsplit(SEP, 1)[0] if SEP in name else None
    return json_response(200, {"@odata.context": context(base, mb, parent, True), **folder_json(mb, name)})


def list_folders(base: str, mb, parent: str | None, q: dict) -> Response:
    rows = [folder_json(mb, n) for n in child_names(mb, parent)]
    flt = q.get("$filter", "")
    if flt:
        m = re.match(r"^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$", flt, re.I)
        if m is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid "
                             "nodes.")
        rows = [r for r in rows if r["displayName"].lower() == m.group(1).replace("''", "'").lower()]
    top = q.get("$top", "100")
    return json_response(200, {"@odata.context": context(base, mb, parent),
                               "value": rows[:int(top) if top.isdigit() else 100]})


def create_folder(base: str, mb, parent: str | None, body: bytes) -> Response:
    try:
        data = json.loads(body or b"{}")
        name = next(v for k, v in data.items() if k.lower() == "displayname").strip()
    except (ValueError, StopIteration, TypeError, AttributeError):
        raise GraphError(400, "ErrorInvalidRequest", "displayName is required.") from None
    if not name or SEP in name:
        raise GraphError(400, "ErrorInvalidRequest", f"The sandbox takes a folder name without '{SEP}'.")
    with LOCK:
        if any(n.rsplit(SEP, 1)[-1].lower() == name.lower() for n in child_names(mb, parent)):
            raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        path = name if parent is None else parent + SEP + name
        folder(mb, path, create=True)
    return json_response(201, {"@odata.context": context(base, mb, parent, True), **folder_json(mb, path)})

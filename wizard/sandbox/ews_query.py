"""FindItem and FindFolder as the sandbox serves them: restrictions, sort
orders, paging views, and the fields UpdateItem may set."""

from __future__ import annotations

import operator
from datetime import datetime, timezone

from wizard.sandbox.mailstore import received_dt
from wizard.sandbox.tenant import Mailbox, Message
from wizard.sandbox.ews_xml import FOLDERS, T, _q
from wizard.sandbox.ews_folders import CUSTOM, _Refused, _children, _display, _items


COMPARE = {"IsEqualTo": operator.eq, "IsNotEqualTo": operator.ne, "IsGreaterThan": operator.gt,
           "IsGreaterThanOrEqualTo": operator.ge, "IsLessThan": operator.lt, "IsLessThanOrEqualTo": operator.le}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(text)
    return value in ("true", "1")


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _item_field(m: Message, uri: str, code: str = "ErrorUnsupportedPathForQuery"):
    if uri == "message:IsRead":
        return m.is_read
    if uri in ("item:DateTimeReceived", "item:DateTimeSent", "item:DateTimeCreated"):
        return received_dt(m)
    if uri == "item:Subject":
        return m.subject
    if uri == "item:HasAttachments":
        return bool(m.attachments)
    if uri == "item:ItemClass":
        return "IPM.Note"
    raise _Refused(code)


def _folder_field(mb: Mailbox, key: str, uri: str):
    if uri == "folder:DisplayName":
        return _display(mb, key)
    if uri == "folder:FolderClass":
        if key.startswith(CUSTOM):
            return mb.folder_classes.get(key[len(CUSTOM):], "IPF.Note") or None
        return FOLDERS[key][1]
    if uri in ("folder:TotalCount", "folder:UnreadCount"):
        items = _items(mb, key) or []
        return len(items) if uri == "folder:TotalCount" else sum(1 for m in items if not m.is_read)
    if uri == "folder:ChildFolderCount":
        return len(_children(mb, key))
    raise _Refused("ErrorUnsupportedPathForQuery")


def _coerce(text: str, like):
    if isinstance(like, bool):
        return _bool(text)
    if isinstance(like, datetime):
        return _when(text)
    if isinstance(like, int):
        return int(text)
    return text


def _matches(expr, get) -> bool:
    """Evaluate an EWS restriction (SearchExpression) with ``get(field_uri)`` giving values."""
    tag = _local(expr.tag)
    if tag == "And":
        return all(_matches(c, get) for c in expr)
    if tag == "Or":
        return any(_matches(c, get) for c in expr)
    if tag == "Not":
        if len(expr) != 1:
            raise _Refused("ErrorUnsupportedQueryFilter")
        return not _matches(expr[0], get)
    path = expr.find(_q(T, "FieldURI"))
    if path is None:                        # IndexedFieldURI / ExtendedFieldURI
        raise _Refused("ErrorUnsupportedPathForQuery")
    value = get(path.get("FieldURI", ""))
    if tag == "Exists":
        return value is not None
    if tag in COMPARE:
        const = expr.find(f"{_q(T, 'FieldURIOrConstant')}/{_q(T, 'Constant')}")
        if const is None:
            raise _Refused("ErrorUnsupportedQueryFilter")
        try:
            other = _coerce(const.get("Value", ""), value)
        except ValueError:
            raise _Refused("ErrorInvalidValueForProperty") from None
        if value is None:
            return False
        return COMPARE[tag](value, other)
    if tag == "Contains":
        const = expr.find(_q(T, "Constant"))
        if const is None or not isinstance(value, str):
            raise _Refused("ErrorUnsupportedQueryFilter")
        text, part = value, const.get("Value", "")
        if "ignorecase" in expr.get("ContainmentComparison", "Exact").lower():
            text, part = text.lower(), part.lower()
        mode = expr.get("ContainmentMode", "Substring")
        if mode == "FullString":
            return text == part
        if mode == "Prefixed":
            return text.startswith(part)
        if mode == "PrefixOnWords":
            return any(w.startswith(part) for w in text.split())
        return part in text
    raise _Refused("ErrorUnsupportedQueryFilter")


def _sorted(items: list[Message], order) -> list[Message]:
    rows = list(items)
    for field_order in reversed(list(order)):
        path = field_order.find(_q(T, "FieldURI"))
        uri = path.get("FieldURI", "") if path is not None else ""
        rows.sort(key=lambda m: _item_field(m, uri, "ErrorUnsupportedPathForSortGroup"),
                  reverse=field_order.get("Order", "Ascending") == "Descending")
    return rows


def _page(rows: list, view) -> tuple[int, list, bool]:
    """(IndexedPagingOffset of the next page, this page, IncludesLastItemInRange)."""
    if view is None:
        return len(rows), rows, True
    try:
        offset = int(view.get("Offset", "0"))
        limit = int(view.get("MaxEntriesReturned") or max(len(rows), 1))
    except ValueError:
        raise _Refused("ErrorInvalidIndexedPagingParameters") from None
    if offset < 0 or limit < 1:
        raise _Refused("ErrorInvalidIndexedPagingParameters")
    if view.get("BasePoint", "Beginning") == "End":
        end = max(len(rows) - offset, 0)
        start = max(end - limit, 0)
        return offset + (end - start), rows[start:end], start == 0
    page = rows[offset:offset + limit]
    return offset + len(page), page, offset + len(page) >= len(rows)


def _root_folder(offset: int, total: int, last: bool, collection: str, xml: str) -> str:
    """One parent's FindFolder/FindItem result: a page (``_page``) of ``collection`` (Folders or Items)."""
    return (f'<m:RootFolder IndexedPagingOffset="{offset}" TotalItemsInView="{total}" '
            f'IncludesLastItemInRange="{"true" if last else "false"}"><t:{collection}>{xml}</t:{collection}>'
            f'</m:RootFolder>')


SETTABLE = {"message:IsRead": ("is_read", "IsRead", _bool), "item:Subject": ("subject", "Subject", str)}


def _staged_updates(updates) -> dict | str:
    """{attribute: value} for the UpdateItem changes, or the field URI the sandbox cannot set."""
    staged = {}
    for upd in list(updates) if updates is not None else []:
        path = upd.find(_q(T, "FieldURI"))
        uri = path.get("FieldURI", "") if path is not None else _local(upd.tag)
        if _local(upd.tag) != "SetItemField" or uri not in SETTABLE:
            return uri
        attr, tag, parse = SETTABLE[uri]
        container = next((c for c in upd if c is not path), None)
        value = container.find(_q(T, tag)) if container is not None else None
        if value is None:
            return uri
        try:
            staged[attr] = parse((value.text or "").strip() if parse is _bool else (value.text or ""))
        except ValueError:
            return uri
    return staged

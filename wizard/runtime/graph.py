"""Microsoft Graph mail for the runtime (requests through ``http.make_session``:
our CA bundle on every request, proxies from the environment, bounded timeouts).

- send: ``POST /v1.0/users/{sender}/sendMail`` (202), file attachments inline
  (``contentBytes``) while each is under 3 MB and all together fit Graph's 4 MB
  request. Larger mail (up to 150 MB per attachment): a draft
  (``POST /users/{sender}/messages``), each attachment under 3 MB with
  ``POST .../messages/{id}/attachments``, each larger one through
  ``.../attachments/createUploadSession`` and ranged PUTs to its ``uploadUrl``
  (``Content-Range``, no Authorization header: the URL carries its own token;
  ranges of 12 x 320 KiB, the most under Graph's 4 MB), then ``POST .../messages/{id}/send``.
  That path needs ``Mail.ReadWrite`` besides ``Mail.Send``, and always keeps a copy in
  Sent Items (Graph's send of a draft does). A failed draft is deleted.
- fetch: ``GET /v1.0/users/{account}/mailFolders/inbox/messages`` with
  ``$select``, ``$filter`` (``isRead eq false``, ``receivedDateTime ge``),
  ``$orderby=receivedDateTime`` and ``$top``, following ``@odata.nextLink``;
  attachment metadata from ``/messages/{id}/attachments?$select=name,contentType,size``.
- mark processed: ``PATCH isRead`` then ``POST /messages/{id}/move`` to a
  "Processed" folder (found by ``$filter=displayName eq``, created when missing).
  Both need ``Mail.ReadWrite``.
- 429 / 503 / 504: wait ``Retry-After`` (bounded by ``max_wait``) and retry a
  few times with the injected sleep (not the relay's ``send_draft``: a gateway's 504
  may follow a send Exchange took); 401 once more with a new token.
"""

from __future__ import annotations

import base64
import threading
import time
from datetime import datetime, timezone
from urllib.parse import quote

from requests.adapters import HTTPAdapter

from wizard.diagnosis.catalogue import lookup
from wizard.diagnosis.classify import diagnose_network
from wizard.net.session import DEFAULT_TIMEOUT, make_session
from wizard.runtime.model import Message, MailError

SELECT = "id,subject,from,sender,toRecipients,receivedDateTime,body,hasAttachments,isRead"
MAX_INLINE = 3 * 1024 * 1024       # one attachment in a request: under 3 MB; all of them in sendMail: this much
MAX_ATTACHMENT = 150 * 1024 * 1024  # the most an upload session takes
MAX_REQUEST = 4 * 1024 * 1024 - 64 * 1024   # a request body Graph takes (about 4 MB), with a margin
CHUNK = 12 * 320 * 1024             # bytes per PUT: the largest multiple of 320 KiB under 4 MB
PAGE = 50
RETRY_STATUSES = (429, 503, 504)


class GraphTransport:
    def __init__(self, cfg, tokens, *, clock=time.time, sleep=time.sleep, attempts: int = 4,
                 max_wait: float = 60.0, timeout=DEFAULT_TIMEOUT, pool: int = 32):
        self.cfg = cfg
        self.tokens = tokens
        self.sleep = sleep
        self.attempts = attempts
        self.max_wait = max_wait
        self.base = (cfg.endpoints.graph_url or cfg.cloud.graph_url).rstrip("/") + "/v1.0"
        self.session = make_session(cfg, timeout=timeout)
        self.session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=pool))
        self._folders: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.waited = 0.0

    def close(self) -> None:
        self.session.close()

    # -- HTTP ------------------------------------------------------------------------------
    def _request(self, method: str, url: str, who, address: str, *, json=None, params=None, data=None,
                 headers=None, auth: bool = True, need: str | None = None, denied: str = "graph.large_attachment",
                 ok=(200, 201, 202, 204), retry: bool = True):
        """One Graph call with bounded retries. ``auth=False``: an upload session URL (it carries its own
        token). ``need``: the permission to name when Graph answers 403, with the catalogue code ``denied``
        (a large attachment's draft, or the relay's MIME draft). ``retry=False``: a 429/503/504 is raised, not
        tried again (a send a gateway timed out may have been taken: the caller checks before sending again)."""
        if not url.startswith("https://"):
            url = self.base + url
        fresh_token = False
        for attempt in range(1, self.attempts + 1):
            h = {"Prefer": 'outlook.body-content-type="text"', **(headers or {})}
            if auth:
                h["Authorization"] = f"Bearer {self.tokens.token('graph', who)}"
            try:
                resp = self.session.request(method, url, json=json, params=params, data=data, headers=h)
            except Exception as exc:
                host = self.base.split("/")[2]
                diag = diagnose_network(exc, cfg=self.cfg, host=host, port=443, address=address) or \
                    lookup("http.unexpected", cfg=self.cfg, host=host, service_message=f"{type(exc).__name__}")
                raise MailError(diag, account=address) from None
            finally:
                del self.session.transcript[:-5]
            if resp.status_code in ok:
                return resp
            if resp.status_code == 401 and auth and not fresh_token:
                fresh_token = True
                self.tokens.forget("graph", who)
                continue
            if resp.status_code in RETRY_STATUSES and attempt < self.attempts and retry:
                after = resp.headers.get("Retry-After", "")
                wait = float(after) if after.replace(".", "", 1).isdigit() else 2.0 ** attempt
                wait = min(wait, self.max_wait)
                self.waited += wait
                self.sleep(wait)
                continue
            raise MailError(self._diagnose(resp, address, need, upload=not auth, denied=denied), account=address)
        raise AssertionError("unreachable")

    def _diagnose(self, resp, address: str, need: str | None = None, upload: bool = False,
                  denied: str = "graph.large_attachment"):
        try:
            err = resp.json().get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        if not isinstance(err, dict):           # not Graph's shape, e.g. {"error": "invalid_request"}
            err = {"code": str(err)}
        code, message = str(err.get("code") or ""), str(err.get("message") or "")
        host = self.base.split("/")[2]
        said = f"HTTP {resp.status_code} {code}: {message}".strip()
        if "html" in resp.headers.get("content-type", "").lower():
            return lookup("http.html", cfg=self.cfg, host=host, service_message=f"HTTP {resp.status_code}")
        if upload and resp.status_code not in RETRY_STATUSES:       # the upload URL refused a range
            return lookup("http.unexpected", cfg=self.cfg, host=host, service_message=f"upload session: {said}")
        if resp.status_code in RETRY_STATUSES:
            after = resp.headers.get("Retry-After")
            return lookup("http.429", cfg=self.cfg, retry_after=f"{after} seconds" if after else None,
                          service_message=said)
        if resp.status_code == 403 and code in ("ErrorAccessDenied", "Authorization_RequestDenied", "") and need:
            return lookup(denied, cfg=self.cfg, address=address, service_message=said,
                          api="Microsoft Graph", permission=need)
        if resp.status_code == 403 and code in ("ErrorAccessDenied", "Authorization_RequestDenied", ""):
            return lookup("graph.ErrorAccessDenied", cfg=self.cfg, address=address, service_message=said,
                          api="Microsoft Graph")
        if code in ("MailboxNotEnabledForRESTAPI", "ErrorInvalidUser", "ErrorSendAsDenied"):
            return lookup(code, cfg=self.cfg, address=address, service_message=said)
        if resp.status_code == 401:
            return lookup("claims.roles", cfg=self.cfg, address=address, api="Microsoft Graph",
                          permission="Mail.Send / Mail.ReadWrite", service_message=said)
        d = lookup(code or f"http.{resp.status_code}", cfg=self.cfg, address=address, service_message=said)
        return d

    # -- operations ---------------------------------------------------------------------------
    def send(self, who, sender: str, to, cc, subject: str, body: str, attachments, save_copy: bool = False) -> None:
        for a in attachments:
            if a.size > MAX_ATTACHMENT:
                raise MailError(lookup("config.invalid", cfg=self.cfg, service_message=f"attachment {a.name} is "
                                       f"{a.size} bytes; Microsoft Graph takes at most 150 MB ({MAX_ATTACHMENT} "
                                       "bytes) per attachment"), account=sender)
        message = {
            "subject": subject,
            "body": {"contentType": "Text", "content": body},
            "toRecipients": [{"emailAddress": {"address": a}} for a in to],
        }
        if cc:
            message["ccRecipients"] = [{"emailAddress": {"address": a}} for a in cc]
        if not who.app_only and who.username and who.username.lower() != sender.lower():
            message["from"] = {"emailAddress": {"address": sender}}
        if all(a.size < MAX_INLINE for a in attachments) and sum(a.size for a in attachments) < MAX_INLINE:
            if attachments:
                message["attachments"] = [_inline(a) for a in attachments]
            self._request("POST", f"/users/{quote(sender)}/sendMail", who, sender,
                          json={"message": message, "saveToSentItems": bool(save_copy)}, ok=(202,))
            return
        self._send_large(who, sender, message, attachments)

    def _send_large(self, who, sender: str, message: dict, attachments) -> None:
        """Draft, attachments one by one (upload sessions for 3 MB and more), then send the draft."""
        need = "Mail.ReadWrite"
        base = f"/users/{quote(sender)}/messages"
        draft = self._request("POST", base, who, sender, json=message, need=need, ok=(201,)).json()["id"]
        path = f"{base}/{quote(draft, safe='')}"
        try:
            for a in attachments:
                if a.size < MAX_INLINE:
                    self._request("POST", path + "/attachments", who, sender, json=_inline(a), need=need,
                                  ok=(201,))
                else:
                    self._upload(who, sender, path, a, need)
            self._request("POST", path + "/send", who, sender, ok=(202,))
        except BaseException:
            try:
                self._request("DELETE", path, who, sender, ok=(204, 404))
            except MailError:
                pass
            raise

    def _upload(self, who, sender: str, path: str, a, need: str) -> None:
        """One attachment through an upload session: ranges in order, from where the server says. A session
        that expired or vanished midway (401/404 on its URL) is started again once."""
        item = {"attachmentType": "file", "name": a.name, "size": a.size, "contentType": a.content_type,
                **_inline_fields(a)}
        for again in (False, True):
            session = self._request("POST", path + "/attachments/createUploadSession", who, sender,
                                    json={"AttachmentItem": item}, need=need, ok=(201,)).json()
            url, start = session["uploadUrl"], 0
            while start < a.size:
                end = min(start + CHUNK, a.size) - 1
                resp = self._request("PUT", url, who, sender, data=a.data[start:end + 1], auth=False,
                                     ok=(200, 201) if again else (200, 201, 401, 404),
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Range": f"bytes {start}-{end}/{a.size}"})
                if resp.status_code == 201:
                    return
                if resp.status_code in (401, 404):
                    break                                  # the session is gone: a new one, once
                state = resp.json() if resp.content else {}      # "NextExpectedRanges" in some clouds
                ranges = next((v for k, v in state.items() if k.lower() == "nextexpectedranges"), None)
                start = int(str((ranges or [end + 1])[0]).split("-")[0])
            else:
                break
        raise MailError(lookup("http.unexpected", cfg=self.cfg, host=self.base.split("/")[2],
                               service_message=f"the upload of {a.name} ended without the attachment being "
                               "created"), account=sender)

    # -- MIME drafts (the relay: exactly once) ------------------------------------------------
    def create_mime_draft(self, who, sender: str, mime: bytes) -> str:
        """A draft in ``sender``'s Drafts from the RFC 5322 bytes as they are (``POST /users/{sender}/messages``,
        Content-Type text/plain, the body base64); returns its id. Needs ``Mail.ReadWrite``. The request body
        must stay under Graph's ~4 MB: see ``mime_request_size``."""
        resp = self._request("POST", f"/users/{quote(sender)}/messages", who, sender, need="Mail.ReadWrite",
                             denied="graph.draft", data=base64.b64encode(mime), headers={"Content-Type": "text/plain"},
                             ok=(201,))
        return str(resp.json()["id"])

    def add_attachment(self, who, sender: str, draft_id: str, attachment) -> None:
        """One file attachment on a draft: inline under 3 MB, else through an upload session."""
        path = f"/users/{quote(sender)}/messages/{quote(draft_id, safe='')}"
        if attachment.size < MAX_INLINE:
            self._request("POST", path + "/attachments", who, sender, json=_inline(attachment),
                          need="Mail.ReadWrite", ok=(201,))
        else:
            self._upload(who, sender, path, attachment, "Mail.ReadWrite")

    def send_draft(self, who, sender: str, draft_id: str) -> None:
        """``POST /users/{sender}/messages/{id}/send`` (202). A 429/503/504 is raised, not retried here: a 504 from
        a gateway may come after Exchange took the send, and a second POST would then get 404 (the draft left
        Drafts). The relay checks the draft (``draft_state``) before it sends again."""
        self._request("POST", f"/users/{quote(sender)}/messages/{quote(draft_id, safe='')}/send", who, sender,
                      ok=(202,), retry=False)

    def draft_state(self, who, sender: str, draft_id: str) -> str:
        """"draft" (still unsent in the mailbox), "sent" (no longer a draft) or "gone" (not found: sent and moved
        to Sent Items under a new id, or deleted)."""
        resp = self._request("GET", f"/users/{quote(sender)}/messages/{quote(draft_id, safe='')}", who, sender,
                             params={"$select": "isDraft"}, ok=(200, 404))
        if resp.status_code == 404:
            return "gone"
        return "draft" if resp.json().get("isDraft", True) else "sent"

    def drafts_with(self, who, sender: str, internet_message_id: str) -> list[str]:
        """The ids of the unsent drafts in ``sender``'s Drafts whose ``internetMessageId`` is this Message-ID
        (``$filter=internetMessageId eq '...'``): a draft whose creation's answer was lost."""
        value = internet_message_id.replace("'", "''")
        resp = self._request("GET", f"/users/{quote(sender)}/mailFolders/drafts/messages", who, sender,
                             params={"$filter": f"internetMessageId eq '{value}'", "$select": "id,isDraft",
                                     "$top": "50"}, ok=(200,))
        return [str(r["id"]) for r in resp.json().get("value") or [] if r.get("id") and r.get("isDraft", True)]

    def delete_message(self, who, sender: str, message_id: str) -> None:
        self._request("DELETE", f"/users/{quote(sender)}/messages/{quote(message_id, safe='')}", who, sender,
                      ok=(204, 404))

    def check(self, address: str, who) -> None:
        self._request("GET", f"/users/{quote(address)}/mailFolders/inbox", who, address, params={"$select": "id"},
                      ok=(200,))

    def inbox(self, address: str, who) -> dict:
        """The inbox of ``address`` (one ``GET .../mailFolders/inbox``): {"total", "unread"} message
        counts. Raises MailError. (The connection test's mailbox step.)"""
        data = self._request("GET", f"/users/{quote(address)}/mailFolders/inbox", who, address,
                             params={"$select": "totalItemCount,unreadItemCount"}, ok=(200,)).json()
        return {"total": data.get("totalItemCount"), "unread": data.get("unreadItemCount")}

    def fetch(self, address: str, who, since, limit: int, unprocessed_only: bool) -> list[Message]:
        start = since or datetime(1900, 1, 1, tzinfo=timezone.utc)
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        # Graph wants the $orderby property first in $filter.
        flt = f"receivedDateTime ge {start.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        if unprocessed_only:
            flt += " and isRead eq false"
        params = {"$select": SELECT, "$filter": flt, "$orderby": "receivedDateTime asc",
                  "$top": str(min(limit, PAGE))}
        url, rows = f"/users/{quote(address)}/mailFolders/inbox/messages", []
        while url and len(rows) < limit:
            data = self._request("GET", url, who, address, params=params, ok=(200,)).json()
            rows += data.get("value") or []
            url, params = data.get("@odata.nextLink"), None      # the next link carries the query
        out = []
        for row in rows[:limit]:
            if unprocessed_only and row.get("isRead"):
                continue
            atts = []
            if row.get("hasAttachments"):
                meta = self._request("GET", f"/users/{quote(address)}/messages/{quote(row['id'], safe='')}"
                                     "/attachments", who, address,
                                     params={"$select": "name,contentType,size"}, ok=(200,)).json()
                atts = [(a.get("name") or "", a.get("contentType") or "application/octet-stream",
                         int(a.get("size") or 0)) for a in meta.get("value") or []]
            out.append(_message(row, address, atts))
        return out

    def _folder(self, address: str, who, name: str) -> str:
        key = (address.lower(), name.lower())
        with self._lock:
            if key in self._folders:
                return self._folders[key]
        base = f"/users/{quote(address)}/mailFolders"
        found = self._request("GET", base, who, address, ok=(200,),
                              params={"$filter": f"displayName eq '{name.replace(chr(39), chr(39) * 2)}'"}).json()
        rows = found.get("value") or []
        if rows:
            fid = rows[0]["id"]
        else:
            resp = self._request("POST", base, who, address, json={"displayName": name}, ok=(201, 409))
            if resp.status_code == 409:        # created meanwhile by another poller
                return self._folder(address, who, name)
            fid = resp.json()["id"]
        with self._lock:
            self._folders[key] = fid
        return fid

    def mark_processed(self, address: str, who, message_id: str, folder: str | None) -> None:
        path = f"/users/{quote(address)}/messages/{quote(message_id, safe='')}"
        self._request("PATCH", path, who, address, json={"isRead": True}, ok=(200,))
        if folder:
            self._request("POST", path + "/move", who, address,
                          json={"destinationId": self._folder(address, who, folder)}, ok=(200, 201))


def _inline(a) -> dict:
    return {"@odata.type": "#microsoft.graph.fileAttachment", "name": a.name, "contentType": a.content_type,
            "contentBytes": base64.b64encode(a.data).decode("ascii"), **_inline_fields(a)}


def _inline_fields(a) -> dict:
    """``isInline`` and ``contentId`` of a part the HTML body shows (fileAttachment, attachmentItem)."""
    if not getattr(a, "is_inline", False):
        return {}
    return {"isInline": True, **({"contentId": a.content_id} if getattr(a, "content_id", None) else {})}


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _addr(obj) -> str:
    return ((obj or {}).get("emailAddress") or {}).get("address") or ""


def _message(row: dict, address: str, atts) -> Message:
    return Message(id=row["id"], account=address, sender=_addr(row.get("from") or row.get("sender")),
                   to=[_addr(r) for r in row.get("toRecipients") or [] if _addr(r)],
                   subject=row.get("subject") or "", received=_when(row.get("receivedDateTime")),
                   body_text=(row.get("body") or {}).get("content") or "", attachments=atts,
                   is_read=bool(row.get("isRead")))

"""A small Microsoft Graph client for registration: JSON in and out over the
wizard's HTTP session (CA trust, proxies, timeouts), Graph errors as
``GraphCallError``, and the bounded retry Microsoft advises while Entra ID
replicates a new object (Request_ResourceNotFound, NoBackingApplicationObject)."""

from __future__ import annotations

import time
from urllib.parse import quote

TRANSIENT = (429, 500, 502, 503, 504)
TRANSIENT_RETRIES = 2
REPLICATION_TEXTS = ("does not reference a valid application object", "backing application of the service principal")


class GraphCallError(Exception):
    def __init__(self, status: int, code: str, message: str, method: str = "", path: str = "",
                 details: list | None = None, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.method, self.path, self.details = method, path, details or []
        self.retry_after = retry_after

    @property
    def replicating(self) -> bool:
        """An object created a moment ago that another replica does not know yet."""
        if self.code == "Request_ResourceNotFound":
            return True
        if any(isinstance(d, dict) and d.get("code") == "NoBackingApplicationObject" for d in self.details):
            return True
        return any(t in self.message for t in REPLICATION_TEXTS)


def key(name: str, value: str) -> str:
    """An alternate-key segment: applications(uniqueName='x'), quotes doubled as OData wants."""
    return f"({name}='{quote(value.replace(chr(39), chr(39) * 2), safe='')}')"


class Graph:
    def __init__(self, cfg, token: str, *, session=None, sleep=time.sleep, on_wait=None,
                 retries: int = 6, first_wait: float = 2.0, max_wait: float = 15.0):
        from wizard.net.session import make_session
        self.base = (cfg.endpoints.graph_url or cfg.cloud.graph_url).rstrip("/") + "/v1.0"
        self.session = session or make_session(cfg)
        self.token = token
        self.sleep, self.on_wait = sleep, on_wait
        self.retries, self.first_wait, self.max_wait = retries, first_wait, max_wait
        self.calls: list[str] = []          # "METHOD path status", for the report

    def close(self) -> None:
        self.session.close()

    def call(self, method: str, path: str, body: dict | None = None, *, headers: dict | None = None,
             retry: bool = False):
        """The JSON answer (None for 204). Raises GraphCallError; with ``retry`` a replication
        error is retried with growing waits (bounded) before it is raised."""
        wait = self.first_wait
        transient = 0
        for attempt in range(self.retries + TRANSIENT_RETRIES + 1):
            try:
                return self._once(method, path, body, headers)
            except GraphCallError as exc:
                if exc.status in TRANSIENT and transient < TRANSIENT_RETRIES:    # throttled or busy: Retry-After
                    transient += 1
                    pause = min(self.max_wait, exc.retry_after if exc.retry_after is not None
                                else self.first_wait * 2 ** (transient - 1))
                    if self.on_wait is not None:
                        self.on_wait(f"{method} {path.split('?')[0]} answered {exc.status}", pause, transient)
                    self.sleep(pause)
                    continue
                if not (retry and exc.replicating) or attempt - transient >= self.retries:
                    raise
                if self.on_wait is not None:
                    self.on_wait(f"{method} {path.split('?')[0]}", wait, attempt + 1)
                self.sleep(wait)
                wait = min(self.max_wait, wait * 2)
        raise AssertionError("unreachable")

    def _once(self, method, path, body, headers):
        h = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        resp = self.session.request(method, self.base + path, json=body, headers=h)
        self.calls.append(f"{method} {path.split('?')[0]} {resp.status_code}")
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error") or {}
            except ValueError:
                err = {}
            try:
                after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                after = None
            raise GraphCallError(resp.status_code, str(err.get("code") or f"HTTP{resp.status_code}"),
                                 str(err.get("message") or resp.reason or ""), method, path, err.get("details"), after)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

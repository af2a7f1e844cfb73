"""What every sandbox service answers with: a Response, JSON bodies, and the
GUID pattern of tenant, app and object IDs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: dict, headers: dict | None = None) -> Response:
    h = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store, no-cache"}
    h.update(headers or {})
    return Response(status, json.dumps(data).encode(), h)

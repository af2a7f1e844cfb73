"""Writing what one command changed onto the config file as it is when written: ``register`` reads
the file, spends a minute with Graph, then saves; an edit or another command's write made meanwhile
stays, unless this command changed the same value."""

from __future__ import annotations

import os
from pathlib import Path

from wizard.config.files import real_target, save, update
from wizard.config.schema import Config, from_dict, to_dict


def save_changes(path: str | os.PathLike, original: Config, cfg: Config, *, strict: bool = False) -> Path:
    """Write onto the file as it is now the values ``cfg`` changed from ``original``
    (what this command read earlier), holding the lock: values another writer
    changed meanwhile stay, unless this command changed the same ones."""
    if not real_target(path).exists():
        return save(cfg, path)
    before, after = _leaves(to_dict(original)), _leaves(to_dict(cfg))
    changed = {k: v for k, v in after.items() if before.get(k, _GONE) != v}
    removed = [k for k in before if k not in after]

    def apply(now: Config) -> None:
        data = to_dict(now)
        for key, value in changed.items():
            *parents, last = key
            node = data
            for name in parents:
                node = node.setdefault(name, {})
            node[last] = value
        for *parents, last in removed:
            node = data
            for name in parents:
                node = node.get(name, {})
            node.pop(last, None)
        merged, _ = from_dict(data)
        for name in vars(merged):
            setattr(now, name, getattr(merged, name))

    update(path, apply, strict=strict)
    return Path(path).expanduser()


_GONE = object()


def _leaves(data: dict, prefix: tuple = ()) -> dict:
    """{("auth", "client_secret"): value, ...}: tables flattened, lists (clients, accounts) kept whole."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out

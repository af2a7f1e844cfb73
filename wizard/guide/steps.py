"""The setup guides as data: stages, numbered steps, field help, flows,
systems and the EWS retirement dates, read from ``assets/guide_steps.toml``.

No Textual here; the screens render what this module returns.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import NamedTuple

STAGE_IDS = ("target", "registration", "ids", "mail", "test", "save")
FLOW_IDS = ("client_secret", "password")
SYSTEM_IDS = ("monitor_g5", "efecte_esm", "generic")
_FILE = "guide_steps.toml"
_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")


class GuideError(ValueError):
    """The guide file is missing a part or holds a value the wizard cannot use."""


class GuideStep(NamedTuple):
    guide: str                 # "000".."004"
    section: str               # "Azure", "Monitor ERP", "Incoming e-mail", ...
    n: int                     # the guide's number (or the count, when item)
    text: str
    flows: tuple[str, ...]
    systems: tuple[str, ...] = ()   # empty: every system
    item: bool = False         # guide has no number here: n counts its bullets

    @property
    def ref(self) -> str:
        """Where the step is in the guide, e.g. "Guide 001, Azure step 22"."""
        if self.item:
            return f"Guide {self.guide}, {self.section}, item {self.n}"
        return f"Guide {self.guide}, {self.section} step {self.n}"

    def applies(self, flow: str, system: str | None = None) -> bool:
        if flow not in self.flows:
            return False
        return system is None or not self.systems or system in self.systems


class Stage(NamedTuple):
    id: str
    title: str
    intro: str
    steps: list[GuideStep]

    def steps_for(self, flow: str, system: str | None = None) -> list[GuideStep]:
        """The steps for one flow (and system; None: any system), guide order."""
        return [s for s in self.steps if s.applies(flow, system)]


class FieldHelp(NamedTuple):
    name: str
    label: str
    help: str


class FlowInfo(NamedTuple):
    id: str
    label: str
    summary: str
    pros: list[str]
    cons: list[str]
    limitations: list[str]


class SystemInfo(NamedTuple):
    id: str
    label: str
    description: str
    flows: list[str]
    protocols: list[str]
    guides: list[str]


class EwsRetirement(NamedTuple):
    blocked_from: date
    shutdown: date
    recommended: str
    warning: str
    before: str
    during: str
    after: str

    def phase(self, today: date) -> str:
        if today < self.blocked_from:
            return "before"
        return "during" if today < self.shutdown else "after"

    def sentence(self, today: date) -> str:
        phase = self.phase(today)
        until = self.blocked_from if phase == "before" else self.shutdown
        days = (until - today).days
        template = getattr(self, phase)
        return template.format(blocked=_day(self.blocked_from), shutdown=_day(self.shutdown),
                               days=f"{days} day" + ("" if days == 1 else "s"))


class Guide(NamedTuple):
    stages: list[Stage]
    fields: dict[str, FieldHelp]
    flows: list[FlowInfo]
    systems: list[SystemInfo]
    ews_retirement: EwsRetirement
    guides: dict[str, str] | None = None   # guide number -> title

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"no stage '{stage_id}'; stages: {', '.join(s.id for s in self.stages)}")

    def flow(self, flow_id: str) -> FlowInfo:
        return _by_id(self.flows, flow_id, "flow")

    def system(self, system_id: str) -> SystemInfo:
        return _by_id(self.systems, system_id, "system")


def _by_id(items, wanted: str, kind: str):
    for it in items:
        if it.id == wanted:
            return it
    raise KeyError(f"no {kind} '{wanted}'")


def _day(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def guide_path() -> Path:
    """The packaged guide file, or the one in the source tree next to wizard/."""
    try:
        import assets   # a plain package next to wizard/ (installed or in the source tree)
        path = Path(assets.__file__).parent / _FILE
        if path.is_file():
            return path
    except (ImportError, TypeError):   # TypeError: a namespace package has no __file__
        pass
    return Path(__file__).resolve().parent.parent / "assets" / _FILE


def _step(raw: dict, where: str) -> GuideStep:
    try:
        step = GuideStep(guide=str(raw["guide"]), section=raw["section"], n=int(raw["n"]),
                         text=raw["text"], flows=tuple(raw["flows"]),
                         systems=tuple(raw.get("systems", ())), item=bool(raw.get("item", False)))
    except KeyError as exc:
        raise GuideError(f"{where}: missing {exc.args[0]}") from None
    bad = [f for f in step.flows if f not in FLOW_IDS] + [s for s in step.systems if s not in SYSTEM_IDS]
    if bad or not step.flows:
        raise GuideError(f"{where} ({step.ref}): unknown or missing flow/system {bad}")
    return step


def parse(data: dict) -> Guide:
    """Build a Guide from the parsed TOML; raises GuideError on a bad file."""
    try:
        stages = [Stage(id=s["id"], title=s["title"], intro=s["intro"],
                        steps=[_step(st, f"stage {s['id']} step {i + 1}")
                               for i, st in enumerate(s.get("steps", []))])
                  for s in data["stages"]]
        fields_ = {k: FieldHelp(k, v["label"], v["help"]) for k, v in data["fields"].items()}
        flows = [FlowInfo(f["id"], f["label"], f["summary"], list(f["pros"]), list(f["cons"]),
                          list(f["limitations"])) for f in data["flows"]]
        systems = [SystemInfo(s["id"], s["label"], s["description"], list(s["flows"]),
                              list(s["protocols"]), list(s.get("guides", []))) for s in data["systems"]]
        ews = EwsRetirement(**data["ews_retirement"])
    except (KeyError, TypeError) as exc:
        raise GuideError(f"guide file: missing or wrong part {exc}") from None
    if tuple(s.id for s in stages) != STAGE_IDS:
        raise GuideError(f"stages must be {', '.join(STAGE_IDS)} in this order")
    return Guide(stages, fields_, flows, systems, ews, dict(data.get("guides", {})))


@functools.lru_cache(maxsize=1)
def load_guide() -> Guide:
    return parse(read_data(guide_path()))


# The parsed guide file is kept in the user cache dir as JSON: reading it back
# takes well under a millisecond, parsing the TOML about ten, on every start of
# the wizard. The cache names the file's path, size and modification time; a
# change of any of them (or a cache that cannot be read) parses the file again.
_CACHE_FORMAT = 1


def cache_path() -> Path:
    from platformdirs import user_cache_path
    return user_cache_path("mailwizard", appauthor=False) / "guide.json"


def read_data(path: Path) -> dict:
    """The guide file's data, from the cache when it is the same file."""
    import json
    stat = path.stat()
    key = [_CACHE_FORMAT, str(path), stat.st_size, stat.st_mtime_ns]
    cache = cache_path()
    try:
        cached = json.loads(cache.read_bytes())
        if cached["key"] == key:
            return _thaw(cached["data"])
    except Exception:   # no cache yet, or damaged or foreign: parse the file
        pass
    from wizard.config.files import standard_toml, write_private
    with path.open("rb") as fh:
        data = standard_toml().load(fh)
    try:
        write_private(cache, json.dumps({"key": key, "data": _freeze(data)}, ensure_ascii=False))
    except (OSError, ValueError, TypeError):   # a read-only or full cache dir costs only speed
        pass
    return data


def _freeze(value):
    """TOML data as JSON can hold it (dates as {"$date": "YYYY-MM-DD"})."""
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_freeze(v) for v in value]
    if isinstance(value, date):
        if not type(value) is date:
            raise ValueError("only plain dates are cached")
        return {"$date": value.isoformat()}
    return value


def _thaw(value):
    if isinstance(value, dict):
        if len(value) == 1 and "$date" in value:
            return date.fromisoformat(value["$date"])
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


def stage(stage_id: str) -> Stage:
    return load_guide().stage(stage_id)


def ews_warning(today: date | None = None) -> str:
    """One sentence on where EWS in Exchange Online stands on ``today``."""
    return load_guide().ews_retirement.sentence(today or date.today())

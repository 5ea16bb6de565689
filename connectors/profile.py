"""Mapping profiles: per-sender TOML data that says where each thing lives in the messages.

A profile is data, not code, so that an integration engineer onboards a new feed by writing a
file and checking it with ``vigil profiles check`` rather than by changing Vigil. Every key is
declared in :data:`SCHEMA` (meaning, type, default, example): the loader refuses unknown keys and
wrong types with a :class:`ProfileError` that names the file, the key and the fix, and the
README's profile reference is checked against the same table by a test.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.errors import ProfileError
from connectors.hl7text import BadTimestamp, site_zone

SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"

# --------------------------------------------------------------------------------------------
# Locations: "OBR-18", "PID-3.4.1", "OBX(ICH_SCORE)-5", "ZSC-2"

_LOC = re.compile(r"([A-Z][A-Z0-9]{2})(?:\(([^()]+)\))?-(\d{1,3})(?:\.(\d{1,3})(?:\.(\d{1,3}))?)?")


@dataclass(frozen=True, slots=True)
class Loc:
    """A place in a message: segment (or the OBX whose OBX-3.1 is ``code``), field, comp, sub."""

    seg: str
    code: str | None
    field: int
    comp: int = 0
    sub: int = 0

    def __str__(self) -> str:
        s = self.seg + (f"({self.code})" if self.code else "") + f"-{self.field}"
        if self.comp:
            s += f".{self.comp}"
            if self.sub:
                s += f".{self.sub}"
        return s


def parse_loc(text: str) -> Loc | None:
    m = _LOC.fullmatch(text.strip())
    if m is None or int(m.group(3)) < 1:
        return None
    return Loc(m.group(1), m.group(2), int(m.group(3)), int(m.group(4) or 0), int(m.group(5) or 0))


# --------------------------------------------------------------------------------------------
# The schema: section -> key -> (kind, default, meaning, example)

LOC = "location"  # a location or a list tried in order
STR = "string"
STRS = "list of strings"
BOOL = "boolean"
TABLE = "table"
RANGE = "[min, max]"

SCHEMA: dict[str, dict[str, tuple[str, Any, str, str]]] = {
    "": {
        "name": (
            STR,
            None,
            "profile name shown in `vigil profiles list` and stored per message",
            '"radis"',
        ),
        "description": (STR, "", "one line for people", '"RADIS RIS at NGH and SCH"'),
    },
    "match": {
        "sending_application": (STRS, [], "MSH-3.1 values this profile handles", '["RADIS"]'),
        "sending_facility": (
            STRS,
            [],
            "optional MSH-4.1 values; empty means any facility",
            '["NGH", "SCH"]',
        ),
        "fallback": (BOOL, False, "use this profile for senders no other profile matches", "true"),
    },
    "messages": {
        "map": (
            STRS,
            ["ADT", "ORM^O01", "OMI^O23", "ORU^R01"],
            "message types mapped to events (a bare 'ADT' means every ADT trigger)",
            '["ORU^R01"]',
        ),
        "ignore": (
            STRS,
            ["SIU", "RSP", "OML", "MDM", "OMG", "ACK", "QBP", "DFT", "BAR", "MFN"],
            "types accepted and recorded as outcome 'ignored' (no events)",
            '["SIU"]',
        ),
    },
    "site": {
        "code": (LOC, ["MSH-4.1"], "where the site code is", '"MSH-4.1"'),
        "codes": (TABLE, {}, "maps raw site values to Vigil site codes", '{ "NGH01" = "NGH" }'),
        "timezone": (
            STR,
            "UTC",
            "IANA zone for timestamps sent without an offset",
            '"Europe/London"',
        ),
    },
    "patient": {
        "id": (LOC, ["PID-3"], "field holding patient identifiers (CX, repeating)", '"PID-3"'),
        "id_types": (
            STRS,
            ["MR"],
            "identifier types (CX.5) preferred, in order; else the first",
            '["MR", "PI"]',
        ),
        "prior_id": (LOC, ["MRG-1"], "the merged (prior) identifier on A40/A47", '"MRG-1"'),
        "birth_date": (
            LOC,
            ["PID-7"],
            "birth date (turned into age at study, never kept)",
            '"PID-7"',
        ),
        "sex": (LOC, ["PID-8.1"], "administrative sex", '"PID-8.1"'),
        "race": (
            LOC,
            ["PID-10.2", "PID-10.1"],
            "race (first repetition): its text, else its code",
            '"PID-10.2"',
        ),
        "ethnicity": (
            LOC,
            ["PID-22.2", "PID-22.1"],
            "ethnic group: its text, else its code",
            '"PID-22.2"',
        ),
        "update_events": (
            STRS,
            ["A01", "A04", "A05", "A08", "A28", "A31"],
            "ADT triggers that update demographics",
            '["A04", "A08"]',
        ),
        "merge_events": (
            STRS,
            ["A40", "A47", "A34", "A39"],
            "ADT triggers that merge or change a patient id",
            '["A40"]',
        ),
    },
    "study": {
        "accession": (
            LOC,
            ["OBR-18"],
            "accession number, first non-empty wins",
            '["IPC-1", "OBR-18"]',
        ),
        "study_uid": (
            LOC,
            ["ZDS-1.1", "IPC-3", "OBX(113014)-5"],
            "Study Instance UID fallbacks",
            '["ZDS-1.1", "OBX(113014)-5"]',
        ),
        "modality": (LOC, ["OBR-24", "IPC-5"], "modality", '"OBR-24"'),
        "procedure": (LOC, ["OBR-4", "OBR-44"], "procedure code^text (CWE)", '"OBR-4"'),
        "ordered_at": (LOC, ["ORC-9", "OBR-6"], "order time", '"ORC-9"'),
        "exam_started_at": (LOC, ["OBR-7"], "exam start", '"OBR-7"'),
        "exam_ended_at": (LOC, ["OBR-8"], "exam end", '"OBR-8"'),
        "patient_class": (LOC, ["PV1-2.1"], "patient class code", '"PV1-2.1"'),
        "patient_class_map": (
            TABLE,
            {
                "I": "inpatient",
                "O": "outpatient",
                "E": "emergency",
                "P": "outpatient",
                "R": "outpatient",
                "B": "inpatient",
            },
            "patient class code -> inpatient/outpatient/emergency",
            '{ I = "inpatient", O = "outpatient", E = "emergency" }',
        ),
        "scanner_manufacturer": (LOC, ["OBX(00080070)-5"], "scanner manufacturer", '"ZSC-1"'),
        "scanner_model": (LOC, ["OBX(00081090)-5"], "scanner model", '"ZSC-2"'),
        "extra": (
            TABLE,
            {},
            "more study attributes: name -> location (kept in StudyInfo.extra)",
            '{ kvp = "ZSC-3", slice_mm = "ZSC-4" }',
        ),
    },
    "ai": {
        "received_at": (
            LOC,
            ["OBR-22", "MSH-7"],
            "when the AI result was produced",
            '["OBR-22", "MSH-7"]',
        ),
    },
    "ai.models": {
        "name": (STR, None, "the model's name in Vigil's registry", '"neurovue-ich"'),
        "finding": (STR, None, "the finding it detects", '"ich"'),
        "score": (
            LOC,
            [],
            "where the score is (OBX-5 or OBX-9 of a coded OBX)",
            '"OBX(ICH_SCORE)-5"',
        ),
        "score_range": (RANGE, [0.0, 1.0], "valid score range; outside -> bad_score", "[0.0, 1.0]"),
        "call": (LOC, [], "where the positive/negative call is", '"OBX(ICH_FLAG)-5"'),
        "call_map": (
            TABLE,
            {},
            "call values -> true/false (case-insensitive)",
            "{ POSITIVE = true, NEGATIVE = false }",
        ),
        "version": (
            LOC,
            [],
            "algorithm version (OBX-17/OBX-18, SFT-2, MSH-3...)",
            '"OBX(ICH_SCORE)-18.2"',
        ),
        "version_default": (
            STR,
            "",
            "version to assume when the message has none (else reject)",
            '"1.0"',
        ),
    },
    "report": {
        "status": (LOC, ["OBR-25"], "result status P/F/C", '"OBR-25"'),
        "reported_at": (LOC, ["OBR-22", "MSH-7"], "report time", '"OBR-22"'),
        "radiologist": (
            LOC,
            ["OBR-32.1.1", "OBR-32.1"],
            "reading radiologist id or name (pseudonymised)",
            '"OBR-32.1.1"',
        ),
        "read_started_at": (LOC, [], "interpretation start", '"OBR-32.2"'),
        "read_ended_at": (LOC, [], "interpretation end", '"OBR-32.3"'),
        "text_types": (
            STRS,
            ["TX", "FT"],
            "OBX-2 value types that carry report text",
            '["TX", "FT", "ST"]',
        ),
        "addendum_markers": (
            STRS,
            ["ADDENDUM"],
            "text that marks an addendum (status C -> A)",
            '["ADDENDUM"]',
        ),
        "labeller": (
            STR,
            "labeller/default.toml",
            "labeller TOML (synonyms, negation and uncertainty cues), relative to the profile",
            '"labeller/default.toml"',
        ),
    },
    "report.findings": {
        "finding": (STR, None, "finding name (matches the AI model's finding)", '"ich"'),
        "procedures": (
            STRS,
            [],
            "regexes on OBR-4 code or text that make the finding apply; empty: any procedure",
            '["CTHEAD", "(?i)head"]',
        ),
        "coded": (LOC, [], "coded finding location (used first when present)", '"OBX(ICH)-5"'),
        "coded_map": (
            TABLE,
            {},
            "coded value -> positive/negative/uncertain",
            '{ Y = "positive", N = "negative", U = "uncertain" }',
        ),
        "synonyms": (
            STRS,
            [],
            "extra phrases naming the finding (added to the labeller's)",
            '["bleed"]',
        ),
        "when_not_mentioned": (
            STR,
            "negative",
            "label when an applicable report never names the finding: negative or skip",
            '"negative"',
        ),
    },
}

LABELS = ("positive", "negative", "uncertain")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    finding: str
    score: tuple[Loc, ...]
    score_range: tuple[float, float] | None
    call: tuple[Loc, ...]
    call_map: dict[str, bool]
    version: tuple[Loc, ...]
    version_default: str


@dataclass(frozen=True, slots=True)
class FindingSpec:
    finding: str
    procedures: tuple[re.Pattern[str], ...]
    coded: tuple[Loc, ...]
    coded_map: dict[str, str]
    synonyms: tuple[str, ...]
    when_not_mentioned: str


@dataclass(slots=True)
class Profile:
    """A validated profile. ``get(section, key)`` returns the value with defaults applied."""

    name: str
    path: Path
    description: str
    data: dict[str, dict[str, Any]]
    models: list[ModelSpec] = field(default_factory=list)
    findings: list[FindingSpec] = field(default_factory=list)
    has_ai: bool = False
    has_report: bool = False
    labeller_path: Path | None = None

    def get(self, section: str, key: str) -> Any:
        return self.data[section][key]

    @property
    def applications(self) -> list[str]:
        return self.data["match"]["sending_application"]

    @property
    def facilities(self) -> list[str]:
        return self.data["match"]["sending_facility"]

    @property
    def fallback(self) -> bool:
        return bool(self.data["match"]["fallback"])

    def matches(self, application: str, facility: str) -> bool:
        if application not in self.applications:
            return False
        return not self.facilities or facility in self.facilities


# --------------------------------------------------------------------------------------------
# Loading and validation


def _check(path: Path, key: str, kind: str, value: Any) -> Any:
    def bad(problem: str, fix: str) -> ProfileError:
        return ProfileError(str(path), key, problem, fix)

    if kind == LOC:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise bad(
                "must be a location string or a list of them",
                'write e.g. "OBR-18" or ["IPC-1", "OBR-18"]',
            )
        locs = []
        for item in items:
            loc = parse_loc(item)
            if loc is None:
                raise bad(
                    f"{item!r} is not a location",
                    'write SEG-FIELD[.COMPONENT[.SUB]], e.g. "OBR-18", "PID-3.4.1", or '
                    '"OBX(CODE)-5" for the OBX whose OBX-3.1 is CODE',
                )
            locs.append(loc)
        return tuple(locs)
    if kind == STR:
        if not isinstance(value, str):
            raise bad(f"must be a string, not {type(value).__name__}", 'quote it: key = "value"')
        return value
    if kind == STRS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise bad("must be a list of strings", 'write e.g. ["A", "B"]')
        return value
    if kind == BOOL:
        if not isinstance(value, bool):
            raise bad("must be true or false", "write true or false without quotes")
        return value
    if kind == TABLE:
        if not isinstance(value, dict):
            raise bad("must be a table", 'write e.g. { KEY = "value" }')
        return value
    if kind == RANGE:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or value[0] >= value[1]
        ):
            raise bad("must be [min, max] with min < max", "write e.g. [0.0, 1.0]")
        return (float(value[0]), float(value[1]))
    raise AssertionError(kind)


def _section(path: Path, name: str, raw: Any) -> dict[str, Any]:
    schema = SCHEMA[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError(str(path), name, "must be a table", f"write [{name}] with keys below it")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{name}.{key}" if name else key
        if key not in schema:
            raise ProfileError(
                str(path),
                full,
                "is not a profile key",
                f"check the spelling; keys of [{name or 'top level'}] are: "
                + ", ".join(sorted(schema)),
            )
        out[key] = _check(path, full, schema[key][0], value)
    for key, (kind, default, _meaning, _ex) in schema.items():
        if key in out:
            continue
        full = f"{name}.{key}" if name else key
        if default is None:
            raise ProfileError(str(path), full, "is required", f"add {key} = ... (see the README)")
        out[key] = _check(path, full, kind, default) if kind in (LOC, RANGE) else default
    return out


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(
            str(path), "-", f"cannot be read ({exc.strerror})", "check the path and permissions"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(
            str(path), "-", f"is not valid TOML ({exc})", "fix the syntax at the line named"
        ) from exc
    tables = {k for k in SCHEMA if k and "." not in k}
    for key in raw:
        if key not in tables and key not in SCHEMA[""]:
            raise ProfileError(
                str(path),
                key,
                "is not a profile section or key",
                "sections are: " + ", ".join(sorted(tables)) + "; top-level keys: name, "
                "description",
            )
    top = _section(path, "", {k: v for k, v in raw.items() if k in SCHEMA[""]})
    data: dict[str, dict[str, Any]] = {"": top}
    ai_raw = raw.get("ai")
    report_raw = raw.get("report")
    for sec in ("match", "messages", "site", "patient", "study"):
        data[sec] = _section(path, sec, raw.get(sec))
    try:
        site_zone(data["site"]["timezone"])
    except BadTimestamp:
        raise ProfileError(
            str(path),
            "site.timezone",
            f"{data['site']['timezone']!r} is not a timezone",
            'use an IANA name such as "Europe/London" or "UTC"',
        ) from None
    if not data["match"]["sending_application"] and not data["match"]["fallback"]:
        raise ProfileError(
            str(path),
            "match.sending_application",
            "is empty and the profile is no fallback",
            'list the MSH-3 values, e.g. sending_application = ["RADIS"], or set fallback = true',
        )
    prof = Profile(name=top["name"], path=path, description=top["description"], data=data)
    if ai_raw is not None:
        if not isinstance(ai_raw, dict):
            raise ProfileError(str(path), "ai", "must be a table", "write [ai] and [[ai.models]]")
        models_raw = ai_raw.get("models", [])
        data["ai"] = _section(path, "ai", {k: v for k, v in ai_raw.items() if k != "models"})
        if not isinstance(models_raw, list) or not models_raw:
            raise ProfileError(
                str(path),
                "ai.models",
                "needs at least one [[ai.models]] table",
                "add [[ai.models]] with name, finding, score or call, version",
            )
        for i, m in enumerate(models_raw):
            s = _section(path, "ai.models", m)
            where = f"ai.models[{i}]"
            if not s["score"] and not s["call"]:
                raise ProfileError(
                    str(path),
                    where,
                    "has neither score nor call",
                    'add score = "OBX(CODE)-5" and/or call = "OBX(CODE)-5"',
                )
            if s["call"] and not s["call_map"]:
                raise ProfileError(
                    str(path),
                    f"{where}.call_map",
                    "is required with call",
                    "add call_map = { POSITIVE = true, NEGATIVE = false }",
                )
            if not all(isinstance(v, bool) for v in s["call_map"].values()):
                raise ProfileError(
                    str(path),
                    f"{where}.call_map",
                    "values must be true/false",
                    "write e.g. { DETECTED = true, NOT_DETECTED = false }",
                )
            if not s["version"] and not s["version_default"]:
                raise ProfileError(
                    str(path),
                    f"{where}.version",
                    "is required",
                    'say where the algorithm version is, e.g. "SFT-2", or set version_default',
                )
            prof.models.append(
                ModelSpec(
                    name=s["name"],
                    finding=s["finding"],
                    score=s["score"],
                    score_range=s["score_range"],
                    call=s["call"],
                    call_map={str(k).upper(): v for k, v in s["call_map"].items()},
                    version=s["version"],
                    version_default=s["version_default"],
                )
            )
        prof.has_ai = True
    if report_raw is not None:
        if not isinstance(report_raw, dict):
            raise ProfileError(
                str(path), "report", "must be a table", "write [report] and [[report.findings]]"
            )
        findings_raw = report_raw.get("findings", [])
        data["report"] = _section(
            path, "report", {k: v for k, v in report_raw.items() if k != "findings"}
        )
        if not isinstance(findings_raw, list) or not findings_raw:
            raise ProfileError(
                str(path),
                "report.findings",
                "needs at least one table",
                'add [[report.findings]] with finding = "ich"',
            )
        for i, f in enumerate(findings_raw):
            s = _section(path, "report.findings", f)
            where = f"report.findings[{i}]"
            pats = []
            for p in s["procedures"]:
                try:
                    pats.append(re.compile(p))
                except re.error as exc:
                    raise ProfileError(
                        str(path),
                        f"{where}.procedures",
                        f"{p!r} is not a regular expression ({exc})",
                        "escape special characters or use a plain code",
                    ) from None
            bad = {v for v in s["coded_map"].values() if v not in LABELS}
            if bad:
                raise ProfileError(
                    str(path),
                    f"{where}.coded_map",
                    f"labels {sorted(bad)} are not positive/negative/uncertain",
                    'map each code to "positive", "negative" or "uncertain"',
                )
            if s["when_not_mentioned"] not in ("negative", "skip"):
                raise ProfileError(
                    str(path),
                    f"{where}.when_not_mentioned",
                    f"{s['when_not_mentioned']!r} is not allowed",
                    'write "negative" or "skip"',
                )
            prof.findings.append(
                FindingSpec(
                    finding=s["finding"],
                    procedures=tuple(pats),
                    coded=s["coded"],
                    coded_map={str(k).upper(): v for k, v in s["coded_map"].items()},
                    synonyms=tuple(s["synonyms"]),
                    when_not_mentioned=s["when_not_mentioned"],
                )
            )
        lab = (path.parent / data["report"]["labeller"]).resolve()
        if not lab.is_file():
            lab = (SHIPPED_DIR / data["report"]["labeller"]).resolve()
        if not lab.is_file():
            raise ProfileError(
                str(path),
                "report.labeller",
                f"file {data['report']['labeller']!r} not found",
                "give a path relative to the profile, or leave the key out to use "
                "the shipped labeller/default.toml",
            )
        prof.labeller_path = lab
        prof.has_report = True
    extra = data["study"]["extra"]
    for k, v in extra.items():
        extra[k] = _check(path, f"study.extra.{k}", LOC, v)
    return prof


def load_profiles(extra_dir: Path | None = None, *, shipped: bool = True) -> list[Profile]:
    """Shipped profiles, then those in ``extra_dir``; a later file with the same name wins."""
    dirs = ([SHIPPED_DIR] if shipped else []) + ([Path(extra_dir)] if extra_dir else [])
    by_name: dict[str, Profile] = {}
    for d in dirs:
        if not d.is_dir():
            raise ProfileError(
                str(d),
                "profiles_dir",
                "is not a folder",
                "set VIGIL_PROFILES_DIR to a folder of *.toml profiles",
            )
        for p in sorted(d.glob("*.toml")):
            prof = load_profile(p)
            by_name[prof.name] = prof
    return list(by_name.values())


def select_profile(profiles: list[Profile], application: str, facility: str) -> Profile | None:
    """The profile for MSH-3/MSH-4: facility-specific, then application-only, then fallback."""
    best = None
    for p in profiles:
        if p.matches(application, facility) and (
            best is None or (p.facilities and not best.facilities)
        ):
            best = p
    if best is None:
        for p in profiles:
            if p.fallback:
                return p
    return best

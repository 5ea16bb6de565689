"""Parsed message + profile -> typed events, with PHI turned into pseudonyms on the way.

Everything sender-specific comes from the profile; this module only knows HL7's message types:
ADT (patient updates and merges), ORM^O01/OMI^O23 (orders), ORU^R01 (an AI vendor's result when
the profile has [ai], a radiology report when it has [report]). Order-level segments (ORC, OBR,
OBX, IPC, ZDS...) are read within their order group, so that a second order's OBX can never
answer a question about the first; header-level segments (MSH, PID, PV1, SFT, Z-segments) are
read wherever they are.
"""

from __future__ import annotations

import re
from datetime import datetime

from connectors.errors import MessageRejected
from connectors.events import (
    AIResultEvent,
    MappedMessage,
    OrderEvent,
    PatientInfo,
    PatientMerge,
    PatientUpdate,
    ReadEvent,
    StudyInfo,
)
from connectors.hl7text import BadTimestamp, parse_ts, site_zone
from connectors.labeller import labeller_for
from connectors.parse import Message, Segment
from connectors.phi import Pseudonymiser, age_in_years, birth_date, scrub
from connectors.profile import Loc, ModelSpec, Profile

GROUP_SEGMENTS = frozenset(
    {"ORC", "OBR", "OBX", "NTE", "TQ1", "TQ2", "IPC", "ZDS", "CTI", "SPM", "TXA", "PRT", "FT1"}
)
REPORT_STATUS = {"P": "P", "F": "F", "C": "C"}
NOT_A_READ = {"X", "I", "O", "S", "R", "D"}
SEX = {"F": "F", "M": "M", "U": "U", "O": "O", "A": "O", "N": "U"}

Scope = tuple[int, int] | None


class Mapper:
    """Maps messages for one profile. Built once per profile; ``map`` is the hot path."""

    def __init__(self, profile: Profile, pseudo: Pseudonymiser) -> None:
        self.p = profile
        self.pseudo = pseudo
        d = profile.data
        self.tz = site_zone(d["site"]["timezone"])
        self.map_types = d["messages"]["map"]
        self.ignore_types = d["messages"]["ignore"]
        self.labeller = None
        if profile.has_report and profile.labeller_path is not None:
            extra = tuple((f.finding, f.synonyms) for f in profile.findings if f.synonyms)
            self.labeller = labeller_for(profile.labeller_path, extra)

    # -- entry ----------------------------------------------------------------------------------

    def map(self, msg: Message) -> MappedMessage:
        h = msg.header
        out = MappedMessage(
            sender=h.sender,
            control_id=h.control_id,
            message_type=h.message_type,
            profile=self.p.name,
        )
        mtype = h.message_type
        code = mtype.partition("^")[0]
        if not any(t in (mtype, code) for t in self.map_types):
            if any(t in (mtype, code) for t in self.ignore_types):
                out.outcome = "ignored"
                out.note = f"{mtype} is not a message type Vigil uses (profile {self.p.name})"
                return out
            raise self.reject(
                msg,
                "unsupported_type",
                f"message type {mtype or '(empty)'} is not mapped by profile {self.p.name!r}: "
                "add it to [messages] map (with the fields it needs) or to [messages] ignore",
            )
        if code == "ADT":
            self._adt(msg, out)
        elif mtype in ("ORM^O01", "OMI^O23", "OMG^O19") or code in ("ORM", "OMI"):
            self._order(msg, out)
        elif code == "ORU":
            if self.p.has_ai and (not self.p.has_report or self._has_ai_codes(msg)):
                self._ai(msg, out)
            elif self.p.has_report:
                self._report(msg, out)
            else:
                raise self.reject(
                    msg,
                    "unsupported_type",
                    f"profile {self.p.name!r} maps ORU^R01 but has neither [ai] nor [report]: "
                    "add one of them",
                )
        else:
            raise self.reject(
                msg,
                "unsupported_type",
                f"Vigil has no mapping for {mtype} events; list it under [messages] ignore",
            )
        return out

    def reject(self, msg: Message, code: str, reason: str) -> MessageRejected:
        h = msg.header
        return MessageRejected(
            code, reason, sender=h.sender, control_id=h.control_id, message_type=h.message_type
        )

    # -- lookups --------------------------------------------------------------------------------

    def _obx_codes(self, msg: Message) -> dict[str, list[int]]:
        idx = msg.cache.get("obx")
        if idx is None:
            idx = {}
            for seg in msg.all("OBX"):
                c = msg.value(seg, 3, 1)
                idx.setdefault(c, []).append(seg.position)
            msg.cache["obx"] = idx
        return idx  # type: ignore[return-value]

    def _segment(self, msg: Message, loc: Loc, scope: Scope) -> Segment | None:
        if loc.code is not None:
            positions = (
                self._obx_codes(msg).get(loc.code, ())
                if loc.seg == "OBX"
                else [s.position for s in msg.all(loc.seg) if msg.value(s, 3, 1) == loc.code]
            )
        else:
            positions = msg.index.get(loc.seg, ())
        if not positions:
            return None
        if scope is not None and loc.seg in GROUP_SEGMENTS:
            lo, hi = scope
            for pos in positions:
                if lo <= pos < hi:
                    return msg.segments[pos]
            return None
        return msg.segments[positions[0]]

    def get(
        self, msg: Message, locs: tuple[Loc, ...], scope: Scope = None
    ) -> tuple[str, Loc | None]:
        """First non-empty value among ``locs`` (a field without component: its first one)."""
        for loc in locs:
            if loc.code is None and (scope is None or loc.seg not in GROUP_SEGMENTS):
                positions = msg.index.get(loc.seg)
                if not positions:
                    continue
                seg = msg.segments[positions[0]]
            else:
                seg = self._segment(msg, loc, scope)
                if seg is None:
                    continue
            # inline fast path of Message.value for "first repetition, first component"
            f = seg._fields
            if f is None:
                f = seg.fields(msg.fs)
            if len(f) <= loc.field:
                continue
            v = f[loc.field]
            if not v:
                continue
            if loc.comp <= 1 and not loc.sub and not (loc.field <= 2 and seg.name == "MSH"):
                if msg.rep in v:
                    v = v.split(msg.rep, 1)[0]
                if msg.comp in v:
                    v = v.split(msg.comp, 1)[0]
                if msg.esc and msg.esc in v:
                    v = msg.unescape(v)
            else:
                v = msg.value(seg, loc.field, loc.comp or 1, loc.sub)
            if v:
                v = v.strip()
                if v and v != '""':
                    return v, loc
        return "", None

    def when(self, msg: Message, locs: tuple[Loc, ...], scope: Scope = None) -> datetime | None:
        v, loc = self.get(msg, locs, scope)
        if not v:
            return None
        try:
            return parse_ts(v, self.tz)
        except BadTimestamp:
            raise self.reject(
                msg,
                "bad_timestamp",
                f"{loc} is not an HL7 timestamp (expected YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]): fix "
                "the sender's date format",
            ) from None

    def groups(self, msg: Message) -> list[tuple[int, int]]:
        """Order groups: each starts at an ORC, or at an OBR that follows another OBR."""
        cached = msg.cache.get("groups")
        if cached is not None:
            return cached  # type: ignore[return-value]
        starts: list[int] = []
        has_obr = False
        for seg in msg.segments:
            if seg.name == "ORC":
                starts.append(seg.position)
                has_obr = False
            elif seg.name == "OBR":
                if not starts or has_obr:
                    starts.append(seg.position)
                has_obr = True
            elif seg.name == "IPC" and not starts:
                starts.append(seg.position)
        bounds = [
            (s, starts[i + 1] if i + 1 < len(starts) else len(msg.segments))
            for i, s in enumerate(starts)
        ]
        msg.cache["groups"] = bounds
        return bounds

    # -- patient --------------------------------------------------------------------------------

    def _patient_id(self, msg: Message, locs: tuple[Loc, ...]) -> tuple[str, str] | None:
        """(authority, id) from a CX field, preferring the profile's identifier types."""
        types = self.p.data["patient"]["id_types"]
        for loc in locs:
            seg = self._segment(msg, loc, None)
            if seg is None:
                continue
            reps = msg.repetitions(seg, loc.field)
            best: tuple[int, str] | None = None
            for raw in reps:
                parts = raw.split(msg.comp)
                ident = msg.unescape(parts[0]).strip()
                if not ident or ident == '""':
                    continue
                idtype = msg.unescape(parts[4]).strip() if len(parts) > 4 else ""
                rank = types.index(idtype) if idtype in types else len(types)
                if best is None or rank < best[0]:
                    best = (rank, raw)
            if best is None:
                continue
            parts = best[1].split(msg.comp)
            ident = msg.unescape(parts[0]).strip()
            auth = ""
            if len(parts) > 3 and parts[3]:
                subs = parts[3].split(msg.sub)
                auth = msg.unescape(subs[0] or (subs[1] if len(subs) > 1 else "")).strip()
            return auth or msg.header.sending_facility, ident
        return None

    def patient(self, msg: Message, at: datetime | None) -> PatientInfo:
        d = self.p.data["patient"]
        pid = self._patient_id(msg, d["id"])
        pseudonym = self.pseudo.patient(*pid) if pid else None
        born = birth_date(self.get(msg, d["birth_date"])[0])
        sex = SEX.get(self.get(msg, d["sex"])[0].upper()[:1])
        race = self.get(msg, d["race"])[0] or None
        eth = self.get(msg, d["ethnicity"])[0] or None
        return PatientInfo(
            pseudonym=pseudonym,
            sex=sex,
            race=race,
            ethnicity=eth,
            age_at_study=age_in_years(born, at),
        )

    def _adt(self, msg: Message, out: MappedMessage) -> None:
        d = self.p.data["patient"]
        trigger = msg.header.event or self.get(msg, (Loc("EVN", None, 1),))[0]
        at = self.when(msg, (Loc("EVN", None, 2), Loc("MSH", None, 7)))
        if trigger not in d["update_events"] and trigger not in d["merge_events"]:
            out.outcome = "ignored"
            out.note = f"ADT^{trigger} changes nothing Vigil keeps"
            return
        if msg.first("PID") is None:
            raise self.reject(
                msg,
                "missing_segment",
                f"ADT^{trigger} has no PID segment: the sender must include it",
            )
        if self._patient_id(msg, d["id"]) is None:
            raise self.reject(
                msg,
                "missing_patient_id",
                f"{d['id'][0]} holds no patient identifier: Vigil cannot link this patient",
            )
        info = self.patient(msg, at)
        if trigger in d["merge_events"]:
            prior = self._patient_id(msg, d["prior_id"])
            if prior is None:
                raise self.reject(
                    msg,
                    "missing_patient_id",
                    f"ADT^{trigger} has no prior identifier in {d['prior_id'][0]} (MRG-1): "
                    "without it the merge cannot be applied",
                )
            assert info.pseudonym is not None
            out.events.append(
                PatientMerge(surviving=info.pseudonym, prior=self.pseudo.patient(*prior))
            )
        out.events.append(PatientUpdate(patient=info))

    # -- studies --------------------------------------------------------------------------------

    def study(self, msg: Message, scope: Scope, accession: str) -> StudyInfo:
        d = self.p.data["study"]
        site, _ = self.get(msg, self.p.data["site"]["code"])
        site = self.p.data["site"]["codes"].get(site, site)
        if not site:
            raise self.reject(
                msg,
                "missing_site",
                f"no site code in {', '.join(map(str, self.p.data['site']['code']))}: set "
                "[site] code in the profile or fill MSH-4",
            )
        proc_code = proc_name = None
        for loc in d["procedure"]:
            seg = self._segment(msg, loc, scope)
            if seg is None:
                continue
            c = msg.value(seg, loc.field, 1).strip()
            n = msg.value(seg, loc.field, 2).strip()
            if c or n:
                proc_code, proc_name = c or None, n or None
                break
        pclass_raw = self.get(msg, d["patient_class"], scope)[0]
        extra = None
        if d["extra"]:
            extra = {}
            for name, locs in d["extra"].items():
                v = self.get(msg, locs, scope)[0]
                if v:
                    extra[name] = v
            extra = extra or None
        order_control = self.get(msg, (Loc("ORC", None, 1),), scope)[0]
        if order_control:
            extra = {**(extra or {}), "order_control": order_control}
        return StudyInfo(
            site_code=site,
            accession=accession,
            study_uid=self.get(msg, d["study_uid"], scope)[0] or None,
            modality=self.get(msg, d["modality"], scope)[0] or None,
            procedure_code=proc_code,
            procedure_name=proc_name,
            scanner_manufacturer=self.get(msg, d["scanner_manufacturer"], scope)[0] or None,
            scanner_model=self.get(msg, d["scanner_model"], scope)[0] or None,
            patient_class=d["patient_class_map"].get(pclass_raw.upper()) if pclass_raw else None,
            ordered_at=self.when(msg, d["ordered_at"], scope),
            exam_started_at=self.when(msg, d["exam_started_at"], scope),
            exam_ended_at=self.when(msg, d["exam_ended_at"], scope),
            extra=extra,
        )

    def _accession(self, msg: Message, scope: Scope) -> str:
        acc, _ = self.get(msg, self.p.data["study"]["accession"], scope)
        if not acc:
            raise self.reject(
                msg,
                "missing_accession",
                "no accession number in "
                + ", ".join(map(str, self.p.data["study"]["accession"]))
                + f": the sender must fill it, or profile {self.p.name!r} must name the field "
                "that holds it ([study] accession)",
            )
        return acc

    def _scopes(self, msg: Message, what: str) -> list[tuple[int, int]]:
        scopes = self.groups(msg)
        if not scopes:
            raise self.reject(
                msg,
                "missing_segment",
                f"{msg.header.message_type} has no ORC/OBR (or IPC) segment, so it names no "
                f"{what}: the sender must include the order segments",
            )
        return scopes

    @staticmethod
    def _reference_time(study: StudyInfo, *more: datetime | None) -> datetime | None:
        for t in (study.exam_started_at, study.ordered_at, *more):
            if t is not None:
                return t
        return None

    def _order(self, msg: Message, out: MappedMessage) -> None:
        seen: set[str] = set()
        for scope in self._scopes(msg, "study"):
            acc = self._accession(msg, scope)
            if acc in seen:
                continue
            seen.add(acc)
            study = self.study(msg, scope, acc)
            at = self._reference_time(study, self.when(msg, (Loc("MSH", None, 7),)))
            out.events.append(OrderEvent(study=study, patient=self.patient(msg, at)))

    # -- AI results -----------------------------------------------------------------------------

    def _has_ai_codes(self, msg: Message) -> bool:
        codes = self._obx_codes(msg)
        return any(
            loc.code in codes for m in self.p.models for loc in (*m.score, *m.call) if loc.code
        )

    def _ai(self, msg: Message, out: MappedMessage) -> None:
        received_locs = self.p.data["ai"]["received_at"]
        for scope in self._scopes(msg, "study"):
            for model in self.p.models:
                ev = self._ai_one(msg, scope, model, received_locs)
                if ev is not None:
                    out.events.append(ev)
        if not out.events:
            names = sorted(
                {loc.code or str(loc) for m in self.p.models for loc in (*m.score, *m.call)}
            )
            raise self.reject(
                msg,
                "missing_score",
                f"no AI score or call found (profile {self.p.name!r} looks for "
                f"{', '.join(names)}): check the vendor's OBX-3 codes against the profile",
            )

    def _ai_one(
        self, msg: Message, scope: tuple[int, int], m: ModelSpec, received_locs: tuple[Loc, ...]
    ) -> AIResultEvent | None:
        score_raw, score_loc = self.get(msg, m.score, scope)
        call_raw, call_loc = self.get(msg, m.call, scope)
        if not score_raw and not call_raw:
            return None
        score = None
        if score_raw:
            try:
                score = float(score_raw)
            except ValueError:
                score = None
            if score is None or score != score or score in (float("inf"), float("-inf")):
                raise self.reject(
                    msg,
                    "bad_score",
                    f"{score_loc} holds {score_raw[:20]!r}, not a number: the vendor must send "
                    f"the {m.name} score as a decimal",
                )
            if m.score_range and not m.score_range[0] <= score <= m.score_range[1]:
                raise self.reject(
                    msg,
                    "bad_score",
                    f"{score_loc} score {score} lies outside {list(m.score_range)} "
                    f"(score_range of model {m.name}): check the vendor's scale",
                )
        call = None
        if call_raw:
            call = m.call_map.get(call_raw.upper())
            if call is None:
                raise self.reject(
                    msg,
                    "bad_call",
                    f"{call_loc} holds {call_raw[:20]!r}, which is not in call_map of model "
                    f"{m.name} ({', '.join(m.call_map)}): add it to the profile",
                )
        version = self.get(msg, m.version, scope)[0] or m.version_default
        if not version:
            raise self.reject(
                msg,
                "missing_version",
                f"no algorithm version in {', '.join(map(str, m.version))} for model {m.name}: "
                "the vendor must send it, or set version_default in the profile",
            )
        acc = self._accession(msg, scope)
        study = self.study(msg, scope, acc)
        received = self.when(msg, received_locs, scope)
        at = self._reference_time(study, received)
        return AIResultEvent(
            study=study,
            patient=self.patient(msg, at),
            model_name=m.name,
            finding=m.finding,
            model_version=version,
            score=score,
            call=call,
            received_at=received,
        )

    # -- reports --------------------------------------------------------------------------------

    def _report_text(self, msg: Message, scope: tuple[int, int]) -> tuple[str, bool]:
        """(text of the report's TX/FT OBX lines, whether encapsulated data was seen)."""
        types = self.p.data["report"]["text_types"]
        lines: list[str] = []
        encapsulated = False
        lo, hi = scope
        for pos in msg.index.get("OBX", ()):
            if not lo <= pos < hi:
                continue
            seg = msg.segments[pos]
            vtype = msg.raw_field(seg, 2).strip().upper()
            if vtype in types:
                for rep in msg.repetitions(seg, 5):
                    lines.append(msg.unescape(rep))
            elif vtype == "ED" and len(msg.raw_field(seg, 5).split(msg.comp)) >= 5:
                encapsulated = True  # ED with data (component 5): a PDF or CDA document
        return "\n".join(lines), encapsulated

    _ID_FIELDS = (
        ("PID", (3, 5, 6, 9)),
        ("NK1", (2,)),
        ("OBR", (16, 32, 33, 34)),
        ("PV1", (7, 8, 9, 17)),
        ("ORC", (10, 11, 12)),
    )
    _WORD = re.compile(r"[^\W\d_]{2,}")
    _TITLES = frozenset({"dr", "md", "phd", "jr", "sr", "mr", "ms", "mrs", "ii", "iii", "iv"})

    def _identifiers(self, msg: Message) -> set[str]:
        """Name and id tokens of this message (patient, next of kin, staff) to scrub phrases."""
        parts: list[str] = []
        for name, fields in self._ID_FIELDS:
            for seg in msg.all(name):
                for f in fields:
                    parts.append(msg.raw_field(seg, f))
        text = msg.unescape(" ".join(parts)).lower()
        return set(self._WORD.findall(text)) - self._TITLES

    def _report(self, msg: Message, out: MappedMessage) -> None:
        r = self.p.data["report"]
        assert self.labeller is not None
        for scope in self._scopes(msg, "report"):
            text, encapsulated = self._report_text(msg, scope)
            obr = self._segment(msg, Loc("OBR", None, 4), scope)
            proc = ""
            if obr is not None:
                proc = f"{msg.value(obr, 4, 1)} {msg.value(obr, 4, 2)}".strip()
            coded: dict[str, tuple[str, str]] = {}
            for f in self.p.findings:
                v, loc = self.get(msg, f.coded, scope)
                if v:
                    label = f.coded_map.get(v.upper())
                    if label is None:
                        raise self.reject(
                            msg,
                            "bad_code",
                            f"coded finding {loc} holds {v[:20]!r}, which coded_map of finding "
                            f"{f.finding} does not list: add it to the profile",
                        )
                    coded[f.finding] = (label, f"{loc}={v[:20]}")
            if not text.strip() and not coded:
                if encapsulated:
                    raise self.reject(
                        msg,
                        "unreadable_report",
                        "the report is only encapsulated data (OBX-2 ED, e.g. PDF or CDA): "
                        "Vigil labels text (OBX TX/FT) or coded findings; ask the sender for a "
                        "text report",
                    )
                out.outcome = "ignored"
                out.note = (
                    "result has no report text (OBX "
                    + "/".join(r["text_types"])
                    + ") and no coded finding: not a report Vigil labels"
                )
                continue
            status_raw = self.get(msg, r["status"], scope)[0].upper()[:1]
            if status_raw in NOT_A_READ:
                out.outcome = "ignored"
                out.note = f"result status {status_raw} is not a read"
                continue
            status = REPORT_STATUS.get(status_raw)
            if status is None:
                raise self.reject(
                    msg,
                    "bad_status",
                    f"result status {r['status'][0]} is {status_raw or 'empty'}: Vigil labels "
                    "preliminary (P), final (F) and corrected (C) reports",
                )
            upper = text.upper()
            if status == "C" and any(mk.upper() in upper for mk in r["addendum_markers"]):
                status = "A"
            labels: list[tuple[str, str, str, str]] = []  # finding, label, source, evidence
            ids: set[str] | None = None
            for f in self.p.findings:
                applies = not f.procedures or any(p.search(proc) for p in f.procedures)
                if f.finding in coded:
                    label, ev = coded[f.finding]
                    labels.append((f.finding, label, "coded", ev))
                    continue
                if not applies or not text.strip():
                    continue
                tl = self.labeller.label(text, f.finding)
                if tl is None:
                    if f.when_not_mentioned == "negative":
                        labels.append((f.finding, "negative", "text", "(not mentioned)"))
                    continue
                if ids is None:
                    ids = self._identifiers(msg)
                labels.append((f.finding, tl.label, "text", scrub(tl.phrase, ids)))
            if not labels:
                out.outcome = "ignored"
                out.note = f"the report's procedure matches no finding of profile {self.p.name!r}"
                continue
            acc = self._accession(msg, scope)
            study = self.study(msg, scope, acc)
            reported = self.when(msg, r["reported_at"], scope)
            rad_raw = self.get(msg, r["radiologist"], scope)[0]
            rad = self.pseudo.staff(rad_raw.lower()) if rad_raw else None
            start = self.when(msg, r["read_started_at"], scope) if r["read_started_at"] else None
            end = self.when(msg, r["read_ended_at"], scope) if r["read_ended_at"] else None
            info = self.patient(msg, self._reference_time(study, reported))
            for finding, label, source, ev in labels:
                out.events.append(
                    ReadEvent(
                        study=study,
                        patient=info,
                        finding=finding,
                        label=label,
                        label_source=source,
                        evidence=ev,
                        report_status=status,
                        radiologist=rad,
                        reported_at=reported,
                        read_started_at=start,
                        read_ended_at=end,
                    )
                )
        if out.events:
            out.outcome, out.note = "mapped", ""

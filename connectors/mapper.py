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
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

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
_MISS = object()
# True when this module runs as a mypyc-built extension (setup.py), not as Python source.
COMPILED = not __file__.endswith(".py")


# A location compiled for the hot path: (segment, OBX-3 code or None, field, component,
# subcomponent, is an order-level segment, reads "first repetition, first component", the Loc).
Spec = tuple[str, str | None, int, int, int, bool, bool, Loc]

_EVN_1 = (Loc("EVN", None, 1),)
_EVN_2_MSH_7 = (Loc("EVN", None, 2), Loc("MSH", None, 7))
_ORC_1 = (Loc("ORC", None, 1),)
_OBR_4 = Loc("OBR", None, 4)
_MSH_7 = (Loc("MSH", None, 7),)


class Getter(Protocol):
    def __call__(self, msg: Message, scope: Scope = None) -> tuple[str, Loc | None]: ...


def _getter_source(specs: tuple[Spec, ...]) -> str:
    """Python source of one straight-line lookup for a location list (see ``compile_getter``)."""
    out = [
        "def get(msg, scope=None):",
        "    pget = msg._pos.get",
        "    fcache = msg.fcache",
    ]
    for i, (seg, code, field, comp, sub, grp, simple, _loc) in enumerate(specs):
        w = "    "
        if code is None:
            out += [
                f"{w}p = pget({seg!r})",
                f"{w}if p is None:",
                f"{w}    p = msg.positions({seg!r})",
            ]
            if grp:
                out += [
                    f"{w}pos = -1",
                    f"{w}if p:",
                    f"{w}    if scope is None:",
                    f"{w}        pos = p[0]",
                    f"{w}    else:",
                    f"{w}        lo, hi = scope",
                    f"{w}        for q in p:",
                    f"{w}            if lo <= q < hi:",
                    f"{w}                pos = q",
                    f"{w}                break",
                ]
            else:
                out += [f"{w}pos = p[0] if p else -1"]
        else:
            out += [
                f"{w}pos = position(msg, {seg!r}, {code!r}, {grp!r}, scope)",
                f"{w}if pos is None:",
                f"{w}    pos = -1",
            ]
        out += [
            f"{w}if pos >= 0:",
            f"{w}    f = fcache[pos] or msg.fields_at(pos)",
            f"{w}    v = f[{field}] if len(f) > {field} else ''",
            f"{w}    if v:",
        ]
        w = "            "
        if simple:
            out += [
                f"{w}if msg.rep in v:",
                f"{w}    v = v.split(msg.rep, 1)[0]",
                f"{w}if msg.comp in v:",
                f"{w}    v = v.split(msg.comp, 1)[0]",
                f"{w}if msg.esc and msg.esc in v:",
                f"{w}    v = msg.unescape(v)",
            ]
        else:
            out += [f"{w}v = msg.value_at(pos, {field}, {comp or 1}, {sub})"]
        out += [
            f"{w}if v:",
            f"{w}    v = v.strip()",
            f"{w}    if v and v != '\"\"':",
            f"{w}        return v, LOC{i}",
        ]
    out.append("    return '', None")
    return "\n".join(out) + "\n"


def compile_getter(specs: tuple[Spec, ...], position: Callable[..., int | None]) -> Getter:
    """A location list -> one generated function, the list unrolled: ``Mapper._get`` without
    the per-location loop, tuple unpacking and branches on what the profile fixes.

    Profiles are compiled once; the generic ``_get`` stays for locations not known in advance.
    """
    ns: dict[str, object] = {"position": position}
    for i, spec in enumerate(specs):
        ns[f"LOC{i}"] = spec[7]
    exec(_getter_source(specs), ns)  # the source holds only parsed names, codes and numbers
    return ns["get"]  # type: ignore[return-value]


def compile_locs(locs: tuple[Loc, ...]) -> tuple[Spec, ...]:
    """Locations -> the flat tuples ``Mapper._get`` reads (no attribute lookups per message)."""
    return tuple(
        (
            loc.seg,
            loc.code,
            loc.field,
            loc.comp,
            loc.sub,
            loc.seg in GROUP_SEGMENTS,
            loc.comp <= 1 and not loc.sub and not (loc.field <= 2 and loc.seg == "MSH"),
            loc,
        )
        for loc in locs
    )


class Mapper:
    """Maps messages for one profile. Built once per profile; ``map`` is the hot path.

    Every location list of the profile is compiled once (``compile_locs``) into flat tuples, so
    that a lookup is a few index operations on the message's cached field lists.
    """

    def __init__(self, profile: Profile, pseudo: Pseudonymiser) -> None:
        self.p = profile
        self.pseudo = pseudo
        d = profile.data
        self.tz = site_zone(d["site"]["timezone"])
        self.map_types = d["messages"]["map"]
        self.ignore_types = d["messages"]["ignore"]
        self._map_set = frozenset(self.map_types)
        self._ignore_set = frozenset(self.ignore_types)
        self.labeller = None
        if profile.has_report and profile.labeller_path is not None:
            extra = tuple((f.finding, f.synonyms) for f in profile.findings if f.synonyms)
            self.labeller = labeller_for(profile.labeller_path, extra)
        self._compiled: dict[tuple[Loc, ...], tuple[Spec, ...]] = {}
        self._infos: dict[tuple[object, ...], PatientInfo] = {}
        self._times: dict[str, datetime | None] = {}
        pat, st = d["patient"], d["study"]
        specs = compile_locs

        def c(locs: tuple[Loc, ...]) -> Getter:
            specs = compile_locs(locs)
            if not COMPILED:
                return compile_getter(specs, self._position)

            # Built with mypyc (see setup.py): the generic loop runs as C, and a generated
            # Python function would only slow it down.
            def get(msg: Message, scope: Scope = None) -> tuple[str, Loc | None]:
                return self._get(msg, specs, scope)

            return get  # type: ignore[return-value]

        self._g_site = c(d["site"]["code"])
        self._site_codes = d["site"]["codes"]
        self._id_types = pat["id_types"]
        self._id_rank: dict[str, int] = {}
        for i, t in enumerate(self._id_types):
            self._id_rank.setdefault(t, i)
        self._c_id = specs(pat["id"])
        self._c_prior = specs(pat["prior_id"])
        self._g_birth = c(pat["birth_date"])
        self._g_sex = c(pat["sex"])
        self._g_race = c(pat["race"])
        self._g_eth = c(pat["ethnicity"])
        self._update_events = pat["update_events"]
        self._merge_events = pat["merge_events"]
        self._g_acc = c(st["accession"])
        self._g_uid = c(st["study_uid"])
        self._g_modality = c(st["modality"])
        self._c_procedure = specs(st["procedure"])
        self._g_ordered = c(st["ordered_at"])
        self._g_started = c(st["exam_started_at"])
        self._g_ended = c(st["exam_ended_at"])
        self._g_pclass = c(st["patient_class"])
        self._pclass_map = st["patient_class_map"]
        self._g_manuf = c(st["scanner_manufacturer"])
        self._g_model = c(st["scanner_model"])
        self._g_extra = [(name, c(locs)) for name, locs in st["extra"].items()]
        self._g_evn1 = c(_EVN_1)
        self._g_evn2_msh7 = c(_EVN_2_MSH_7)
        self._g_orc1 = c(_ORC_1)
        self._g_msh7 = c(_MSH_7)
        self._models = [(m, c(m.score), c(m.call), c(m.version)) for m in profile.models]
        self._ai_codes = tuple(
            loc.code for m in profile.models for loc in (*m.score, *m.call) if loc.code
        )
        if profile.has_ai:
            self._g_received = c(d["ai"]["received_at"])
        if profile.has_report:
            r = d["report"]
            self._g_status = c(r["status"])
            self._g_reported = c(r["reported_at"])
            self._g_rad = c(r["radiologist"])
            self._g_read_start = c(r["read_started_at"]) if r["read_started_at"] else None
            self._g_read_end = c(r["read_ended_at"]) if r["read_ended_at"] else None
            self._text_types = r["text_types"]
            self._markers = [mk.upper() for mk in r["addendum_markers"]]
            self._findings = [(f, c(f.coded)) for f in profile.findings]

    # -- entry ----------------------------------------------------------------------------------

    def map(self, msg: Message) -> MappedMessage:
        h = msg.header
        mtype = h.message_type
        out = MappedMessage(
            sender=h.sender,
            control_id=h.control_id,
            message_type=mtype,
            profile=self.p.name,
        )
        code = mtype.partition("^")[0]
        if mtype not in self._map_set and code not in self._map_set:
            if mtype in self._ignore_set or code in self._ignore_set:
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

    def _codes(self, msg: Message, seg: str) -> dict[str, list[int]]:
        """SEG-3.1 (unescaped) -> positions of the segments named ``seg``, per message."""
        key = ("codes", seg)
        idx: Any = msg.cache.get(key)
        if idx is None:
            idx = {}
            fcache = msg.fcache
            rep, comp, esc = msg.rep, msg.comp, msg.esc
            for pos in msg.positions(seg):
                # SEG-3.1 of the first repetition, unescaped: Message.value(seg, 3, 1), inlined
                f = fcache[pos] or msg.fields_at(pos)
                v = f[3] if len(f) > 3 else ""
                if v:
                    if rep in v:
                        v = v.split(rep, 1)[0]
                    if comp in v:
                        v = v.split(comp, 1)[0]
                    if esc and esc in v:
                        v = msg.unescape(v)
                codes = idx.get(v)
                if codes is None:
                    idx[v] = [pos]
                else:
                    codes.append(pos)
            msg.cache[key] = idx
        return idx  # type: ignore[return-value]

    def _obx_codes(self, msg: Message) -> dict[str, list[int]]:
        return self._codes(msg, "OBX")

    def _coded(self, msg: Message, seg: str, code: str) -> list[int]:
        """Positions of the ``seg`` segments whose SEG-3.1 is ``code`` (= ``_codes(...)[code]``).

        Cheaper than indexing every code: a line that holds neither ``code`` nor the escape
        character cannot have it as SEG-3.1 (unescaped, that value is a substring of the line).
        """
        key = (seg, code)
        hit = msg.cache.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        full = msg.cache.get(("codes", seg))
        if full is not None:
            out = full.get(code, [])  # type: ignore[attr-defined]
        else:
            lines = msg.lines
            esc = msg.esc
            out = []
            for pos in msg.positions(seg):
                line = lines[pos]
                if (code in line or (esc and esc in line)) and msg.value_at(pos, 3, 1) == code:
                    out.append(pos)
        msg.cache[key] = out
        return out

    def _position(
        self, msg: Message, seg: str, code: str | None, grp: bool, scope: Scope
    ) -> int | None:
        """Position of the first segment a location names (within ``scope`` if order-level)."""
        positions = msg.positions(seg) if code is None else self._coded(msg, seg, code)
        if not positions:
            return None
        if scope is not None and grp:
            lo, hi = scope
            for pos in positions:
                if lo <= pos < hi:
                    return pos
            return None
        return positions[0]

    def _segment(self, msg: Message, loc: Loc, scope: Scope) -> Segment | None:
        pos = self._position(msg, loc.seg, loc.code, loc.seg in GROUP_SEGMENTS, scope)
        return None if pos is None else msg.segments[pos]

    def get(
        self, msg: Message, locs: tuple[Loc, ...], scope: Scope = None
    ) -> tuple[str, Loc | None]:
        """First non-empty value among ``locs`` (a field without component: its first one)."""
        specs = self._compiled.get(locs)
        if specs is None:
            specs = self._compiled[locs] = compile_locs(locs)
        return self._get(msg, specs, scope)

    def _get(
        self, msg: Message, specs: tuple[Spec, ...], scope: Scope = None
    ) -> tuple[str, Loc | None]:
        pget = msg._pos.get
        fcache = msg.fcache
        for seg, code, field, comp, sub, grp, simple, loc in specs:
            if code is None:
                positions = pget(seg)
                if positions is None:
                    positions = msg.positions(seg)
                if not positions:
                    continue
                if scope is None or not grp:
                    pos = positions[0]
                else:
                    lo, hi = scope
                    for pos in positions:
                        if lo <= pos < hi:
                            break
                    else:
                        continue
            else:
                pos2 = self._position(msg, seg, code, grp, scope)
                if pos2 is None:
                    continue
                pos = pos2
            f = fcache[pos] or msg.fields_at(pos)
            if len(f) <= field:
                continue
            v = f[field]
            if not v:
                continue
            if simple:
                if msg.rep in v:
                    v = v.split(msg.rep, 1)[0]
                if msg.comp in v:
                    v = v.split(msg.comp, 1)[0]
                if msg.esc and msg.esc in v:
                    v = msg.unescape(v)
            else:
                v = msg.value_at(pos, field, comp or 1, sub)
            if v:
                v = v.strip()
                if v and v != '""':
                    return v, loc
        return "", None

    def when(self, msg: Message, locs: tuple[Loc, ...], scope: Scope = None) -> datetime | None:
        specs = self._compiled.get(locs)
        if specs is None:
            specs = self._compiled[locs] = compile_locs(locs)

        def getter(m: Message, sc: Scope = None) -> tuple[str, Loc | None]:
            return self._get(m, specs, sc)

        return self._when(msg, getter, scope)  # type: ignore[arg-type]

    def _when(self, msg: Message, getter: Getter, scope: Scope = None) -> datetime | None:
        v, loc = getter(msg, scope)
        if not v:
            return None
        dt = self._times.get(v, _MISS)
        if dt is not _MISS:
            return dt  # type: ignore[return-value]
        try:
            dt = parse_ts(v, self.tz)
        except BadTimestamp:
            raise self.reject(
                msg,
                "bad_timestamp",
                f"{loc} is not an HL7 timestamp (expected YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]): fix "
                "the sender's date format",
            ) from None
        if len(self._times) >= 65536:
            self._times.clear()
        self._times[v] = dt
        return dt

    def groups(self, msg: Message) -> list[tuple[int, int]]:
        """Order groups: each starts at an ORC, or at an OBR that follows another OBR."""
        cached = msg.cache.get("groups")
        if cached is not None:
            return cached  # type: ignore[return-value]
        positions = msg.positions
        # only ORC, OBR and IPC move the state: walk their positions in message order
        marks = [*positions("ORC"), *positions("OBR"), *positions("IPC")]
        marks.sort()
        names = msg.names
        starts: list[int] = []
        has_obr = False
        for pos in marks:
            name = names[pos]
            if name == "ORC":
                starts.append(pos)
                has_obr = False
            elif name == "OBR":
                if not starts or has_obr:
                    starts.append(pos)
                has_obr = True
            elif not starts:  # IPC
                starts.append(pos)
        n = len(names)
        bounds = [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]
        msg.cache["groups"] = bounds
        return bounds

    # -- patient --------------------------------------------------------------------------------

    def _patient_id(
        self, msg: Message, locs: tuple[Loc, ...] | tuple[Spec, ...]
    ) -> tuple[str, str] | None:
        """(authority, id) from a CX field, preferring the profile's identifier types."""
        if locs and isinstance(locs[0], Loc):
            specs = self._compiled.get(locs)  # type: ignore[arg-type]
            if specs is None:
                specs = self._compiled[locs] = compile_locs(locs)  # type: ignore[index,arg-type]
            locs = specs
        key = ("pid", id(locs))
        hit = msg.cache.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        out = self._patient_id_of(msg, locs)  # type: ignore[arg-type]
        msg.cache[key] = out
        return out

    def _patient_id_of(self, msg: Message, specs: tuple[Spec, ...]) -> tuple[str, str] | None:
        rank_of = self._id_rank
        worst = len(self._id_types)
        comp = msg.comp
        esc = msg.esc
        unesc = msg.unescape
        for seg, code, field, _c, _s, grp, _simple, _loc in specs:
            pos = self._position(msg, seg, code, grp, None)
            if pos is None:
                continue
            f = msg.fcache[pos] or msg.fields_at(pos)
            v = f[field] if len(f) > field else ""
            if not v:
                continue
            best: tuple[int, str] | None = None
            for raw in v.split(msg.rep):
                parts = raw.split(comp)
                ident = parts[0]
                if esc and esc in ident:
                    ident = unesc(ident)
                ident = ident.strip()
                if not ident or ident == '""':
                    continue
                if len(parts) > 4:
                    idtype = parts[4]
                    if esc and esc in idtype:
                        idtype = unesc(idtype)
                    rank = rank_of.get(idtype.strip(), worst)
                else:
                    rank = rank_of.get("", worst)
                if best is None or rank < best[0]:
                    best = (rank, raw)
            if best is None:
                continue
            parts = best[1].split(comp)
            ident = unesc(parts[0]).strip()
            auth = ""
            if len(parts) > 3 and parts[3]:
                subs = parts[3].split(msg.sub)
                auth = unesc(subs[0] or (subs[1] if len(subs) > 1 else "")).strip()
            return auth or msg.header.sending_facility, ident
        return None

    def patient(self, msg: Message, at: datetime | None) -> PatientInfo:
        cached: Any = msg.cache.get("patient")
        if cached is None:
            pid = self._patient_id(msg, self._c_id)
            cached = msg.cache["patient"] = (
                self.pseudo.patient(*pid) if pid else None,
                birth_date(self._g_birth(msg)[0]),
                SEX.get(self._g_sex(msg)[0].upper()[:1]),
                self._g_race(msg)[0] or None,
                self._g_eth(msg)[0] or None,
            )
        pseudonym, born, sex, race, eth = cached  # type: ignore[misc]
        key = (pseudonym, sex, race, eth, age_in_years(born, at))
        info = self._infos.get(key)
        if info is None:
            # frozen and made of immutable values: one instance serves every equal patient
            if len(self._infos) >= 65536:
                self._infos.clear()
            info = self._infos[key] = PatientInfo(
                pseudonym=pseudonym, sex=sex, race=race, ethnicity=eth, age_at_study=key[4]
            )
        return info

    def _adt(self, msg: Message, out: MappedMessage) -> None:
        d = self.p.data["patient"]
        trigger = msg.header.event or self._g_evn1(msg)[0]
        at = self._when(msg, self._g_evn2_msh7)
        if trigger not in self._update_events and trigger not in self._merge_events:
            out.outcome = "ignored"
            out.note = f"ADT^{trigger} changes nothing Vigil keeps"
            return
        if not msg.positions("PID"):
            raise self.reject(
                msg,
                "missing_segment",
                f"ADT^{trigger} has no PID segment: the sender must include it",
            )
        if self._patient_id(msg, self._c_id) is None:
            raise self.reject(
                msg,
                "missing_patient_id",
                f"{d['id'][0]} holds no patient identifier: Vigil cannot link this patient",
            )
        info = self.patient(msg, at)
        if trigger in self._merge_events:
            prior = self._patient_id(msg, self._c_prior)
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
        when = self._when
        site, _ = self._g_site(msg)
        site = self._site_codes.get(site, site)
        if not site:
            raise self.reject(
                msg,
                "missing_site",
                f"no site code in {', '.join(map(str, self.p.data['site']['code']))}: set "
                "[site] code in the profile or fill MSH-4",
            )
        proc_code = proc_name = None
        for seg, code, field, _c, _s, grp, _simple, _loc in self._c_procedure:
            pos = self._position(msg, seg, code, grp, scope)
            if pos is None:
                continue
            c = msg.value_at(pos, field, 1).strip()
            n = msg.value_at(pos, field, 2).strip()
            if c or n:
                proc_code, proc_name = c or None, n or None
                break
        pclass_raw = self._g_pclass(msg, scope)[0]
        extra: dict[str, str] | None = None
        if self._g_extra:
            extra = {}
            for name, getter in self._g_extra:
                v = getter(msg, scope)[0]
                if v:
                    extra[name] = v
            extra = extra or None
        order_control = self._g_orc1(msg, scope)[0]
        if order_control:
            extra = {**(extra or {}), "order_control": order_control}
        return StudyInfo(
            site_code=site,
            accession=accession,
            study_uid=self._g_uid(msg, scope)[0] or None,
            modality=self._g_modality(msg, scope)[0] or None,
            procedure_code=proc_code,
            procedure_name=proc_name,
            scanner_manufacturer=self._g_manuf(msg, scope)[0] or None,
            scanner_model=self._g_model(msg, scope)[0] or None,
            patient_class=self._pclass_map.get(pclass_raw.upper()) if pclass_raw else None,
            ordered_at=when(msg, self._g_ordered, scope),
            exam_started_at=when(msg, self._g_started, scope),
            exam_ended_at=when(msg, self._g_ended, scope),
            extra=extra,
        )

    def _accession(self, msg: Message, scope: Scope) -> str:
        acc, _ = self._g_acc(msg, scope)
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
            at = self._reference_time(study, self._when(msg, self._g_msh7))
            out.events.append(OrderEvent(study=study, patient=self.patient(msg, at)))

    # -- AI results -----------------------------------------------------------------------------

    def _has_ai_codes(self, msg: Message) -> bool:
        return any(self._coded(msg, "OBX", c) for c in self._ai_codes)

    def _ai(self, msg: Message, out: MappedMessage) -> None:
        for scope in self._scopes(msg, "study"):
            for model in self._models:
                ev = self._ai_one(msg, scope, model)
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
        self,
        msg: Message,
        scope: tuple[int, int],
        model: tuple[ModelSpec, Getter, Getter, Getter],
    ) -> AIResultEvent | None:
        m, c_score, c_call, c_version = model
        score_raw, score_loc = c_score(msg, scope)
        call_raw, call_loc = c_call(msg, scope)
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
        version = c_version(msg, scope)[0] or m.version_default
        if not version:
            raise self.reject(
                msg,
                "missing_version",
                f"no algorithm version in {', '.join(map(str, m.version))} for model {m.name}: "
                "the vendor must send it, or set version_default in the profile",
            )
        acc = self._accession(msg, scope)
        study = self.study(msg, scope, acc)
        received = self._when(msg, self._g_received, scope)
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
        types = self._text_types
        lines: list[str] = []
        encapsulated = False
        lo, hi = scope
        fcache = msg.fcache
        rep = msg.rep
        esc = msg.esc
        for pos in msg.positions("OBX"):
            if not lo <= pos < hi:
                continue
            f = fcache[pos] or msg.fields_at(pos)
            n = len(f)
            vtype = f[2].strip().upper() if n > 2 else ""
            if vtype in types:
                v = f[5] if n > 5 else ""
                if v:
                    for r in v.split(rep) if rep in v else (v,):
                        lines.append(msg.unescape(r) if esc and esc in r else r)
            elif vtype == "ED" and len((f[5] if n > 5 else "").split(msg.comp)) >= 5:
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
            for pos in msg.positions(name):
                f = msg.fcache[pos] or msg.fields_at(pos)
                n = len(f)
                for i in fields:
                    parts.append(f[i] if n > i else "")
        text = msg.unescape(" ".join(parts)).lower()
        return set(self._WORD.findall(text)) - self._TITLES

    def _report(self, msg: Message, out: MappedMessage) -> None:
        r = self.p.data["report"]
        labeller = self.labeller
        assert labeller is not None
        when = self._when
        for scope in self._scopes(msg, "report"):
            text, encapsulated = self._report_text(msg, scope)
            obr = self._position(msg, "OBR", None, True, scope)
            proc = ""
            if obr is not None:
                proc = f"{msg.value_at(obr, 4, 1)} {msg.value_at(obr, 4, 2)}".strip()
            coded: dict[str, tuple[str, str]] = {}
            for f, c_coded in self._findings:
                v, loc = c_coded(msg, scope)
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
            has_text = bool(text.strip())
            if not has_text and not coded:
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
            status_raw = self._g_status(msg, scope)[0].upper()[:1]
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
            if status == "C":
                upper = text.upper()
                if any(mk in upper for mk in self._markers):
                    status = "A"
            labels: list[tuple[str, str, str, str]] = []  # finding, label, source, evidence
            ids: set[str] | None = None
            for f, _c in self._findings:
                if f.finding in coded:
                    label, ev = coded[f.finding]
                    labels.append((f.finding, label, "coded", ev))
                    continue
                applies = not f.procedures or any(p.search(proc) for p in f.procedures)
                if not applies or not has_text:
                    continue
                tl = labeller.label(text, f.finding)
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
            reported = when(msg, self._g_reported, scope)
            rad_raw = self._g_rad(msg, scope)[0]
            rad = self.pseudo.staff(rad_raw.lower()) if rad_raw else None
            start = when(msg, self._g_read_start, scope) if self._g_read_start else None
            end = when(msg, self._g_read_end, scope) if self._g_read_end else None
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

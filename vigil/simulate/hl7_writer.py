"""HL7 v2.5 messages of the four senders, per docs/simulated-feeds.md, from plain string templates.

hl7apy builds a message in milliseconds; a million studies need microseconds, so messages are
f-strings over values the network already decided. The test suite checks the result with hl7apy.
Message kinds (``KIND_*``) and mess flags come from the feed plan (feeds.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

from vigil.simulate import catalog as C
from vigil.simulate.reports_text import (
    ADDENDA,
    CORRECTION_NOTE,
    PRELIM_NOTE,
    report_sections,
)

KIND_ADT, KIND_ORDER, KIND_AI, KIND_PRELIM, KIND_FINAL, KIND_CORR, KIND_ADDENDUM, KIND_A08 = range(
    8
)
KIND_NAMES = ("adt", "order", "ai_result", "prelim", "final", "correction", "addendum", "adt_a08")

SENDERS = ("RADIS", "SYNRIS", "NEUROVUE", "LUNGSIGHT")
SENDER_PREFIX = ("RAD", "", "NVU-", "LSA")
S_RADIS, S_SYNRIS, S_NEUROVUE, S_LUNGSIGHT = range(4)

# malformed kinds and the dead-letter reason code a connector should give them
MALFORMED = ("", "truncated_msh", "missing_accession", "non_numeric_score", "garbage_bytes")
MALFORMED_REASON = ("", "bad_msh", "missing_accession", "bad_score", "bad_encoding")

LOINC_FINDINGS = "18782-3^Radiology Study observation (narrative)^LN"
LOINC_IMPRESSION = "19005-8^Radiology Imaging study [Impression] (narrative)^LN"
CODED = ("ICH^Intracranial hemorrhage^RADLEX-L", "NODULE^Pulmonary nodule^RADLEX-L")
YNU = ("N", "Y", "U")
_STATUS = {KIND_PRELIM: "P", KIND_FINAL: "F", KIND_CORR: "C", KIND_ADDENDUM: "C"}
ZONE_OFFSETS = (("+0100", 3600), ("-0500", -5 * 3600), ("+0000", 0), ("-0600", -6 * 3600))

ORDERING = (
    "1234^Patel^Nina^^^DR",
    "2345^Nguyen^Tuan^^^DR",
    "3456^Schmidt^Hans^^^DR",
    "4567^Johnson^Keisha^^^DR",
    "5678^Alvarez^Rosa^^^DR",
)

_DAYS: dict[int, str] = {}
_HOURS: dict[int, str] = {}
_MMSS = [f"{m:02d}{s:02d}" for m in range(60) for s in range(60)]
_NEEDS_ESCAPE = re.compile(r"[|^&~\\]").search
_ESCAPED: dict[str, str] = {}


def _day(d: int) -> str:
    s = _DAYS.get(d)
    if s is None:
        s = _DAYS[d] = datetime.fromtimestamp(d * 86400, UTC).strftime("%Y%m%d")
    return s


def fmt_ts(sec: int, style: int = 0, salt: int = 0) -> str:
    """HL7 TS of an epoch second. style 0: local=UTC, no zone; 1: same instant written in another
    zone with its offset; 2: with a fraction of a second (never changes the second)."""
    if style == 1:
        zone, off = ZONE_OFFSETS[salt % len(ZONE_OFFSETS)]
        sec += off
    h, r = divmod(sec, 3600)
    prefix = _HOURS.get(h)
    if prefix is None:
        prefix = _HOURS[h] = datetime.fromtimestamp(h * 3600, UTC).strftime("%Y%m%d%H")
    out = prefix + _MMSS[r]
    if style == 1:
        return out + zone
    if style == 2:
        return f"{out}.{salt % 1000:03d}"
    return out


def escape(text: str) -> str:
    """HL7 escaping of the delimiters (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\)."""
    if not _NEEDS_ESCAPE(text):
        return text
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def accession(site_index: int, seq: int) -> str:
    """RADIS sites prefix the site code; SYNRIS numbers are plain (unique per site only)."""
    if C.SITES[site_index].ris == "RADIS":
        return f"{C.SITES[site_index].code}{seq:08d}"
    return str(7_000_000 + seq)


class StudyStrings:
    """Per-study strings shared by every message of the study (built once per worker)."""

    __slots__ = ("acc", "dob", "filler", "mrn", "name", "pid", "placer", "pv1", "uid", "visit")


class Builder:
    """Formats messages for the studies of one slice of the network.

    ``cols`` and ``pats`` are plain lists (one entry per study of the slice / patient), which
    makes per-value access cheap in the loop.
    """

    def __init__(self, cols: dict[str, list], pats: dict[str, list], rads, uid_root: str) -> None:
        self.c = cols
        self.p = pats
        self.rads = rads
        self.uid_root = uid_root
        self.cache: dict[int, StudyStrings] = {}
        self.texts: dict[tuple[int, int, bool], tuple[list[str], list[str]]] = {}

    # --- shared segments -----------------------------------------------------------------------
    def study(self, j: int) -> StudyStrings:
        st = self.cache.get(j)
        if st is not None:
            return st
        c, p = self.c, self.p
        st = StudyStrings()
        si = c["site"][j]
        site = C.SITES[si].code
        pat = c["patient_local"][j]
        seq = c["seq"][j]
        st.acc = accession(si, seq)
        st.placer = f"PO{si + 1}{seq:08d}"
        st.filler = f"RF{si + 1}{seq:09d}" if C.SITES[si].ris == "RADIS" else st.acc
        st.uid = f"{self.uid_root}.{si + 1}.{seq}"
        st.mrn = f"{p['mrn'][pat]}^^^{site}^MR"
        sex = c["sex"][j]
        given_list = C.GIVEN_F if sex == 0 else C.GIVEN_M
        fam = C.FAMILY[p["family"][pat]]
        giv = given_list[p["given"][pat] % len(given_list)]
        st.name = f"{escape(fam)}^{escape(giv)}"
        st.dob = _day(p["birth"][pat])
        race_code, race_text = C.RACES[c["race"][j]]
        race = "" if race_code == "UNK" else f"{race_code}^{race_text}^CDCREC"
        eth_code, eth_text = C.ETHNICITIES[c["eth"][j]]
        eth = "" if eth_code == "UNK" else f"{eth_code}^{eth_text}^CDCREC"
        city, state, zip3 = C.CITIES[p["city"][pat]]
        addr = (
            f"{p['house'][pat]} {C.STREETS[p['street'][pat]]}^^{city}^{state}^{zip3}{pat % 100:02d}"
        )
        st.pid = (
            f"PID|1||{st.mrn}||{st.name}||{st.dob}|{C.SEXES[sex]}||{race}|{addr}"
            f"|||||||{{visit}}|||||{eth}"
        )
        st.visit = f"V{si + 1}{seq:08d}"
        st.pid = st.pid.replace("{visit}", st.visit)
        cls = c["pclass"][j]
        loc = (f"4W^{400 + seq % 40}^A^{site}", f"RAD^^^{site}", f"ED^{seq % 30 + 1}^^{site}")[cls]
        st.pv1 = f"PV1|1|{C.PV1_CLASS[cls]}|{loc}||||||||||||||||{st.visit}"
        self.cache[j] = st
        return st

    @staticmethod
    def msh(app: str, site: str, ts: str, mtype: str, ctrl: str, utf8: bool) -> str:
        tail = "||||||UNICODE UTF-8" if utf8 else ""
        return f"MSH|^~\\&|{app}|{site}|VIGIL|COE|{ts}||{mtype}|{ctrl}|P|2.5{tail}"

    def ordering(self, j: int) -> str:
        return ORDERING[self.c["seq"][j] % len(ORDERING)]

    # --- messages ---------------------------------------------------------------------------------
    def build(
        self, kind: int, j: int, ctrl: str, t: int,
        zseg: bool, esc: bool, empty_msh7: bool, style: int, salt: int, bad: int,
    ) -> list[str]:  # fmt: skip
        """Segments of one message (without terminators); ``bad`` is the malformed kind."""
        ts = "" if empty_msh7 else fmt_ts(t, style, salt)
        site = C.SITES[self.c["site"][j]]
        if kind == KIND_AI:
            segs = self._ai(j, ctrl, t, ts, style, salt, bad)
        elif kind in (KIND_ADT, KIND_A08):
            segs = self._adt(j, kind, ctrl, t, ts, style, salt, site)
        elif kind == KIND_ORDER:
            segs = self._order(j, ctrl, ts, style, salt, site)
        else:
            segs = self._report(j, kind, ctrl, t, ts, style, salt, site, esc, bad)
        if zseg:
            segs.append(f"ZXT|{salt % 97}|{ctrl}|{site.code}|interface-engine-v4.2")
        return segs

    def _adt(self, j, kind, ctrl, t, ts, style, salt, site) -> list[str]:
        st = self.study(j)
        cls = self.c["pclass"][j]
        code = "A08" if kind == KIND_A08 else ("A01" if cls == 0 else "A04")
        return [
            self.msh(site.ris, site.code, ts, f"ADT^{code}^ADT_A01", ctrl, site.ris == "SYNRIS"),
            f"EVN|{code}|{fmt_ts(t, style, salt)}",
            st.pid,
            st.pv1,
        ]

    def _order(self, j, ctrl, ts, style, salt, site) -> list[str]:
        c = self.c
        st = self.study(j)
        proc = C.PROCEDURES[c["proc"][j]]
        ot = fmt_ts(c["ordered"][j], style, salt)
        prio = "S" if c["stat"][j] else "R"
        ind = escape(C.INDICATIONS[proc.code][c["text_choice"][j] % len(C.INDICATIONS[proc.code])])
        svc = f"{proc.code}^{proc.name}^L"
        if site.ris == "RADIS":
            return [
                self.msh("RADIS", site.code, ts, "ORM^O01", ctrl, False),
                st.pid,
                st.pv1,
                f"ORC|NW|{st.placer}|{st.filler}||SC||^^^{ot}^^{prio}||{ot}|||{self.ordering(j)}",
                f"OBR|1|{st.placer}|{st.filler}|{svc}||{ot}|||||||{ind}|||{self.ordering(j)}"
                f"||{st.acc}||||||{proc.modality}|||^^^{ot}^^{prio}",
                f"ZDS|{st.uid}^RADIS^Application^DICOM",
            ]
        return [
            self.msh("SYNRIS", site.code, ts, "OMI^O23^OMI_O23", ctrl, True),
            st.pid,
            st.pv1,
            f"ORC|NW|{st.placer}|{st.acc}||SC||||{ot}|||{self.ordering(j)}",
            f"TQ1|1||||||{ot}||{prio}",
            f"OBR|1|{st.placer}|{st.acc}|{svc}|||||||||{ind}|||{self.ordering(j)}"
            f"||||||||{proc.modality}",
            f"IPC|{st.acc}|RP{st.acc}|{st.uid}|SPS{st.acc}|{proc.modality}",
        ]

    def _ai(self, j, ctrl, t, ts, style, salt, bad) -> list[str]:
        c = self.c
        st = self.study(j)
        si = c["site"][j]
        site = C.SITES[si].code
        mi = c["model"][j]
        m = C.MODELS[mi]
        ver = m.versions[c["version"][j]].version
        sc = C.SCANNERS[c["scanner"][j]]
        score = f"{c['score'][j]:.4f}"
        call = c["ai_call"][j]
        exam = fmt_ts(c["exam_start"][j], style, salt)
        ait = fmt_ts(t, style, salt)
        pid = f"PID|1||{st.mrn}||{st.name}||{st.dob}|{C.SEXES[c['sex'][j]]}"
        acc = "" if bad == 2 else st.acc
        if bad == 3:
            score = ("N/A", "0,{:04d}".format(int(c["score"][j] * 10000)), "high")[salt % 3]
        if mi == 0:
            uid_type = "RP" if si % 2 == 0 else "ST"
            uid = f"{st.uid}^NEUROVUE^Application^DICOM" if uid_type == "RP" else st.uid
            if bad == 2:
                uid_type, uid = "ST", ""
            eq = f"NeuroVue^{ver}"
            return [
                self.msh("NEUROVUE", site, ts, "ORU^R01^ORU_R01", ctrl, True),
                pid,
                f"PV1|1|{C.PV1_CLASS[c['pclass'][j]]}",
                f"OBR|1||{acc}|ICH^Intracranial hemorrhage detection^NVU|||{exam}"
                f"|||||||||||||||{ait}|||F",
                f"OBX|1|NM|ICH_SCORE^ICH probability^NVU||{score}||0-1||||F|||{ait}||||{eq}",
                f"OBX|2|ST|ICH_FLAG^ICH suspected^NVU||{'POSITIVE' if call else 'NEGATIVE'}"
                f"|||{'A' if call else 'N'}|||F|||{ait}||||{eq}",
                f"OBX|3|{uid_type}|113014^DICOM Study^DCM||{uid}||||||F",
                f"OBX|4|ST|00080070^Manufacturer^DCM||{escape(sc.manufacturer)}||||||F",
                f"OBX|5|ST|00081090^Manufacturer Model Name^DCM||{escape(sc.model)}||||||F",
            ]
        flag = "DETECTED^Nodule detected^LSA" if call else "NOT_DETECTED^No nodule detected^LSA"
        build = f"{ver}-b{17 + c['version'][j]}"
        return [
            self.msh("LUNGSIGHT", site, ts, "ORU^R01^ORU_R01", ctrl, False),
            f"SFT|LungSight Analytics Ltd.|{ver}|LungSight Nodule|{build}",
            pid,
            f"ORC|RE||{acc}",
            f"OBR|1||LS{ctrl[3:]}|NODULE^Pulmonary nodule detection^LSA|||{exam}"
            f"|||||||||||||||{ait}|||F",
            f"OBX|1|CWE|NODULE^Pulmonary nodule^LSA||{flag}||||{score}||F|||{ait}",
            f"ZSC|{escape(sc.manufacturer)}|{escape(sc.model)}|{sc.kvp}|{sc.slice_mm:.1f}",
        ]

    def _report(self, j, kind, ctrl, t, ts, style, salt, site, esc, bad) -> list[str]:
        c = self.c
        st = self.study(j)
        proc_i = c["proc"][j]
        proc = C.PROCEDURES[proc_i]
        status = _STATUS[kind]
        label = c["rad_final"][j] if kind == KIND_CORR else c["rad_initial"][j]
        rad_i = c["prelim_rad"][j] if kind == KIND_PRELIM else c["radiologist"][j]
        rid, fam, giv, british = self.rads[rad_i]
        key = (j, label, british)
        sections = self.texts.get(key)
        if sections is None:
            inds = C.INDICATIONS[proc.code]
            ind = inds[c["text_choice"][j] % len(inds)]
            sections = report_sections(proc_i, max(label, 0), c["text_choice"][j], ind, british)
            self.texts[key] = sections
        body, imp = sections
        lines = [f"EXAM: {proc.name}"]
        if kind == KIND_PRELIM:
            lines.insert(0, PRELIM_NOTE)
        elif kind == KIND_CORR:
            lines.insert(0, CORRECTION_NOTE)
        elif kind == KIND_ADDENDUM:
            lines[0:0] = [ADDENDA[c["text_choice"][j] % len(ADDENDA)], "", "ORIGINAL REPORT:"]
        lines += body
        imp_head = "IMPRESSION:"
        if esc:
            imp_head = "\x01H\x01IMPRESSION:\x01N\x01"
            lines = [ln.replace("FINDINGS:", "\x01H\x01FINDINGS:\x01N\x01") for ln in lines]
        if kind != KIND_PRELIM:
            u = fmt_ts(t)
            signed = f"{u[4:6]}/{u[6:8]}/{u[:4]} {u[8:10]}:{u[10:12]}"
            imp = [*imp, "", f"Electronically signed by {giv} {fam}, MD on {signed}"]
        exam_s = fmt_ts(c["exam_start"][j], style, salt)
        exam_e = fmt_ts(c["exam_end"][j], style, salt)
        rts = fmt_ts(t, style, salt)
        acc = "" if bad == 2 else st.acc
        svc = f"{proc.code}^{proc.name}^L"
        segs = [self.msh(site.ris, site.code, ts, "ORU^R01^ORU_R01", ctrl, site.ris == "SYNRIS"),
                st.pid, st.pv1]  # fmt: skip
        if site.ris == "RADIS":
            obr32 = f"{rid}&{fam}&{giv}"
            if kind == KIND_FINAL:
                rs, re_ = c["read_start"][j], c["read_end"][j]
                obr32 += f"^{fmt_ts(rs, style, salt)}^{fmt_ts(re_, style, salt)}"
            segs.append(f"ORC|RE|{st.placer}|{st.filler}||CM")
            segs.append(
                f"OBR|1|{st.placer}|{st.filler}|{svc}|||{exam_s}|{exam_e}||||||||"
                f"{self.ordering(j)}||{acc}||||{rts}||{proc.modality}|{status}|||||||{obr32}"
            )
            tail = f"||||||{status}"
            segs += [
                f"OBX|{n}|TX|{LOINC_FINDINGS}|1|{_esc_text(ln)}{tail}"
                for n, ln in enumerate(lines, 1)
            ]
            n = len(lines)
            segs += [
                f"OBX|{n}|TX|{LOINC_IMPRESSION}|2|{_esc_text(ln)}{tail}"
                for n, ln in enumerate([imp_head, *imp], n + 1)
            ]
            n += len(imp) + 1
            if c["coded"][j] and label >= 0:
                n += 1
                segs.append(f"OBX|{n}|CWE|{CODED[c['model'][j]]}||{YNU[label]}||||||{status}")
            return segs
        segs.append(f"ORC|RE||{acc}||CM")
        segs.append(
            f"OBR|1||{acc}|{svc}|||{exam_s}|{exam_e}||||||||{self.ordering(j)}"
            f"||||||{rts}||{proc.modality}|{status}|||||||{rid}&{fam}&{giv}"
        )
        all_lines = [*lines, imp_head, *imp]
        if site.code == "WIC":  # TX line by line
            segs += [
                f"OBX|{n}|TX|REPORT^Radiology report^SYNRIS||{_esc_text(ln)}||||||{status}"
                for n, ln in enumerate(all_lines, 1)
            ]
        else:  # one FT with \.br\ line breaks
            text = "\\.br\\".join(_esc_text(ln) for ln in all_lines)
            segs.append(f"OBX|1|FT|REPORT^Radiology report^SYNRIS||{text}||||||{status}")
        return segs


def _esc_text(line: str) -> str:
    """Escape report text; \\x01 marks formatting escapes (\\H\\ \\N\\) added on purpose."""
    out = _ESCAPED.get(line)
    if out is None:
        if len(_ESCAPED) > 500_000:
            _ESCAPED.clear()
        out = _ESCAPED[line] = escape(line).replace("\x01", "\\")
    return out


def garble(raw: bytes, salt: int) -> bytes:
    """Garbage bytes in the middle of a message: invalid UTF-8 and a NUL."""
    cut = len(raw) // 2 + salt % 17
    return raw[:cut] + b"\xff\xfe\x00\x9c\xc3" + raw[cut:]


def truncate_msh(segs: list[str], salt: int) -> list[str]:
    """An MSH cut before its message type and control id."""
    msh = segs[0]
    cut = msh.index("|", 14) + 1 + salt % 5
    return [msh[:cut], *segs[1:]]


def local_lists(cols: dict[str, np.ndarray], idx: np.ndarray, keys: tuple[str, ...]) -> dict:
    return {k: cols[k][idx].tolist() for k in keys}

"""Messages written from the feed contract (docs/simulated-feeds.md), with what each should map to.

Independent of the mapper: it writes HL7 the way the contract says the simulator's senders do, and
records the truth (accession, label, score...) as it writes, so tests compare the pipeline's
output with values the pipeline never produced. Report wording comes from the simulator's own
phrase bank (vigil.simulate.reports_text) when present, so the labeller is measured on the texts
it will meet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SITES = {"RADIS": ("NGH", "SCH"), "SYNRIS": ("EMC", "WIC")}
AI = {"NEUROVUE": ("CTHEAD", "ich"), "LUNGSIGHT": ("CTCHEST", "lung_nodule")}
PROCS = {"CTHEAD": "CT head without contrast", "CTCHEST": "CT chest"}
FAMILY = ("Smith", "García", "Müller", "O'Brien", "Nguyen", "Kowalski", "Dupont")
GIVEN = ("Ann", "José", "Zoë", "Li", "Omar", "Eva", "Björn")
RACES = ("2106-3^White^CDCREC", "2054-5^Black or African American^CDCREC", "2028-9^Asian^CDCREC")
ETHN = ("2186-5^Not Hispanic or Latino^CDCREC", "2135-2^Hispanic or Latino^CDCREC")


@dataclass
class Sample:
    raw: bytes
    sender: str
    site: str
    mtype: str
    control_id: str
    expect: dict[str, Any] = field(default_factory=dict)


def _esc(text: str) -> str:
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def _ts(rng: random.Random, dt: datetime, messy: bool) -> str:
    if messy and rng.random() < 0.3:
        off = rng.choice((60, -300, 120))
        local = dt + timedelta(minutes=off)
        sign = "+" if off >= 0 else "-"
        return local.strftime("%Y%m%d%H%M%S") + f"{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}"
    if messy and rng.random() < 0.3:
        return dt.strftime("%Y%m%d%H%M%S") + f".{dt.microsecond // 1000:03d}"
    return dt.strftime("%Y%m%d%H%M%S")


def _report_lines(rng: random.Random, proc: str, label: str) -> list[str]:
    try:
        from vigil.simulate.reports_text import report_sections
    except ImportError:  # the simulator is not there: a tiny phrase bank of our own
        word = "intracranial hemorrhage" if proc == "CTHEAD" else "pulmonary nodule"
        body = [
            "FINDINGS:",
            {
                "positive": f"There is an acute {word}.",
                "negative": f"No evidence of {word}.",
                "uncertain": f"A small {word} cannot be excluded.",
            }[label],
        ]
        return [*body, "IMPRESSION:", body[1]]
    code = {"negative": 0, "positive": 1, "uncertain": 2}[label]
    body, imp = report_sections(
        0 if proc == "CTHEAD" else 1,
        code,
        rng.getrandbits(31),
        "Headache" if proc == "CTHEAD" else "Cough",
        rng.random() < 0.2,
    )
    return [*body, "IMPRESSION:", *imp]


def generate(n: int, seed: int = 7, mess: float = 0.2) -> list[Sample]:
    """``n`` messages across the four senders and their message types."""
    rng = random.Random(seed)
    out: list[Sample] = []
    t = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for i in range(n):
        t += timedelta(seconds=rng.randint(5, 120))
        sender = rng.choice(("RADIS", "RADIS", "SYNRIS", "SYNRIS", "NEUROVUE", "LUNGSIGHT"))
        messy = rng.random() < mess
        site = rng.choice(SITES.get(sender, ("NGH", "SCH", "EMC", "WIC")))
        ctrl = f"{sender[:3]}{i:08d}"
        mrn = str(100000 + rng.randint(0, 5000))
        birth = datetime(1930 + rng.randint(0, 80), rng.randint(1, 12), rng.randint(1, 28))
        sex = rng.choice("FMU")
        pclass = rng.choice("IOE")
        acc = f"{site}{rng.randint(10**7, 10**8 - 1)}"
        uid = f"1.2.826.0.1.3680043.10.{rng.randint(1, 10**9)}"
        exam = t - timedelta(minutes=rng.randint(10, 600))
        charset = "UNICODE UTF-8" if rng.random() < 0.5 else ""
        race, eth = rng.choice(RACES), rng.choice(ETHN)
        fam, giv = rng.choice(FAMILY), rng.choice(GIVEN)
        if sender in AI:
            kinds = ["ORU^R01"]
        elif sender == "RADIS":
            kinds = ["ADT^A04", "ADT^A08", "ADT^A01", "ORM^O01", "ORU^R01", "ORU^R01"]
        else:
            kinds = ["ADT^A04", "ADT^A08", "OMI^O23", "ORU^R01", "ORU^R01"]
        mtype = rng.choice(kinds)
        msh7 = "" if messy and rng.random() < 0.2 else _ts(rng, t, messy)
        msh = (
            f"MSH|^~\\&|{sender}|{site}|VIGIL|CoE|{msh7}||{mtype}^{mtype.replace('^', '_')}|"
            f"{ctrl}|P|2.5|||AL|NE||{charset}"
        )
        pid = (
            f"PID|1||{mrn}^^^{site}^MR||{_esc(fam)}^{_esc(giv)}||{birth:%Y%m%d}|{sex}||{race}"
            f"||||||||||||{eth}"
        )
        pv1 = f"PV1|1|{pclass}"
        expect: dict[str, Any] = {
            "mrn": mrn,
            "authority": site,
            "sex": sex,
            "race": race.split("^")[1],
            "ethnicity": eth.split("^")[1],
            "patient_class": {"I": "inpatient", "O": "outpatient", "E": "emergency"}[pclass],
        }
        segs = [msh]
        if mtype.startswith("ADT"):
            segs += [f"EVN|{mtype[4:]}|{_ts(rng, t, messy)}", pid, pv1]
            expect.update(kind="patient", age=_age(birth, t))
        elif sender in AI:
            proc, finding = AI[sender]
            score = round(rng.random(), 4)
            call = score >= 0.5
            version = rng.choice(("3.1.2", "2.3.1", "2.4.0"))
            fill = f"F{rng.randint(10**6, 10**7)}"
            expect.update(
                kind="ai",
                accession=acc,
                score=score,
                call=call,
                version=version,
                finding=finding,
                study_uid=uid,
                age=_age(birth, exam),
            )
            segs += [pid, pv1]
            if sender == "NEUROVUE":
                segs += [
                    f"OBR|1|P{i}|{acc}^NEUROVUE|{proc}^{PROCS[proc]}^L|||{_ts(rng, exam, messy)}"
                    "||||||||||||||||CT|F",
                    f"OBX|1|NM|ICH_SCORE^ICH probability^NVU||{score}||||||F|||||||"
                    f"NeuroVue^{version}",
                    f"OBX|2|ST|ICH_FLAG^ICH suspected^NVU||{'POSITIVE' if call else 'NEGATIVE'}||"
                    f"|{'A' if call else 'N'}|||F|||||||NeuroVue^{version}",
                    f"OBX|3|ST|113014^DICOM Study^DCM||{uid}||||||F",
                    "OBX|4|ST|00080070^Manufacturer^DCM||SIEMENS||||||F",
                    "OBX|5|ST|00081090^Manufacturer Model Name^DCM||SOMATOM Force||||||F",
                ]
                expect.update(scanner=("SIEMENS", "SOMATOM Force"))
            else:
                segs.insert(1, f"SFT|LungSight Inc|{version}|LungSight|{version}")
                segs += [
                    "ZSC|GE MEDICAL SYSTEMS|Revolution CT|120|1.25",
                    f"ORC|RE|P{i}|{acc}",
                    f"OBR|1|P{i}|{fill}|{proc}^{PROCS[proc]}^L|||{_ts(rng, exam, messy)}"
                    "||||||||||||||||CT|F",
                    "OBX|1|CWE|NODULE^Pulmonary nodule^LSA||"
                    f"{'DETECTED' if call else 'NOT_DETECTED'}"
                    f"||||{score}||F",
                    f"OBX|2|ST|113014^DICOM Study^DCM||{uid}||||||F",
                ]
                expect.update(scanner=("GE MEDICAL SYSTEMS", "Revolution CT"))
        else:
            proc = rng.choice(("CTHEAD", "CTCHEST"))
            finding = "ich" if proc == "CTHEAD" else "lung_nodule"
            fill = f"F{rng.randint(10**6, 10**7)}"
            obr_acc = acc if sender == "RADIS" else ""
            obr3 = fill if sender == "RADIS" else acc
            order_t = exam - timedelta(minutes=rng.randint(5, 300))
            expect.update(accession=acc, finding=finding, procedure=proc)
            if mtype in ("ORM^O01", "OMI^O23"):
                segs += [pid, pv1, f"ORC|NW|P{i}|{fill}||SC||||{_ts(rng, order_t, messy)}"]
                segs.append(
                    f"OBR|1|P{i}|{obr3}|{proc}^{PROCS[proc]}^L|||{_ts(rng, exam, messy)}"
                    f"|||||||||||{obr_acc}||||||CT"
                )
                if sender == "RADIS":
                    segs.append(f"ZDS|{uid}^RADIS^Application^DICOM")
                else:
                    segs.append(f"IPC|{acc}|RP{i}|{uid}|SPS{i}|CT")
                expect.update(kind="order", study_uid=uid, age=_age(birth, exam))
            else:
                label = rng.choices(("negative", "positive", "uncertain"), (0.7, 0.2, 0.1))[0]
                status = rng.choice("PFFFFC")
                lines = _report_lines(rng, proc, label)
                addendum = status == "C" and rng.random() < 0.5
                if addendum:
                    lines = [*lines, "ADDENDUM: Findings discussed with the referring clinician."]
                rad = f"R{rng.randint(100, 999)}"
                rep_t = exam + timedelta(minutes=rng.randint(20, 300))
                if sender == "RADIS":
                    obr32 = (
                        f"{rad}&{_esc(fam)}&{_esc(giv)}^"
                        f"{_ts(rng, rep_t - timedelta(minutes=9), messy)}"
                        f"^{_ts(rng, rep_t, messy)}"
                    )
                else:
                    obr32 = f"&{_esc(fam)}&{_esc(giv)}"
                segs += [
                    pid,
                    pv1,
                    f"ORC|RE|P{i}|{fill}",
                    f"OBR|1|P{i}|{obr3}|{proc}^{PROCS[proc]}^L|||{_ts(rng, exam, messy)}"
                    f"|||||||||||{obr_acc}||||{_ts(rng, rep_t, messy)}||CT|{status}"
                    f"|||||||{obr32}",
                ]
                coded = sender == "RADIS" and rng.random() < 0.4
                n_obx = 0
                if sender == "SYNRIS" and rng.random() < 0.5:
                    text = "\\.br\\".join(_esc(x) for x in lines)
                    segs.append(f"OBX|1|FT|REPORT^Report^L||{text}||||||{status}")
                    n_obx = 1
                else:
                    for line in lines:
                        n_obx += 1
                        segs.append(f"OBX|{n_obx}|TX|REPORT^Report^L||{_esc(line)}||||||{status}")
                if coded:
                    code = (
                        "ICH^Intracranial hemorrhage^RADLEX-L"
                        if finding == "ich"
                        else "NODULE^Pulmonary nodule^RADLEX-L"
                    )
                    yn = {"positive": "Y", "negative": "N", "uncertain": "U"}[label]
                    segs.append(f"OBX|{n_obx + 1}|CWE|{code}||{yn}||||||{status}")
                expect.update(
                    kind="read",
                    label=label,
                    source="coded" if coded else "text",
                    status="A" if addendum else status,
                    age=_age(birth, exam),
                    text=lines,
                )
        if messy and rng.random() < 0.5:
            segs.insert(rng.randint(2, len(segs)), "ZXX|extra|segment^with^components")
        sep = "\r"
        if messy:
            sep = rng.choice(("\r\n", "\n", "\r"))
        raw = sep.join(segs) + sep
        data = raw.encode("utf-8")
        if messy and rng.random() < 0.2:
            data = b"\xef\xbb\xbf" + data
        out.append(Sample(data, sender, site, mtype, ctrl, expect))
    return out


def _age(birth: datetime, at: datetime) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))

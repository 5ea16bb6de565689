"""Every real sample in ../shared/hl7-samples: the events it must become, or why it is refused.

The expected values below were written by reading each sample (see the comments), not by running
the pipeline. Pseudonyms are computed here with hmac directly from the documented formula
HMAC-SHA256(secret, "<authority>|<MRN>").
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.errors import MessageRejected
from connectors.events import OrderEvent, PatientMerge, PatientUpdate
from connectors.framing import split_messages
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

SECRET = "golden-test-secret"


def pseudo(authority: str, mrn: str) -> str:
    return hmac.new(SECRET.encode(), f"{authority}|{mrn}".encode(), hashlib.sha256).hexdigest()


def test_patient_pseudonym_helper_is_the_documented_hmac() -> None:
    from connectors.phi import patient_pseudonym

    assert patient_pseudonym(SECRET, "NGH", "1089963") == pseudo("NGH", "1089963")
    assert patient_pseudonym(SECRET.encode(), "EMC", "77") == pseudo("EMC", "77")


# file -> ("mapped", [event summaries]) | ("ignored", None) | ("rejected", reason_code)
GOLDEN: dict[str, tuple[str, object]] = {
    # PID-3 PID_1^^^ADT1, PID-8 F, born 20141014, MSH-7 20220324 -> 7 years
    "dcm4che_ADT_A31-UpdatePersonInfo-Veterinary.hl7": (
        "mapped",
        [("update", pseudo("ADT1", "PID_1"), "F", 7)],
    ),
    "dcm4che_ADT_A31-UpdatePersonInfo.hl7": (
        "mapped",
        [("update", pseudo("ADT1", "PID_1"), "F", 7)],
    ),
    # MRG-1 OLD_PID_1^^^ADT1 merged into PID-3 NEW_PID_1^^^ADT1
    "dcm4che_ADT_A40-PatientMerge.hl7": (
        "mapped",
        [
            ("merge", pseudo("ADT1", "NEW_PID_1"), pseudo("ADT1", "OLD_PID_1")),
            ("update", pseudo("ADT1", "NEW_PID_1"), "F", 7),
        ],
    ),
    "dcm4che_ADT_A47-ChangePatientID.hl7": (
        "mapped",
        [
            ("merge", pseudo("ADT1", "NEW_PID_1"), pseudo("ADT1", "OLD_PID_1")),
            ("update", pseudo("ADT1", "NEW_PID_1"), "F", 7),
        ],
    ),
    "dcm4che_OMG_O19-GeneralClinicalOrder-Eyecare.hl7": ("ignored", None),
    # IPC-1 AccessionNumber, IPC-3 Study UID, IPC-5 CT, PV1-2 E
    "dcm4che_OMI_O23-ImagingOrder.hl7": (
        "mapped",
        [
            (
                "order",
                "XYZ_RADIOLOGY",
                "AccessionNumber",
                "1.2.392.200036.9125.0.198811291108.7",
                "CT",
                "10637-7",
                "emergency",
                pseudo("ADT1", "PID_1"),
                None,
            )
        ],
    ),
    # MSH-9 says OMI^O23 but there is no IPC: OBR-18 AccessionNumber, ZDS-1 Study UID
    "dcm4che_ORM_O01-GeneralOrder.hl7": (
        "mapped",
        [
            (
                "order",
                "XYZ_RADIOLOGY",
                "AccessionNumber",
                "1.2.392.200036.9125.0.198811291108.7",
                "CT",
                "10637-7",
                "emergency",
                pseudo("ADT1", "PID_1"),
                None,
            )
        ],
    ),
    # the report is a CDA document / a base64 PDF in OBX ED: no text Vigil can label
    "dcm4che_ORU_R01-CDA.hl7": ("rejected", "unreadable_report"),
    "dcm4che_ORU_R01-PDF.hl7": ("rejected", "unreadable_report"),
    # PID-3 583295^^^ADT1; born 2014 after the EVN-2 date (2000): no age
    "dcm4che_old_ADT_A08.hl7": ("mapped", [("update", pseudo("ADT1", "583295"), "F", None)]),
    # IPC-1 ACC; ORC-9 200008161510; procedure only in OBR-44 24725-4^Head CT
    "dcm4che_old_OMI_O23.hl7": (
        "mapped",
        [
            (
                "order",
                "XYZ_RADIOLOGY",
                "ACC",
                "1.2.392.200036.9125.0.199402091242.1",
                "CT",
                "24725-4",
                "emergency",
                pseudo("zxcv", "4711471151"),
                datetime(2000, 8, 16, 15, 10, tzinfo=UTC),
            )
        ],
    ),
    # v2.3.1 ORM: OBR-18 MOF5026, ZDS-1 1.113654.3.13.1026, OBR-24 MR, ORC-9 200007010900
    "dcm4che_old_ORM_O01.hl7": (
        "mapped",
        [
            (
                "order",
                "XYZ_RADIOLOGY",
                "MOF5026",
                "1.113654.3.13.1026",
                "MR",
                "P1",
                "emergency",
                pseudo("ADT1", "583295"),
                datetime(2000, 7, 1, 9, 0, tzinfo=UTC),
            )
        ],
    ),
    # PID-3 rep with type MR: PATID1234, authority test1; born 19880818, EVN-2 20290801 -> 40
    "fhirconv_ADT-A08-01.hl7": ("mapped", [("update", pseudo("test1", "PATID1234"), "M", 40)]),
    "fhirconv_ADT-A08-02.hl7": ("mapped", [("update", pseudo("test1", "PATID1234"), "M", 40)]),
    # BOM; PID-3 10006579^^^1^MR; born 19241010, EVN-2 20050110 -> 80
    "fhirconv_ADT01-23.hl7": ("mapped", [("update", pseudo("1", "10006579"), "M", 80)]),
    # PID-3 has no assigning authority: the sending facility RDX stands in; 19780101 -> 41
    "fhirconv_ADT04-251.hl7": ("mapped", [("update", pseudo("RDX", "MRN12345"), "F", 41)]),
    # named MDM but MSH-9 is ADT^A01
    "fhirconv_MDM_01.hl7": ("mapped", [("update", pseudo("test1", "PATID1234"), "M", 40)]),
    "fhirconv_OMG-O19-01.hl7": ("ignored", None),
    # no OBR-18, no IPC: the filler order number ORC-3 1201 is the accession; ORC-9 +0215
    "fhirconv_ORM-O01-01.hl7": (
        "mapped",
        [
            (
                "order",
                "GHHSFacility",
                "1201",
                None,
                None,
                "24725-4",
                "outpatient",
                pseudo("test1", "PATID1234"),
                datetime(2021, 10, 20, 9, 11, tzinfo=UTC),
            )
        ],
    ),
    # laboratory results (culture, glucose): no report text, no coded finding
    "fhirconv_ORU-R01-01.hl7": ("ignored", None),
    "fhirconv_ORU-R01-RMGEAD.hl7": ("ignored", None),
    "fhirconv_SIU-S12-01.hl7": ("ignored", None),
    "hl7apy_invalid_rsp_k21.hl7": ("ignored", None),
    "hl7apy_msg_o33.hl7": ("ignored", None),
    "hl7apy_rsp_k21.hl7": ("ignored", None),
    "hl7apy_rsp_k21_27.hl7": ("ignored", None),
    # ORU^R01 with a PID only: no OBR, so no report
    "pythonhl7_rep_sample_hl7.hl7": ("rejected", "missing_segment"),
    # BHS followed by EVN/PID: no MSH at all
    "pythonhl7_sample_bad_batch.hl7": ("rejected", "no_msh"),
    # FHS/BHS batch with one ADT^A04; PID-8 '1' is no sex code, PID-7 10131113 no date
    "pythonhl7_sample_file.hl7": ("mapped", [("update", pseudo("100", "0000112234"), None, None)]),
    "pythonhl7_sample_hl7.hl7": ("ignored", None),
    # Cerner ADT^A01: PID-3 2148790^^^MSH_MRN^MR; born 19521129, MSH-7 20131017 -> 60
    "pythonhl7_sample_msh.hl7": ("mapped", [("update", pseudo("MSH_MRN", "2148790"), "F", 60)]),
}


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(load_settings(demo=True, pseudonym_secret=SECRET))


def test_every_sample_has_a_golden_entry(samples_dir: Path) -> None:
    assert sorted(p.name for p in samples_dir.glob("*.hl7")) == sorted(GOLDEN)
    assert len(GOLDEN) == 31


def _summary(ev: object) -> tuple:
    if isinstance(ev, PatientMerge):
        return ("merge", ev.surviving, ev.prior)
    if isinstance(ev, PatientUpdate):
        p = ev.patient
        return ("update", p.pseudonym, p.sex, p.age_at_study)
    assert isinstance(ev, OrderEvent)
    s = ev.study
    return (
        "order",
        s.site_code,
        s.accession,
        s.study_uid,
        s.modality,
        s.procedure_code,
        s.patient_class,
        ev.patient.pseudonym,
        s.ordered_at,
    )


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_sample(name: str, samples_dir: Path, pipeline: Pipeline) -> None:
    data = (samples_dir / name).read_bytes()
    messages = list(split_messages(data))
    assert len(messages) == 1, "each sample file holds one message (or one broken chunk)"
    outcome, expected = GOLDEN[name]
    if outcome == "rejected":
        with pytest.raises(MessageRejected) as info:
            pipeline.handle(messages[0])
        exc = info.value
        assert exc.reason_code == expected
        assert len(exc.reason) > 40 and ":" in exc.reason  # says what and what to do
        for phi in ("Smith", "Lucy", "EVERYWOMAN", "XXXXXXXXXX", "PID_1", "555-44-4444"):
            assert phi not in exc.reason
        return
    result = pipeline.handle(messages[0])
    assert result.outcome == outcome
    if outcome == "ignored":
        assert result.events == [] and result.note
        return
    got = [_summary(e) for e in result.events]
    exp = list(expected)  # type: ignore[arg-type]
    for g, e in zip(got, exp, strict=True):
        if g[0] == "order" and e[-1] is None:
            g = (*g[:-1], None)
        assert g == e


def test_batch_file_envelope_is_removed(samples_dir: Path, pipeline: Pipeline) -> None:
    (msg,) = split_messages((samples_dir / "pythonhl7_sample_file.hl7").read_bytes())
    assert msg.startswith(b"MSH|") and b"BHS" not in msg and b"FTS" not in msg
    assert pipeline.header(msg).control_id == "12334456778890"
    assert pipeline.header(msg).charset == "ASCII"


def test_empty_msh7_and_header_fields(samples_dir: Path, pipeline: Pipeline) -> None:
    h = pipeline.header((samples_dir / "dcm4che_old_ORM_O01.hl7").read_bytes())
    assert (h.sender, h.control_id, h.message_type, h.version, h.timestamp) == (
        "MESA_OF^XYZ_RADIOLOGY",
        "103106",
        "ORM^O01",
        "2.3.1",
        "",
    )
    h = pipeline.header((samples_dir / "hl7apy_rsp_k21_27.hl7").read_bytes())
    assert h.encoding == "^~\\&#" and h.message_type == "RSP^K22" and h.structure == "RSP_K21"


def test_declared_latin1_is_decoded_as_latin1(samples_dir: Path, pipeline: Pipeline) -> None:
    # the dcm4che OMI declares 8859/1 and holds the UTF-8 bytes of an en dash (e2 80 93): read
    # as declared, each byte is one Latin-1 character; nothing fails
    from connectors.parse import decode_message

    msg = decode_message((samples_dir / "dcm4che_OMI_O23-ImagingOrder.hl7").read_bytes())
    obr = msg.first("OBR")
    assert obr is not None and "\u00e2\u0080\u0093" in msg.value(obr, 31, 2)

"""The shipped sender profiles on messages written from the feed contract (docs/simulated-feeds.md).

Each generated message carries the values it was written with; the pipeline's events must hold
exactly those (pseudonyms recomputed here with hmac from the documented formula).
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path

import pytest

from connectors.errors import MessageRejected
from connectors.events import AIResultEvent, OrderEvent, PatientUpdate
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent))
from connectors_feedgen import generate

SECRET = "feed-test-secret"
PIPE = Pipeline(load_settings(demo=True, pseudonym_secret=SECRET))


def pseudo(authority: str, mrn: str) -> str:
    return hmac.new(SECRET.encode(), f"{authority}|{mrn}".encode(), hashlib.sha256).hexdigest()


SAMPLES = generate(1200, seed=42, mess=0.3)


def test_every_contract_message_maps_with_its_sender_profile() -> None:
    kinds = set()
    for s in SAMPLES:
        res = PIPE.handle(s.raw)
        assert res.outcome == "mapped" and res.events, s.control_id
        assert res.profile == s.sender.lower()
        assert res.control_id == s.control_id and res.sender == f"{s.sender}^{s.site}"
        e = s.expect
        kinds.add(e["kind"])
        ev = res.events[0]
        patient = ev.patient
        assert patient.pseudonym == pseudo(e["authority"], e["mrn"])
        assert patient.sex == e["sex"] and patient.age_at_study == e["age"]
        assert patient.race == e["race"] and patient.ethnicity == e["ethnicity"]
        if e["kind"] == "patient":
            assert isinstance(ev, PatientUpdate)
            continue
        study = ev.study
        assert study.site_code == s.site and study.accession == e["accession"]
        assert study.patient_class == e["patient_class"]
        assert study.exam_started_at is not None and study.exam_started_at.utcoffset() is not None
        if e["kind"] == "order":
            assert isinstance(ev, OrderEvent) and study.study_uid == e["study_uid"]
            assert study.procedure_code == e["procedure"] and study.ordered_at is not None
        elif e["kind"] == "ai":
            assert isinstance(ev, AIResultEvent)
            assert (ev.score, ev.call, ev.model_version, ev.finding) == (
                e["score"],
                e["call"],
                e["version"],
                e["finding"],
            )
            assert study.study_uid == e["study_uid"]
            assert (study.scanner_manufacturer, study.scanner_model) == e["scanner"]
    assert kinds == {"patient", "order", "ai", "read"}


def _neurovue(
    score: str = "0.87",
    flag: str = "POSITIVE",
    acc: str = "NGH123",
    version: str = "NeuroVue^3.1.2",
    obr7: str = "20260301101500",
) -> bytes:
    return (
        "MSH|^~\\&|NEUROVUE|NGH|VIGIL|CoE|20260301103000||ORU^R01^ORU_R01|NV1|P|2.5\r"
        "PID|1||555^^^NGH^MR||Doe^Jane||19500101|F\rPV1|1|E\r"
        f"OBR|1|P1|{acc}^NEUROVUE|CTHEAD^CT head^L|||{obr7}||||||||||||||||CT|F\r"
        f"OBX|1|NM|ICH_SCORE^ICH probability^NVU||{score}||||||F|||||||{version}\r"
        f"OBX|2|ST|ICH_FLAG^ICH suspected^NVU||{flag}||||||F|||||||{version}\r"
    ).encode()


def test_ai_result_fields() -> None:
    (ev,) = PIPE.handle(_neurovue()).events
    assert isinstance(ev, AIResultEvent)
    assert (ev.model_name, ev.score, ev.call, ev.model_version) == (
        "neurovue-ich",
        0.87,
        True,
        "3.1.2",
    )
    assert ev.study.patient_class == "emergency" and ev.patient.age_at_study == 76


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"score": "high"}, "bad_score"),
        ({"score": "1.7"}, "bad_score"),
        ({"flag": "MAYBE"}, "bad_call"),
        ({"acc": ""}, "missing_accession"),
        ({"version": ""}, "missing_version"),
        ({"obr7": "2026-13-45"}, "bad_timestamp"),
    ],
)
def test_ai_result_rejections(kwargs: dict[str, str], code: str) -> None:
    with pytest.raises(MessageRejected) as info:
        PIPE.handle(_neurovue(**kwargs))
    exc = info.value
    assert exc.reason_code == code
    assert (exc.sender, exc.control_id, exc.message_type) == ("NEUROVUE^NGH", "NV1", "ORU^R01")
    assert "Doe" not in exc.reason and "Jane" not in exc.reason


def test_a_second_order_group_never_answers_for_the_first() -> None:
    raw = (
        b"MSH|^~\\&|LUNGSIGHT|WIC|VIGIL|CoE|20260301103000||ORU^R01|LS9|P|2.5\r"
        b"SFT|LungSight Inc|2.4.0|LungSight\rPID|1||9^^^WIC^MR\r"
        b"ORC|RE|P1|ACC1\rOBR|1|P1|F1|CTCHEST^CT chest^L|||20260301100000\r"
        b"OBX|1|CWE|NODULE^Pulmonary nodule^LSA||DETECTED||||0.91||F\r"
        b"ORC|RE|P2|ACC2\rOBR|2|P2|F2|CTCHEST^CT chest^L|||20260301100500\r"
        b"ZXX|unknown segment between groups\r"
        b"OBX|1|CWE|NODULE^Pulmonary nodule^LSA||NOT_DETECTED||||0.12||F\r"
    )
    events = PIPE.handle(raw).events
    assert [(e.study.accession, e.call, e.score) for e in events] == [
        ("ACC1", True, 0.91),
        ("ACC2", False, 0.12),
    ]


def test_site_timezone_from_profile(tmp_path: Path) -> None:
    from connectors.profile import SHIPPED_DIR, load_profiles

    text = (
        (SHIPPED_DIR / "neurovue.toml")
        .read_text()
        .replace(
            '[site]\ncode = "MSH-4.1"', '[site]\ncode = "MSH-4.1"\ntimezone = "America/New_York"'
        )
    )
    (tmp_path / "neurovue.toml").write_text(text)
    pipe = Pipeline(load_settings(demo=True), profiles=load_profiles(tmp_path))
    (ev,) = pipe.handle(_neurovue()).events
    assert ev.study.exam_started_at.isoformat() == "2026-03-01T15:15:00+00:00"
    (ev,) = pipe.handle(_neurovue(obr7="20260301101500+0100")).events
    assert ev.study.exam_started_at.isoformat() == "2026-03-01T09:15:00+00:00"

"""Profiles: the shipped ones load, bad ones fail with file/key/fix, selection, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.errors import MessageRejected, ProfileError
from connectors.pipeline import Pipeline
from connectors.profile import SCHEMA, SHIPPED_DIR, load_profile, load_profiles, select_profile
from vigil.cli.app import app
from vigil.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
GOOD = """
name = "acme"
[match]
sending_application = ["ACME"]
[study]
accession = "OBR-3.1"
"""


def test_shipped_profiles() -> None:
    profiles = {p.name: p for p in load_profiles()}
    assert set(profiles) == {"generic-ris", "radis", "synris", "neurovue", "lungsight"}
    assert [p.name for p in profiles.values() if p.fallback] == ["generic-ris"]
    assert profiles["neurovue"].models[0].name == "neurovue-ich"
    assert profiles["lungsight"].models[0].finding == "lung_nodule"
    assert str(profiles["lungsight"].models[0].score[0]) == "OBX(NODULE)-9"


def test_selection_by_application_then_facility(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text(GOOD)
    (tmp_path / "acme-ngh.toml").write_text(
        GOOD.replace('"acme"', '"acme-ngh"').replace(
            '["ACME"]', '["ACME"]\nsending_facility = ["NGH"]'
        )
    )
    profiles = load_profiles(tmp_path)
    assert select_profile(profiles, "ACME", "NGH").name == "acme-ngh"
    assert select_profile(profiles, "ACME", "SCH").name == "acme"
    assert select_profile(profiles, "RADIS", "NGH").name == "radis"
    assert select_profile(profiles, "WHO", "X").name == "generic-ris"
    no_fallback = [p for p in profiles if not p.fallback]
    assert select_profile(no_fallback, "WHO", "X") is None


def test_unknown_sender_without_fallback() -> None:
    profiles = [p for p in load_profiles() if not p.fallback]
    pipe = Pipeline(load_settings(demo=True), profiles=profiles)
    raw = b"MSH|^~\\&|WHO|X|V|C|20260101||ADT^A04|1|P|2.5\rPID|1||9^^^X^MR\r"
    with pytest.raises(MessageRejected) as info:
        pipe.handle(raw)
    assert info.value.reason_code == "unknown_sender" and "'WHO'" in info.value.reason


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ('colour = "red"\n' + GOOD, "colour", "sections are"),
        (
            GOOD.replace('accession = "OBR-3.1"', 'acession = "OBR-3"'),
            "study.acession",
            "keys of [study]",
        ),
        (GOOD.replace('"OBR-3.1"', '"OBR3"'), "study.accession", "SEG-FIELD"),
        (GOOD.replace('"OBR-3.1"', "18"), "study.accession", "location"),
        (GOOD.replace('name = "acme"', ""), "name", "add name"),
        (GOOD + '[site]\ntimezone = "Mars/Olympus"\n', "site.timezone", "IANA"),
        (
            GOOD + "[ai]\n[[ai.models]]\nname = 'm'\nfinding = 'f'\nversion = 'SFT-2'\n",
            "ai.models[0]",
            "score",
        ),
        (
            GOOD + "[ai]\n[[ai.models]]\nname='m'\nfinding='f'\ncall='OBX(F)-5'\nversion='SFT-2'\n",
            "ai.models[0].call_map",
            "call_map",
        ),
        (
            GOOD + "[report]\n[[report.findings]]\nfinding='ich'\ncoded_map={Y='yes'}\n",
            "report.findings[0].coded_map",
            "positive",
        ),
        (
            GOOD + "[report]\n[[report.findings]]\nfinding='ich'\nprocedures=['(']\n",
            "report.findings[0].procedures",
            "escape",
        ),
        ("name = 'x'\n[match\n", "-", "syntax"),
        ('name = "x"\n', "match.sending_application", "fallback"),
    ],
)
def test_bad_profile_names_file_key_and_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert err.path == str(path) and err.key == key
    assert fix in str(err) and "Fix:" in str(err)


def test_readme_documents_every_profile_key() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section:connectors -->")[1].split("<!-- /section:connectors -->")[
        0
    ]
    for sec, keys in SCHEMA.items():
        for key in keys:
            full = f"{sec}.{key}" if sec else key
            assert re.search(rf"`{re.escape(full)}`", section), f"README lacks profile key {full}"


def test_cli_list_and_check(samples_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_DEMO", "1")
    runner = CliRunner()
    res = runner.invoke(app, ["profiles", "list"])
    assert res.exit_code == 0, res.output
    for name in ("generic-ris", "radis", "synris", "neurovue", "lungsight"):
        assert name in res.output
    res = runner.invoke(
        app,
        [
            "profiles",
            "check",
            "generic-ris",
            str(samples_dir / "dcm4che_old_ORM_O01.hl7"),
            str(samples_dir / "fhirconv_SIU-S12-01.hl7"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "accession=MOF5026" in res.output and "missing: age" in res.output
    assert "1 mapped, 1 ignored, 0 rejected" in res.output.replace("\n", " ")
    res = runner.invoke(
        app, ["profiles", "check", "radis", str(samples_dir / "dcm4che_old_ORM_O01.hl7")]
    )
    # the RADIS profile wants the accession in OBR-18, which this sample fills: mapped;
    # a PDF report is refused with its reason, and the exit status says so
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["profiles", "check", "generic-ris", str(samples_dir / "dcm4che_ORU_R01-PDF.hl7")]
    )
    assert res.exit_code == 1 and "unreadable_report" in res.output
    res = runner.invoke(
        app, ["profiles", "check", "nope", str(samples_dir / "dcm4che_ORU_R01-PDF.hl7")]
    )
    assert res.exit_code == 1 and "no profile named 'nope'" in res.output


def test_profiles_dir_adds_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "radis.toml").write_text(
        (SHIPPED_DIR / "radis.toml")
        .read_text()
        .replace('timezone = "UTC"', 'timezone = "Europe/London"')
    )
    by_name = {p.name: p for p in load_profiles(tmp_path)}
    assert by_name["radis"].get("site", "timezone") == "Europe/London"
    with pytest.raises(ProfileError):
        load_profiles(tmp_path / "missing")


def test_readme_lists_every_reason_code() -> None:
    from connectors.ack import ERROR_BY_REASON
    from connectors.errors import REASON_CODES

    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section:connectors -->")[1].split("<!-- /section:connectors -->")[
        0
    ]
    for code in REASON_CODES:
        assert f"`{code}`" in section, f"README lacks reason code {code}"
    assert set(ERROR_BY_REASON) <= set(REASON_CODES)

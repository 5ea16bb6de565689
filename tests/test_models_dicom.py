"""Rendered DICOM files: realistic headers, no PHI, HU round trip, the finding in the pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pydicom
import pytest
from models_fixtures import synthetic_truth
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from models.sources import CaseError, FolderSource, decode_hu
from models.truth import studies_from_truth, vendor_evidence
from vigil.simulate.dicom import (
    StudyImage,
    lesion_amplitude,
    quantise_like_dicom,
    render_hu,
    write_studies,
)


def _study(evidence: float, seed: int = 5, body: str = "HEAD") -> StudyImage:
    return StudyImage(
        study_uid="1.2.826.0.1.3680043.8.498.1",
        accession="NGH0000001",
        body_part=body,
        evidence=evidence,
        seed=seed,
        manufacturer="SIEMENS",
        scanner_model="SOMATOM Force",
        site="NGH",
        sex="F",
        age=67,
    )


def test_headers_and_no_phi(tmp_path: Path) -> None:
    df = synthetic_truth(3, "lungsight-nodule", seed=2)
    studies = studies_from_truth(df, "lungsight-nodule")
    paths = write_studies(studies, tmp_path)
    assert len(paths) == 3
    for path, row in zip(paths, df.itertuples(), strict=True):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.StudyInstanceUID == row.study_uid  # the UID the HL7 feed carries
        assert ds.AccessionNumber == row.accession
        assert ds.Modality == "CT"
        assert ds.Manufacturer == row.scanner_manufacturer
        assert ds.ManufacturerModelName == row.scanner_model
        assert float(ds.SliceThickness) > 0 and float(ds.KVP) == row.kvp
        assert len(ds.PixelSpacing) == 2 and float(ds.PixelSpacing[0]) > 0
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        assert ds.RescaleType == "HU" and ds.BodyPartExamined == "CHEST"
        assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientBirthDate == ""
        # pixel values come back as the rendered HU (12-bit quantisation, no other change)
        hu = decode_hu(path)
        expected = quantise_like_dicom(render_hu(studies[row.Index]))
        np.testing.assert_array_equal(hu, expected)


def test_finding_is_visible_and_follows_the_evidence() -> None:
    """The brightest brain pixel rises with the vendor's evidence; the image is the same
    otherwise (same seed: same anatomy, lesion place and noise)."""
    peaks = []
    for e in (-5.0, -1.0, 0.0, 2.0, 5.0):
        hu = render_hu(_study(e))
        brain = (hu > -100) & (hu < 400)
        peaks.append(hu[brain].max())
    assert all(b > a for a, b in itertools.pairwise(peaks))
    diff = render_hu(_study(5.0)) - render_hu(_study(-5.0))
    # the difference is exactly the lesion: its peak equals the declared amplitude
    assert diff.max() == pytest.approx(lesion_amplitude(5.0, "HEAD"), rel=0.05)
    assert (np.abs(diff) > 1).sum() < 0.05 * diff.size  # a focal lesion, not a global change


def test_evidence_is_the_vendor_logit_from_the_latents() -> None:
    df = synthetic_truth(200, seed=3)
    rows = df.rename(columns={"score_offset": "offset", "ai_score": "score"}).to_dict("records")
    ev = np.array([vendor_evidence(r) for r in rows])
    # independent check: the vendor's 4-decimal score is the logistic of the evidence
    ok = (df["ai_score"] > 0.001) & (df["ai_score"] < 0.999)
    np.testing.assert_allclose(1 / (1 + np.exp(-ev[ok])), df["ai_score"][ok], atol=6e-5)


def test_folder_source_index_and_missing(tmp_path: Path) -> None:
    df = synthetic_truth(2, seed=4)
    write_studies(studies_from_truth(df, "neurovue-ich"), tmp_path)
    (tmp_path / "notes.txt").write_text("not dicom")
    src = FolderSource(tmp_path)
    by_uid = src.read(df.study_uid[0], None)
    by_acc = src.read(None, df.accession[0])  # accession when the UID is not known
    np.testing.assert_array_equal(by_uid, by_acc)
    for uid, acc in (("1.2.3.4", "NOPE"), ("1.2.3.4", df.accession[1]), (None, "NOPE")):
        with pytest.raises(CaseError) as exc:  # a UID not there is missing, whatever the acc.
            src.read(uid, acc)
        assert exc.value.code == "study_missing"

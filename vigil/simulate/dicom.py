"""CT images of simulated studies, rendered on request and written as DICOM files.

Only the studies a re-scoring job samples are rendered (never the whole network). Each image is
drawn from the same latent variables that drove the score the simulated AI vendor sent, so that a
model can learn the vendor's behaviour from pixels:

* anatomy (head: skull, brain, ventricles; chest: body wall, two lungs) jittered by the study's
  integer seed, with tissue contrast scaled by the scanner contrast factor and pixel noise whose
  level depends on the scanner manufacturer;
* one lesion-like blob (haemorrhage in the brain, nodule in a lung) whose conspicuity in HU is a
  fixed linear function of the vendor's evidence — the logit the vendor's score came from. The
  simulator computes that evidence from the true finding, its visibility (subgroup effects), the
  scanner contrast factor and the vendor noise; high evidence is a bright, obvious lesion, very
  low evidence no lesion at all. A true negative with a high vendor noise draw shows a faint
  mimic (the vendor's false positive), a missed positive a faint lesion.

Headers are realistic (CT Image Storage, explicit VR little endian, manufacturer and model,
slice thickness, kVp, pixel spacing, rescale slope/intercept in HU, the Study Instance UID and
accession of the HL7 feed) and carry no PHI: no name, no ID, no birth date.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

IMAGE_SIZE = 64  # pixels per side of a rendered slice
EVIDENCE_CLIP = 5.0  # |logit| beyond this changes a score by < 0.007: drawn as the limit
# body part -> (HU of the blob per unit of evidence above -EVIDENCE_CLIP, field of view mm,
#               slice thickness mm, base pixel noise HU)
BODY = {
    "HEAD": (10.0, 220.0, 5.0, 2.5),
    "CHEST": (80.0, 360.0, 1.25, 15.0),
}


@dataclass(frozen=True, slots=True)
class StudyImage:
    """What the renderer needs to know about one study (no PHI)."""

    study_uid: str
    accession: str
    body_part: str  # HEAD / CHEST
    evidence: float  # the vendor's logit for this study's finding
    seed: int
    manufacturer: str = "SIMULATED"
    scanner_model: str = "CT"
    contrast_factor: float = 1.0
    site: str = ""
    sex: str = ""  # "F"/"M"/"O" or empty
    age: int | None = None
    exam_at: datetime | None = None
    kvp: float = 120.0
    slice_mm: float | None = None  # the scanner's reconstruction; default by body part


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def scanner_noise(manufacturer: str, body_part: str) -> float:
    """Pixel noise (HU, one sigma): a fixed property of the manufacturer's reconstruction."""
    base = BODY[body_part][3]
    return base * (0.8 + 0.2 * (_stable_int(manufacturer.upper()) % 4))


def lesion_amplitude(evidence: float, body_part: str) -> float:
    """HU added at the lesion centre for a vendor evidence (logit): linear, clipped."""
    e = min(max(float(evidence), -EVIDENCE_CLIP), EVIDENCE_CLIP)
    return BODY[body_part][0] * (e + EVIDENCE_CLIP)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def _texture(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth low-frequency texture in [-1, 1] (sum of a few random cosines)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    out = np.zeros((n, n), np.float32)
    for _ in range(4):
        fx, fy = rng.uniform(0.5, 3.0, 2)
        px, py = rng.uniform(0, 2 * math.pi, 2)
        out += np.cos(2 * math.pi * fx * xx + px) * np.cos(2 * math.pi * fy * yy + py)
    return out / 4.0


def render_hu(study: StudyImage, size: int = IMAGE_SIZE) -> np.ndarray:
    """The slice in Hounsfield units (float32, size x size). Deterministic for a study."""
    if study.body_part not in BODY:
        raise ValueError(f"body part {study.body_part!r}: use one of {sorted(BODY)}")
    rng = np.random.default_rng(np.uint64(study.seed & 0xFFFFFFFFFFFF))
    c = float(study.contrast_factor)
    lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(lin, lin, indexing="ij")
    img = np.full((size, size), -1000.0, np.float32)
    tex = _texture(rng, size)
    if study.body_part == "HEAD":
        a, b = 0.72 + rng.uniform(-0.04, 0.04), 0.86 + rng.uniform(-0.04, 0.04)
        img[_ellipse(x, y, 0, 0, a, b)] = 900.0  # skull
        brain = _ellipse(x, y, 0, 0, a - 0.07, b - 0.07)
        img[brain] = 32.0 + c * 5.0 * tex[brain]
        for side in (-1, 1):
            vent = _ellipse(x, y, side * 0.1, -0.05, 0.05, 0.18)
            img[vent] = 8.0
        # the lesion sits in the parenchyma, away from the skull and ventricles
        r, t = rng.uniform(0.45, 0.75), rng.uniform(0, 2 * math.pi)
        cx, cy = r * math.cos(t) * (a - 0.1), r * math.sin(t) * (b - 0.1)
    else:
        body = _ellipse(x, y, 0, 0, 0.92, 0.68)
        img[body] = 40.0 + c * 8.0 * tex[body]
        side = rng.choice([-1, 1])
        for s in (-1, 1):
            lung = _ellipse(x, y, s * 0.42, 0.0, 0.32, 0.5)
            img[lung] = -850.0 + c * 40.0 * tex[lung]
        r, t = rng.uniform(0.0, 0.5), rng.uniform(0, 2 * math.pi)
        cx, cy = side * 0.42 + r * 0.22 * math.cos(t), r * 0.4 * math.sin(t)
    sigma = rng.uniform(2.0, 2.8) / size * 2  # lesion size in normalised units
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    img += lesion_amplitude(study.evidence, study.body_part) * blob
    img += rng.normal(0.0, scanner_noise(study.manufacturer, study.body_part), img.shape)
    return np.clip(img, -1024.0, 3071.0).astype(np.float32)


def quantise_like_dicom(hu: np.ndarray) -> np.ndarray:
    """HU as a reader gets them back from the file: 12-bit stored values, intercept -1024."""
    return np.clip(np.round(hu + 1024.0), 0, 4095).astype(np.float32) - 1024.0


def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=list(parts)))


def to_dataset(study: StudyImage, size: int = IMAGE_SIZE):
    """A pydicom FileDataset (CT Image Storage, explicit VR little endian) for one study."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

    hu = render_hu(study, size)
    stored = np.round(hu + 1024.0).astype(np.uint16)
    series_uid = _uid(study.study_uid, "series")
    sop_uid = _uid(study.study_uid, "image", "1")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    when = study.exam_at or datetime(2025, 1, 1, tzinfo=UTC)
    when = when.astimezone(UTC)
    fov = BODY[study.body_part][1]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = _uid(study.study_uid, "frame")
    ds.AccessionNumber = study.accession[:16]
    ds.InstitutionName = study.site
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = "CT"
    ds.Manufacturer = study.manufacturer
    ds.ManufacturerModelName = study.scanner_model
    ds.BodyPartExamined = study.body_part
    ds.StudyDescription = "CT HEAD WO CONTRAST" if study.body_part == "HEAD" else "CT CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientName = ""  # no PHI: synthetic studies carry no identity at all
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = study.sex[:1].upper() if study.sex else ""
    if study.age is not None:
        ds.PatientAge = f"{min(max(int(study.age), 0), 999):03d}Y"
    ds.SliceThickness = study.slice_mm or BODY[study.body_part][2]
    ds.KVP = study.kvp
    ds.PixelSpacing = [round(fov / size, 4), round(fov / size, 4)]
    ds.ImagePositionPatient = [-fov / 2, -fov / 2, 0.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = 0.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40 if study.body_part == "HEAD" else -600
    ds.WindowWidth = 80 if study.body_part == "HEAD" else 1500
    ds.PixelData = np.clip(stored, 0, 4095).astype("<u2").tobytes()
    return ds


def write_studies(
    studies: Iterable[StudyImage], out_dir: Path, size: int = IMAGE_SIZE
) -> list[Path]:
    """Write one DICOM file per study under ``out_dir/<StudyInstanceUID>/``; returns the paths."""
    out_dir = Path(out_dir)
    paths = []
    for study in studies:
        ds = to_dataset(study, size)
        folder = out_dir / study.study_uid
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths

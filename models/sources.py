"""Where re-scoring gets its images: a local DICOM folder or a PACS over DICOMweb.

A source is given a study (Study Instance UID, accession as fallback) and returns one CT slice in
Hounsfield units. It runs inside DataLoader workers, so it is a small picklable object that opens
its own connections. Every per-case failure is a ``CaseError`` with a short code and a reason
(study missing, unsupported transfer syntax, unreadable pixel data, fetch failed): the job stores
it on that case's result and goes on.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import InvalidInputError, VigilError

# Transfer syntaxes decoded without optional codecs: the uncompressed ones, deflate and RLE.
SUPPORTED_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


class CaseError(VigilError):
    """One case could not be scored; ``code`` is machine-readable, the message is for people."""

    def __init__(self, code: str, reason: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(f"{code}: {reason}")


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UR", b"UT", b"UN"}
_WANTED = {
    (0x0002, 0x0010): "ts",
    (0x0028, 0x0002): "spp",
    (0x0028, 0x0008): "frames",
    (0x0028, 0x0010): "rows",
    (0x0028, 0x0011): "cols",
    (0x0028, 0x0100): "bits",
    (0x0028, 0x0101): "stored",
    (0x0028, 0x0103): "signed",
    (0x0028, 0x1052): "intercept",
    (0x0028, 0x1053): "slope",
}


def fast_native_hu(data: bytes) -> np.ndarray | None:
    """HU of a plain single-frame 16-bit Explicit VR Little Endian file, or None.

    pydicom builds a full Dataset per file (about a millisecond), which on a CPU costs as much as
    the demo model's forward pass and would starve it. The hot path only needs ten tags and the
    pixel bytes, so this walks the elements directly; anything unusual (another transfer syntax,
    an undefined-length sequence, several frames or samples, signed data with fewer stored bits)
    returns None and goes through pydicom. Tested against pydicom as the oracle.
    """
    import struct

    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    pos, n, found = 132, len(data), {}
    # the file meta group states its own length: read the transfer syntax, then jump past it
    if data[132:140] == b"\x02\x00\x00\x00UL\x04\x00":
        meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
        at = data.find(b"\x02\x00\x10\x00UI", 144, meta_end)
        if at < 0:
            return None
        (tlen,) = struct.unpack_from("<H", data, at + 6)
        found["ts"] = data[at + 8 : at + 8 + tlen].rstrip(b"\0 ").decode("ascii", "replace")
        if found["ts"] != "1.2.840.10008.1.2.1":
            return None
        pos = meta_end
    pixels = None
    head = struct.Struct("<HH2sH")
    while pos + 8 <= n:
        group, elem, vr, length = head.unpack_from(data, pos)
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            start = pos + 8
        if length == 0xFFFFFFFF or start + length > n:
            return None
        key = (group, elem)
        if key == (0x7FE0, 0x0010):
            pixels = data[start : start + length]
            break
        if key in _WANTED:
            raw = data[start : start + length]
            if vr == b"US":
                found[_WANTED[key]] = struct.unpack_from("<H", raw)[0]
            else:
                found[_WANTED[key]] = raw.rstrip(b"\0 ").decode("ascii", "replace").strip()
        if group == 0x0002 and found.get("ts", "1.2.840.10008.1.2.1") != "1.2.840.10008.1.2.1":
            return None
        pos = start + length
    try:
        rows, cols = int(found["rows"]), int(found["cols"])
        frames = int(found.get("frames") or 1)
        signed = int(found.get("signed", 0))
        stored = int(found.get("stored", 16))
        slope = float(found.get("slope") or 1)
        intercept = float(found.get("intercept") or 0)
    except (KeyError, ValueError):
        return None
    if (
        pixels is None
        or found.get("ts") != "1.2.840.10008.1.2.1"
        or int(found.get("spp", 1)) != 1
        or int(found.get("bits", 0)) != 16
        or frames != 1
        or (signed and stored != 16)
        or len(pixels) < rows * cols * 2
    ):
        return None
    px = np.frombuffer(pixels, dtype="<i2" if signed else "<u2", count=rows * cols)
    hu = px.reshape(rows, cols).astype(np.float32)
    if slope != 1.0:
        hu *= slope
    if intercept:
        hu += intercept
    return hu


def decode_hu(data: bytes | Path) -> np.ndarray:
    """A DICOM file (bytes or path) -> its first frame in HU (slope/intercept applied)."""
    import pydicom

    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    fast = fast_native_hu(raw)
    if fast is not None:
        return fast
    data = raw
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data, force=False)
    except (InvalidDicomError, EOFError, OSError, ValueError) as exc:
        raise CaseError("unreadable_file", f"not a readable DICOM file ({exc})") from None
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if ts and ts not in SUPPORTED_TRANSFER_SYNTAXES:
        try:
            from pydicom.uid import UID

            name = UID(ts).name
        except Exception:  # unknown UID: show it as is
            name = ts
        raise CaseError(
            "unsupported_transfer_syntax",
            f"transfer syntax {name} ({ts}) is not decoded here; ask the PACS for "
            "Explicit VR Little Endian",
        )
    if "PixelData" not in ds:
        raise CaseError("unreadable_pixel_data", "the file has no pixel data")
    try:
        px = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for broken pixel data
        raise CaseError("unreadable_pixel_data", f"pixel data cannot be decoded ({exc})") from None
    if px.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        px = px[px.shape[0] // 2]  # multi-frame: the middle frame
    if px.ndim != 2:
        raise CaseError("unreadable_pixel_data", f"expected one grey-level slice, got {px.shape}")
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return px.astype(np.float32) * slope + intercept


class ImageSource(ABC):
    """Finds a study and returns one slice in HU (the middle instance of a multi-slice study)."""

    @abstractmethod
    def read(self, study_uid: str | None, accession: str | None) -> np.ndarray: ...

    @abstractmethod
    def describe(self) -> str: ...


class FolderSource(ImageSource):
    """A folder of DICOM files (any layout), indexed by Study Instance UID and accession."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InvalidInputError(f"--source folder:{folder}: no such folder")
        self.by_uid: dict[str, list[tuple[int, str]]] = {}
        self.by_accession: dict[str, str] = {}
        self._index()

    def _index(self) -> None:
        import pydicom

        tags = ["StudyInstanceUID", "AccessionNumber", "InstanceNumber"]
        for path in sorted(self.folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
            except Exception:  # not DICOM (a README, a thumbnail): not part of the index
                continue
            uid = str(getattr(ds, "StudyInstanceUID", "") or "")
            if not uid:
                continue
            num = int(getattr(ds, "InstanceNumber", 0) or 0)
            self.by_uid.setdefault(uid, []).append((num, str(path)))
            acc = str(getattr(ds, "AccessionNumber", "") or "")
            if acc:
                self.by_accession.setdefault(acc, uid)
        for files in self.by_uid.values():
            files.sort()

    def path_of(self, study_uid: str | None, accession: str | None) -> str:
        # the Study Instance UID is authoritative; the accession only when the UID is unknown
        uid = study_uid if study_uid else self.by_accession.get(accession or "")
        if not uid or uid not in self.by_uid:
            raise CaseError(
                "study_missing",
                f"study {study_uid or '?'} (accession {accession or '?'}) is not in {self.folder}",
            )
        files = self.by_uid[uid]
        return files[len(files) // 2][1]

    def read(self, study_uid: str | None, accession: str | None) -> np.ndarray:
        return decode_hu(Path(self.path_of(study_uid, accession)))

    def describe(self) -> str:
        return f"folder:{self.folder}"


class DicomWebSource(ImageSource):
    """A PACS over DICOMweb: QIDO-RS finds the study and its instances, WADO-RS retrieves one."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"--source dicomweb:{base_url}: expected an http(s) URL such as "
                "dicomweb:http://pacs:8042/dicom-web"
            )
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, accept: str) -> tuple[bytes, str]:
        req = urllib.request.Request(self.base + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 204):
                return b"", ""
            raise CaseError("fetch_failed", f"{self.base}{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CaseError("fetch_failed", f"{self.base}: {exc}") from None

    def _qido(self, path: str, **params: str) -> list[dict[str, Any]]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body, _ = self._get(path + query, "application/dicom+json")
        return json.loads(body) if body.strip() else []

    @staticmethod
    def _value(item: dict[str, Any], tag: str) -> Any:
        vals = item.get(tag, {}).get("Value") or [None]
        return vals[0]

    def find_study(self, study_uid: str | None, accession: str | None) -> str:
        if study_uid:  # authoritative: no guessing by accession when the UID is not there
            if self._qido("/studies", StudyInstanceUID=study_uid):
                return study_uid
        elif accession:
            found = self._qido("/studies", AccessionNumber=accession)
            if found:
                return str(self._value(found[0], "0020000D"))
        raise CaseError(
            "study_missing",
            f"study {study_uid or '?'} (accession {accession or '?'}) not found at {self.base}",
        )

    def read(self, study_uid: str | None, accession: str | None) -> np.ndarray:
        uid = self.find_study(study_uid, accession)
        instances = self._qido(f"/studies/{uid}/instances")
        if not instances:
            raise CaseError("study_missing", f"study {uid} has no instances at {self.base}")
        instances.sort(key=lambda i: int(self._value(i, "00200013") or 0))
        inst = instances[len(instances) // 2]
        series, sop = self._value(inst, "0020000E"), self._value(inst, "00080018")
        body, ctype = self._get(
            f"/studies/{uid}/series/{series}/instances/{sop}",
            'multipart/related; type="application/dicom"; transfer-syntax=*',
        )
        parts = split_multipart(body, ctype)
        if not parts:
            raise CaseError("fetch_failed", f"WADO-RS returned no DICOM part for {sop}")
        return decode_hu(parts[0])

    def describe(self) -> str:
        return f"dicomweb:{self.base}"


class SimulatedSource(ImageSource):
    """The simulated hospital's PACS: a ``vigil simulate`` folder whose images are rendered on
    request. The first read of a study writes its DICOM file under ``RUN/dicom/<Study UID>/``
    (only studies a job samples are ever rendered, never the whole network), then decodes it like
    any other file; later reads find the file."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        if not (self.run_dir / "truth.parquet").is_file():
            raise InvalidInputError(
                f"--source simulated:{run_dir}: no truth.parquet there. Fix: give the folder "
                "of a `vigil simulate --out DIR` run"
            )
        self._rows: dict[str, int] | None = None

    def _load(self) -> dict[str, int]:
        if self._rows is None:  # in each worker, on first use (keeps the source small to pickle)
            import pandas as pd

            df = pd.read_parquet(self.run_dir / "truth.parquet")
            df = df[df["model"].notna()] if "model" in df else df
            self._df = df.reset_index(drop=True)
            self._rows = {str(u): i for i, u in enumerate(self._df["study_uid"])}
        return self._rows

    def read(self, study_uid: str | None, accession: str | None) -> np.ndarray:
        from models.truth import studies_from_truth
        from vigil.simulate.dicom import write_studies

        rows = self._load()
        if study_uid not in rows:
            raise CaseError("study_missing", f"study {study_uid} is not in {self.run_dir}")
        folder = self.run_dir / "dicom" / str(study_uid)
        files = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        if not files:
            [study] = studies_from_truth(self._df.iloc[[rows[study_uid]]])
            files = write_studies([study], self.run_dir / "dicom")
        return decode_hu(files[len(files) // 2])

    def describe(self) -> str:
        return f"simulated:{self.run_dir}"


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/related response (RFC 2046), in order."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return [body] if body[128:132] == b"DICM" else []
    out = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        out.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return out


def open_source(text: str) -> ImageSource:
    """``folder:PATH``, ``dicomweb:URL`` or ``simulated:RUN_DIR`` (a bare path means a folder)."""
    kind, sep, rest = text.partition(":")
    if sep and kind == "folder":
        return FolderSource(Path(rest))
    if sep and kind == "dicomweb":
        return DicomWebSource(rest)
    if sep and kind == "simulated":
        return SimulatedSource(Path(rest))
    if "://" not in text:
        return FolderSource(Path(text))
    raise InvalidInputError(
        f"--source {text!r}: use folder:PATH, dicomweb:URL or simulated:RUN_DIR "
        "(e.g. dicomweb:http://127.0.0.1:8042/dicom-web)"
    )

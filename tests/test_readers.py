"""Real-data readers: good files load; every kind of bad input is one line naming the file (and line), exit 2."""

import csv

import cv2
import numpy as np
import pytest

from edgekit.data import open_dataset
from edgekit.data.crop import crop_from_box, crop_from_landmarks
from edgekit.data.label_files import read_landmark_csv, read_pts
from edgekit.errors import EdgekitError


def write_pts(path, pts, n_points=None, close=True):
    lines = ["version: 1", f"n_points: {n_points if n_points is not None else len(pts)}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in pts]
    if close:
        lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def face_points(cx=100.0, cy=120.0, r=40.0):
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    pts[36], pts[45] = [cx - 25, cy - 10], [cx + 25, cy - 10]
    return pts


def write_image(path, h=240, w=200):
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)


@pytest.fixture
def pts_folder(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"face{i}.jpg")
        write_pts(tmp_path / f"face{i}.pts", face_points())
    return tmp_path


def test_pts_folder_loads_and_converts_one_based_coordinates(pts_folder):
    pts = read_pts(pts_folder / "face0.pts")
    assert pts.shape == (68, 2)
    assert np.allclose(pts, face_points() - 0.5, atol=1e-3)  # 300-W is 1-based pixel centres
    ds = open_dataset(pts_folder)
    assert len(ds) == 3 and ds[0].image.shape == (112, 112, 3)
    assert ds[0].landmarks.min() > 0 and ds[0].landmarks.max() < 1


@pytest.mark.parametrize(
    "mutate, message, line",
    [
        (lambda p: write_pts(p, face_points()[:30], n_points=68, close=False), "truncated", 33),
        (lambda p: write_pts(p, face_points()[:67], n_points=68), "has 67 points, expected 68", 71),
        (lambda p: p.write_text("version: 1\nn_points: 68\n{\n1.0 2.0\n1.0 abc\n"), "expected 'x y'", 5),
        (lambda p: p.write_text("version: 1\nn_points: sixty\n{\n"), "expected an integer", 2),
        (lambda p: p.write_text(""), "empty .pts file", None),
    ],
)
def test_bad_pts_names_file_and_line(tmp_path, mutate, message, line):
    p = tmp_path / "bad.pts"
    mutate(p)
    with pytest.raises(EdgekitError) as err:
        read_pts(p)
    text = str(err.value)
    assert message in text and str(p) in text
    if line is not None:
        assert f"{p}:{line}:" in text


def test_pts_of_any_point_count_but_one_count_per_folder(tmp_path):
    """98- or 5-point .pts files read as they are; a folder mixing counts names the odd file."""
    from edgekit.data.datasets import pts_folder as open_pts_folder

    write_pts(tmp_path / "five.pts", face_points()[:5], n_points=5)
    assert read_pts(tmp_path / "five.pts").shape == (5, 2)
    with pytest.raises(EdgekitError, match=r"n_points is 5, expected 68"):
        read_pts(tmp_path / "five.pts", points=68)
    write_image(tmp_path / "five.jpg")
    write_pts(tmp_path / "six.pts", face_points()[:6], n_points=6)
    write_image(tmp_path / "six.jpg")
    with pytest.raises(EdgekitError, match=r"six.pts:2: n_points is 6, expected 5"):
        open_pts_folder(tmp_path)


def test_wflw_list_and_k_point_csv(tmp_path):
    from edgekit.data import open_dataset

    rng = np.random.default_rng(0)
    pts = rng.uniform(20, 90, (98, 2))
    (tmp_path / "WFLW_images" / "0--Parade").mkdir(parents=True)
    write_image(tmp_path / "WFLW_images" / "0--Parade" / "a.jpg")
    (tmp_path / "ann").mkdir()
    line = " ".join(f"{v:.3f}" for v in pts.ravel()) + " 10 10 100 100 0 1 0 0 1 0 0--Parade/a.jpg"
    (tmp_path / "ann" / "list_98pt_rect_attr_test.txt").write_text(line + "\n")
    ds = open_dataset(tmp_path / "ann" / "list_98pt_rect_attr_test.txt", size=64)
    assert len(ds) == 1 and ds[0].landmarks.shape == (98, 2) and ds.kind == "WFLW list"
    (tmp_path / "ann" / "bad.txt").write_text("1 2 3 a.jpg\n")
    with pytest.raises(EdgekitError, match=r"bad.txt:1: expected 207 fields"):
        open_dataset(tmp_path / "ann" / "bad.txt")
    write_image(tmp_path / "b.jpg")
    write_csv(tmp_path / "five.csv", [["b.jpg", *pts[:5].ravel()]])
    assert open_dataset(tmp_path / "five.csv", size=64)[0].landmarks.shape == (5, 2)


def test_cli_reports_truncated_pts_with_exit_code_2(pts_folder, cli):
    write_pts(pts_folder / "face1.pts", face_points()[:10], n_points=68, close=False)
    r = cli("data", "check", str(pts_folder))
    assert r.returncode == 2
    assert "face1.pts:13: truncated" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_reports_unreadable_image(pts_folder, cli):
    (pts_folder / "face2.jpg").write_bytes(b"this is not a jpeg")
    r = cli("data", "check", str(pts_folder))
    assert r.returncode == 2 and "face2.jpg: not a readable image" in r.stderr


def test_cli_reports_missing_image_next_to_pts(pts_folder, cli):
    (pts_folder / "face2.jpg").unlink()
    r = cli("data", "check", str(pts_folder))
    assert r.returncode == 2 and "face2.pts: no image next to it" in r.stderr


def test_cli_reports_empty_folder(tmp_path, cli):
    r = cli("data", "check", str(tmp_path))
    assert r.returncode == 2 and f"{tmp_path}: no images found" in r.stderr


def test_unlabeled_folder_loads_as_crops(tmp_path, cli):
    for i in range(2):
        write_image(tmp_path / f"u{i}.png", 90, 160)
    ds = open_dataset(tmp_path)
    assert len(ds) == 2 and ds[0].landmarks is None and ds[0].image.shape == (112, 112, 3)
    r = cli("data", "check", str(tmp_path))
    assert r.returncode == 0 and "unlabeled folder, 2 images, no labels" in r.stdout


def write_csv(path, rows, header=True):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(["path"] + [f"{a}{i}" for i in range(68) for a in "xy"]
                       + ["left_eye_open", "right_eye_open", "mouth_open"])
        w.writerows(rows)


def test_csv_with_states_loads(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_csv(tmp_path / "l.csv", [["a.jpg", *face_points().ravel(), 1, 0, 1]])
    items = read_landmark_csv(tmp_path / "l.csv")
    assert np.allclose(items[0].landmarks, face_points() + 0.5, atol=1e-4)  # 0-based pixel centres
    ds = open_dataset(tmp_path / "l.csv")
    assert ds[0].states.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "row, message",
    [
        (["a.jpg", *range(10)], "expected 137 columns"),
        (["a.jpg", "oops", *range(135)], "'oops' is not a number"),
        (["a.jpg", *range(136), 1, 2, 0], "states must be 0 or 1"),
    ],
)
def test_bad_csv_rows_name_file_and_line(tmp_path, cli, row, message):
    write_image(tmp_path / "a.jpg")
    write_csv(tmp_path / "l.csv", [["a.jpg", *face_points().ravel()], row])
    r = cli("data", "check", str(tmp_path / "l.csv"))
    assert r.returncode == 2 and f"l.csv:3: {message}" in r.stderr, r.stderr


def test_crop_maps_landmarks_onto_the_pixels_they_label():
    img = np.zeros((300, 400, 3), np.uint8)
    lm = np.array([[150.5, 100.5], [250.5, 200.5]] + [[200.5, 150.5]] * 66, np.float32)
    img[100, 150] = img[200, 250] = 255  # pixel (x=150, y=100) has its centre at 150.5, 100.5
    crop, clm = crop_from_landmarks(img, lm, 112, scale=1.4)
    for k in (0, 1):
        x, y = clm[k] * 112
        patch = crop[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].max()
        assert patch > 30, (k, x, y)
    crop2, clm2 = crop_from_box(img, (100, 50, 300, 250), 112, lm)
    assert np.allclose(clm2[0], [(150.5 - 100) / 200, (100.5 - 50) / 200])


def test_data_fingerprint_changes_when_a_file_does(pts_folder):
    import os

    from edgekit.data.datasets import data_fingerprint

    before = data_fingerprint(pts_folder)
    assert before == data_fingerprint(pts_folder) and data_fingerprint("synth:test:5") == "synth:test:5"
    target = pts_folder / "face1.jpg"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000))
    assert data_fingerprint(pts_folder) != before


def test_dlib_imglab_xml_of_any_part_count(tmp_path):
    """`--data labels.xml` (dlib/imglab): parts ordered by numeric name whatever the file order, dlib's pixel
    centres moved half a pixel, ignored and part-less boxes skipped, images relative to the XML."""
    (tmp_path / "img").mkdir()
    write_image(tmp_path / "img" / "a.jpg")
    pts = np.random.default_rng(1).uniform(20, 90, (5, 2)).round()
    parts = "".join(f"<part name='{i:02d}' x='{x:.0f}' y='{y:.0f}'/>" for i, (x, y) in reversed(list(enumerate(pts))))
    xml = tmp_path / "labels.xml"
    xml.write_text(f"<?xml version='1.0'?><dataset><images><image file='img/a.jpg'>"
                   f"<box top='10' left='10' width='80' height='80'>{parts}</box>"
                   f"<box top='0' left='0' width='9' height='9' ignore='1'><part name='00' x='1' y='1'/></box>"
                   f"<box top='0' left='0' width='9' height='9'/></image></images></dataset>")
    ds = open_dataset(xml, size=64)
    assert len(ds) == 1 and ds.kind == "dlib XML" and ds[0].landmarks.shape == (5, 2)
    assert np.allclose(ds.items[0].landmarks, pts + 0.5)
    assert ds.items[0].image_path == tmp_path / "img" / "a.jpg"


@pytest.mark.parametrize("body, message", [
    ("<image file='a.jpg'><box><part name='00' x='1' y='2'/><part name='01' x='3' y='4'/></box>"
     "<box><part name='00' x='1' y='2'/></box></image>", "a box in a.jpg has 1 parts, expected 2 like the first box"),
    ("<image file='a.jpg'><box><part name='eye' x='1' y='2'/></box></image>", "lacks a numeric name, x or y"),
    ("<image file='a.jpg'><box><part name='00' x='1' y='2'/><part name='00' x='3' y='4'/></box></image>",
     "repeats a part name or has a non-finite x or y"),
    ("<image file='a.jpg'><box><part name='00' x='nan' y='2'/></box></image>", "non-finite x or y"),
    ("<image file='a.jpg'><box top='1'/></image>", "no box with landmark parts"),
    ("<image file='a.jpg'><box><part name='00' x='1'", "not well-formed XML"),
])
def test_bad_dlib_xml_is_one_line_naming_the_file(tmp_path, cli, body, message):
    write_image(tmp_path / "a.jpg")
    xml = tmp_path / "bad.xml"
    xml.write_text(f"<dataset><images>{body}</images></dataset>")
    r = cli("data", "check", str(xml))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{xml}" in r.stderr and message in r.stderr and len(r.stderr.strip().splitlines()) == 1

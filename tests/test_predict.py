"""`edgekit predict`: landmarks and states drawn on a real photo, from a checkpoint and from an exported artifact."""

import json

import cv2
import numpy as np
import pytest

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    """scikit-image's astronaut photo (a real face), loaded from the installed package, never copied here."""
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_predict_finds_the_face_and_draws_a_png(cli, astronaut, tmp_path):
    out = tmp_path / "overlay.png"
    r = cli("predict", "--weights", "zoo:facial68-teacher", "--image", str(astronaut), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    pred = json.loads(r.stdout)
    x0, y0, x1, y1 = pred["box"]
    # the astronaut's face sits near (220, 115) in the 512 x 512 photo
    assert pred["detected"] and x0 < 220 < x1 and y0 < 115 < y1 and 60 < x1 - x0 < 200
    lm = np.array(pred["landmarks"])
    assert lm.shape == (68, 2)
    assert np.all((lm > [x0 - 40, y0 - 40]) & (lm < [x1 + 40, y1 + 40]))  # on the face, in image pixels
    assert set(pred["states"]) == {"left_eye_open", "right_eye_open", "mouth_open"}
    drawn, photo = cv2.imread(str(out)), cv2.imread(str(astronaut))
    assert drawn.shape == photo.shape and np.any(drawn != photo)  # the photo, with marks on it


def test_an_exported_artifact_predicts_what_its_checkpoint_does(tiny_teacher, tiny_run, astronaut):
    from edgekit.predict import predict

    box = (170.0, 60.0, 275.0, 170.0)
    ref = predict(str(tiny_teacher), astronaut, box)
    onnx = predict(str(tiny_run / "exports" / "model.fp32.onnx"), astronaut, box)
    assert not onnx.detected
    assert np.abs(onnx.landmarks - ref.landmarks).max() < 0.05  # pixels
    assert onnx.states == pytest.approx(ref.states, abs=1e-3)


def test_predict_bad_input_is_one_line_and_exit_2(cli, tmp_path, astronaut):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    out = tmp_path / "o.png"
    r = cli("predict", "--weights", "zoo:facial68-teacher", "--image", str(blank), "--out", str(out))
    assert r.returncode == 2 and "no face found" in r.stderr and "--box" in r.stderr and not out.exists()
    r = cli("predict", "--weights", "zoo:facial68-teacher", "--image", str(astronaut), "--box", "10,10,5,40")
    assert r.returncode == 2 and "x1 must exceed x0" in r.stderr
    r = cli("predict", "--weights", "zoo:facial68-teacher", "--image", str(tmp_path / "missing.jpg"))
    assert r.returncode == 2 and "missing.jpg" in r.stderr
    assert "Traceback" not in r.stderr

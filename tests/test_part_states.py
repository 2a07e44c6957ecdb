"""Part states by one definition on the 68 points (eye aspect ratio, inner-lip gap over mouth width), for
SynthFaces' labels and the labels derived for real photos alike."""

import json

import numpy as np

from edgekit.data import open_dataset
from edgekit.data.synthface import OPEN_THRESHOLD, _sample_shape, render
from edgekit.landmarks import EYE_OPEN_EAR, MOUTH_OPEN_GAP, eye_aspect_ratio, mouth_gap_ratio, states_from_points


def test_the_ratios_by_hand():
    lm = np.zeros((1, 68, 2))
    eye = [(0, 0), (1, -0.375), (2, -0.375), (3, 0), (2, 0.375), (1, 0.375)]  # lids 0.75 apart, 3 wide: EAR 0.25
    lm[0, 36:42] = eye
    lm[0, 42:48] = [(x + 10, y * 0.5) for x, y in eye]  # half as open: EAR 0.125
    lm[0, 48], lm[0, 54] = (0, 5), (4, 5)  # mouth 4 wide
    lm[0, 61:64] = [(1, 4.6), (2, 4.6), (3, 4.6)]
    lm[0, 65:68] = [(3, 5.4), (2, 5.4), (1, 5.4)]  # inner lips 0.8 apart: gap ratio 0.2
    assert np.allclose(eye_aspect_ratio(lm, 36), 0.25) and np.allclose(eye_aspect_ratio(lm, 42), 0.125)
    assert np.allclose(mouth_gap_ratio(lm), 0.2)
    assert states_from_points(lm).tolist() == [[0.0, 1.0, 1.0]]  # left eye closed, right eye open, mouth open
    assert (EYE_OPEN_EAR, MOUTH_OPEN_GAP) == (0.20, 0.15)


def test_synthfaces_labels_follow_the_definition_and_v1_keeps_its_drawn_labels():
    for version in (1, 3):
        faces = [render(5, i, 112, version) for i in range(60)]
        lm = np.stack([f.landmarks for f in faces])
        assert np.array_equal(np.stack([f.states for f in faces]), states_from_points(lm))
    for i in range(60):  # v1 draws openness with a gap around the thresholds: the labels did not move
        shape = _sample_shape(np.random.default_rng([5, i]))
        drawn = [shape.eye_open_left >= OPEN_THRESHOLD, shape.eye_open_right >= OPEN_THRESHOLD,
                 shape.mouth_open >= OPEN_THRESHOLD]
        assert render(5, i, 112, 1).states.tolist() == [float(d) for d in drawn]


def test_real_faces_get_state_labels_from_their_points(cli, tmp_path):
    ds = open_dataset("dlib-voc", 112)
    s = ds[0]
    assert s.states is not None and s.states.tolist() == states_from_points(
        ds.items[0].landmarks[None])[0].tolist()  # measured on the photo's points, before cropping
    r = cli("teacher", "eval", "--data", "dlib-voc", "--out", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert set(m["states"]) == {"left_eye_open", "right_eye_open", "mouth_open"} and 0 <= m["state_f1"] <= 1
    # and its robustness slices: pose from the points, the face's size in its photo
    assert sum(m["slices"][k]["n"] for k in ("frontal", "turned", "profile")) == 43 == m["n"]
    assert "mouth_open" in r.stdout and "NME small-face slice" in r.stdout

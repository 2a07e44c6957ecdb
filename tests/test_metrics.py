"""Each metric against values worked out by hand."""

import numpy as np
import pytest

from edgekit import metrics
from edgekit.landmarks import FLIP_PERMUTATION, REGIONS


def face(iod: float = 10.0) -> np.ndarray:
    """68 points with the outer eye corners 36 and 45 exactly `iod` apart."""
    gt = np.zeros((68, 2))
    gt[:, 0] = np.arange(68) * 0.1
    gt[36] = [0.0, 0.0]
    gt[45] = [iod, 0.0]
    return gt


def test_nme_is_mean_point_error_over_interocular_distance():
    gt = face(10.0)
    pred = gt.copy()
    pred[0] += [3.0, 4.0]  # one point off by 5 px -> 5 / 10 / 68
    nme = metrics.nme_per_image(pred[None], gt[None])
    assert nme[0] == pytest.approx(0.5 / 68)


def test_nme_uses_ground_truth_eye_corners_not_predicted_ones():
    gt = face(20.0)
    pred = gt.copy()
    pred[45] += [20.0, 0.0]  # moving the predicted corner must not change the normaliser
    assert metrics.nme_per_image(pred[None], gt[None])[0] == pytest.approx(1.0 / 68)


def test_failure_rate_and_auc_by_hand():
    nme = np.array([0.0, 0.05, 0.10, 0.20])
    assert metrics.failure_rate(nme) == pytest.approx(0.25)  # only 0.20 is > 0.10
    # AUC@0.1 = mean(max(0, 1 - e / 0.1)) = (1 + 0.5 + 0 + 0) / 4
    assert metrics.auc(nme) == pytest.approx(0.375)


def test_auc_matches_a_fine_numerical_integral_of_the_ced():
    rng = np.random.default_rng(0)
    nme = rng.uniform(0, 0.15, 200)
    grid = np.linspace(0, 0.1, 100_001)
    ced = (nme[None, :] <= grid[:, None]).mean(1)
    assert metrics.auc(nme) == pytest.approx(np.trapezoid(ced, grid) / 0.1, abs=1e-4)


def test_region_nme_only_counts_that_regions_points():
    gt = face(10.0)
    pred = gt.copy()
    pred[48:68] += [1.0, 0.0]  # the mouth moves 1 px = 0.1 inter-ocular
    r = metrics.region_nme(pred[None], gt[None])
    assert r["mouth"] == pytest.approx(0.1)
    assert all(r[k] == 0 for k in ("jaw", "brows", "nose", "eyes"))
    assert sum(b - a for a, b in REGIONS.values()) == 68


def test_state_accuracy_and_f1_by_hand():
    logits = np.array([[2.0, -1, 1], [1.0, -1, -1], [-1.0, 1, 1], [-2.0, -1, -1]])
    truth = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    s = metrics.state_scores(logits, truth)
    # left eye: pred [1,1,0,0] truth [1,0,1,0] -> TP 1, FP 1, FN 1, TN 1
    assert s["left_eye_open"] == {"accuracy": 0.5, "f1": pytest.approx(0.5)}
    assert s["right_eye_open"] == {"accuracy": 1.0, "f1": 1.0}
    assert s["mouth_open"] == {"accuracy": 1.0, "f1": 1.0}


def test_f1_with_no_positives_anywhere_is_perfect_agreement():
    assert metrics.binary_scores(np.zeros(3, bool), np.zeros(3, bool)) == {"accuracy": 1.0, "f1": 1.0}


def test_evaluate_bundles_everything():
    gt = np.stack([face(10.0), face(20.0)])
    pred = gt + 0.5
    m = metrics.evaluate(pred, gt, np.ones((2, 3)), np.ones((2, 3)))
    per = np.sqrt(0.5) / np.array([10.0, 20.0])
    assert m["nme"] == pytest.approx(per.mean())
    assert m["state_accuracy"] == 1.0 and m["n"] == 2


def test_flip_permutation_is_an_involution_that_swaps_eyes():
    assert (FLIP_PERMUTATION[FLIP_PERMUTATION] == np.arange(68)).all()
    assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[0] == 16 and FLIP_PERMUTATION[30] == 30

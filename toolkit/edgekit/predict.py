"""`edgekit predict`: run a checkpoint or an exported artifact on one photo and draw what it sees.

The face is the given box, or the largest face the LBP frontal-face cascade finds (OpenCV's cascade as shipped
inside scikit-image: nothing is downloaded). The crop around the box is the
square the readers cut around a landmark box (`LANDMARK_CROP_SCALE` of its longer side), so the model sees faces
framed as in training. Landmarks come back in image pixels; states as probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_with
from .data.crop import LANDMARK_CROP_SCALE, crop_from_box
from .data.label_files import read_image
from .data.transforms import normalize
from .errors import EdgekitError
from .landmarks import STATE_NAMES


@dataclass
class Prediction:
    box: tuple[float, float, float, float]  # the face box used (given or detected), image pixels
    detected: bool
    landmarks: np.ndarray  # (K, 2) image pixels
    states: dict[str, float]  # name -> probability of "open"

    def to_json(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "detected": self.detected,
                "landmarks": np.round(self.landmarks.astype(np.float64), 2).tolist(), "states": self.states}


def parse_box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise EdgekitError(f"--box must be x0,y0,x1,y1 in pixels, got {text!r}") from None
    if x1 <= x0 or y1 <= y0:
        raise EdgekitError(f"--box {text!r}: x1 must exceed x0 and y1 exceed y0")
    return x0, y0, x1, y1


def detect_face(image: np.ndarray, path: Path) -> tuple[float, float, float, float]:
    """The largest frontal face scikit-image's LBP cascade finds, as (x0, y0, x1, y1). OpenCV 5 no longer ships
    its Haar cascades; scikit-image ships OpenCV's LBP frontal-face cascade as a data file, so this stays offline."""
    try:
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade
    except ImportError:
        raise EdgekitError("finding the face needs scikit-image (pip install scikit-image); or give --box "
                           "x0,y0,x1,y1") from None
    side = min(image.shape[:2])
    detector = Cascade(lbp_frontal_face_cascade_filename())
    faces = detector.detect_multi_scale(img=image, scale_factor=1.2, step_ratio=1,
                                        min_size=(max(24, side // 10),) * 2, max_size=(side, side))
    if not faces:
        raise EdgekitError("no face found by the LBP frontal-face cascade; give --box x0,y0,x1,y1", path=path)
    f = max(faces, key=lambda f: f["width"] * f["height"])
    return float(f["c"]), float(f["r"]), float(f["c"] + f["width"]), float(f["r"] + f["height"])


def artifact_preprocess(path: Path):
    """(sidecar record, preprocessing) of an exported artifact; refused without the input size it needs."""
    from .artifact_record import read_sidecar_of

    record = read_sidecar_of(path)
    pre = (record.preprocess if record else None) or {}
    if "input_size" not in pre:
        raise EdgekitError("no sidecar with the input size and normalisation next to this artifact "
                           "(edgekit writes <file>.json at export)", path=path)
    return record, pre


def load_model(model: str):
    """(session, preprocess) for a checkpoint (zoo:NAME or .safetensors) or an exported artifact."""
    from .models.checkpoint import read_meta, resolve
    from .runtime import RuntimeUnavailable, load

    path = resolve(model) if model.startswith("zoo:") or model.endswith(".safetensors") else Path(model)
    if not path.exists():
        raise EdgekitError("model file not found", path=path)
    if path.suffix == ".safetensors":
        meta = read_meta(path)
        pre = {"input_size": meta.input_size, "mean": list(meta.mean), "std": list(meta.std)}
    else:
        pre = artifact_preprocess(path)[1]
    try:
        return load(path, threads=None), pre
    except RuntimeUnavailable as exc:
        raise EdgekitError(str(exc), path=path) from None


def face_input(image: np.ndarray, box: tuple[float, float, float, float], pre: dict) -> np.ndarray:
    """The model's (1, 3, S, S) input for the face in `box`: the crop readers cut around it, normalised as the
    artifact's sidecar (or checkpoint) says."""
    patch, _ = crop_from_box(image, box, int(pre["input_size"]), scale=LANDMARK_CROP_SCALE)
    return normalize(patch[None], pre.get("mean", (0.5,) * 3), pre.get("std", (0.5,) * 3))


def read_outputs(outputs: list[np.ndarray], box: tuple[float, float, float, float],
                 detected: bool) -> Prediction:
    """One face's outputs (batch of one) -> landmarks in image pixels and state probabilities."""
    lm = np.asarray(outputs[0], np.float32).reshape(-1, 2)
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * LANDMARK_CROP_SCALE
    corner = np.array([(x0 + x1 - side) / 2.0, (y0 + y1 - side) / 2.0], np.float32)
    states = {}
    if len(outputs) > 1 and np.asarray(outputs[1]).size == len(STATE_NAMES):
        probs = 1.0 / (1.0 + np.exp(-np.asarray(outputs[1], np.float64).reshape(-1)))
        states = {n: round(float(p), 3) for n, p in zip(STATE_NAMES, probs, strict=True)}
    return Prediction(box=box, detected=detected, landmarks=corner + lm * side, states=states)


def predict(model: str, image_path: Path, box: tuple[float, float, float, float] | None = None) -> Prediction:
    image = read_image(image_path)
    detected = box is None
    box = box or detect_face(image, image_path)
    session, pre = load_model(model)
    return read_outputs(session.run(face_input(image, box, pre)), box, detected)


def draw(image_path: Path, pred: Prediction, out: Path) -> Path:
    """The photo with the face box, every landmark and the states written beside the box, as PNG."""
    img = cv2.cvtColor(read_image(image_path), cv2.COLOR_RGB2BGR)
    scale = max(1, round(min(img.shape[:2]) / 300))
    x0, y0, x1, y1 = (int(round(v)) for v in pred.box)
    cv2.rectangle(img, (x0, y0), (x1, y1), (255, 160, 0), scale)
    for x, y in pred.landmarks:
        cv2.circle(img, (int(round(x)), int(round(y))), scale + 1, (0, 255, 0), -1, cv2.LINE_AA)
    for i, (name, p) in enumerate(pred.states.items()):
        text = f"{name.replace('_open', '')}: {'open' if p >= 0.5 else 'closed'} ({p:.2f})"
        cv2.putText(img, text, (x0, y1 + (i + 1) * 14 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale,
                    (0, 0, 255), scale, cv2.LINE_AA)
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise EdgekitError("could not encode the overlay as PNG", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_with(out, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
    return out

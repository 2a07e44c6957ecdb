"""One face crop with its (optional) labels: the unit every dataset yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 RGB crop at the model's input size
    landmarks: np.ndarray | None = None  # (68, 2) float32 in [0, 1] crop coordinates; pixel i spans [i, i+1)/size
    states: np.ndarray | None = None  # (3,) float32 in {0, 1}: left eye open, right eye open, mouth open
    source: str = ""  # file or stream the sample came from, for error messages and reports
    # What is known of the image's conditions, for robustness slices (edgekit.slices): SynthFaces' draws (yaw,
    # pitch, roll in degrees, occluded, glasses, blur, noise, light) and a real face's size in its photo (face_px).
    attributes: dict[str, float] | None = None

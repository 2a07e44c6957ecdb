"""Face data: the SynthFaces renderer, real-data readers and batching."""

from .datasets import open_dataset
from .sample import Sample
from .synthface import SynthFaces, render

__all__ = ["Sample", "SynthFaces", "open_dataset", "render"]

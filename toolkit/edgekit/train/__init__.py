"""Training: the one loop, losses, KD steps, evaluation, and teacher/student pre-training on SynthFaces."""

"""Model families, checkpoints and bring-your-own models."""

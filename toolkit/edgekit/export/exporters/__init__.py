"""Artifact formats, one file each: every module here registers a `edgekit.formats.Format` (see that module)."""

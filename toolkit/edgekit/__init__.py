"""edgekit: compress a facial-feature CNN into small, fast, verified on-device models."""

__version__ = "0.1.0"

"""landmarkflow: facial landmark datasets to deployed models."""

__version__ = "0.1.0"

"""Datasets: native formats, the manifest, synthetic faces, validation, versioning, torch datasets."""

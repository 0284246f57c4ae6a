"""Pieces of the data validation: the flat face table, the GX suite, the image probes, the reports.

The entry point is `run.validate_manifest`; the other modules are its parts.
"""

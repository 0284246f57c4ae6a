"""Pieces of the data validation: the flat face table, the GX suite, the image probes, the reports.

The public entry point is `landmarkflow.data.validate`; these modules are its parts.
"""

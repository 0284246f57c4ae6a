"""Landmark models, built from config by name through `landmarkflow.models.zoo`."""

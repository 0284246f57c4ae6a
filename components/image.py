"""The container image every component runs in on a cluster (built from components/Dockerfile); the library names
it (`landmarkflow.image`), so that a TrainJob's nodes run in the same image as the step that creates the job."""

from landmarkflow.image import image

IMAGE = image()

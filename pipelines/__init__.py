"""Kubeflow pipeline definitions: DAG wiring, resources, schedules, compile / submit / run locally."""

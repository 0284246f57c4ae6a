"""Readers and writers of the benchmarks' native annotation formats, into and out of the manifest."""

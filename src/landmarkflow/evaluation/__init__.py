"""Evaluation: NME/FR/AUC metrics, the mean-shape baseline, plots, gates and the shared prediction loop.

Nothing is imported here, so that importing one submodule (e.g. gates) does not pull in matplotlib or torch.
"""

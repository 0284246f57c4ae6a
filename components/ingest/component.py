"""Ingest: native dataset files -> manifest, with the DVC data hash."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    dataset: str,
    data_root: str,
    repo_root: str,
    synth_train: int,
    synth_test: int,
    synth_seed: int,
    manifest: Output[Dataset],
    result: Output[Artifact],
):
    """Read a dataset from its native files into a manifest and record its DVC hash.

    Args:
        dataset: Dataset name (synthetic, 300w).
        data_root: Folder holding the dataset as unpacked (a shared volume on a cluster).
        repo_root: The project checkout whose DVC-tracked data/ holds data_root ("" = no DVC tracking).
        synth_train: Synthetic training faces rendered when the synthetic folder is empty.
        synth_test: Synthetic test faces rendered when the synthetic folder is empty.
        synth_seed: Seed of the synthetic renderer.
        manifest: The manifest (Parquet).
        result: The step's result (JSON).
    """
    from landmarkflow import steps
    from landmarkflow.logs import configure_logging

    configure_logging()
    synth = steps.SynthOptions(num_train=synth_train, num_test=synth_test, seed=synth_seed)
    ingested = steps.ingest(dataset, data_root, manifest.path, synth=synth, repo_root=repo_root or None)
    ingested.save(result.path)
    manifest.metadata.update({"data_hash": ingested.data_hash, "faces": sum(ingested.counts.values())})

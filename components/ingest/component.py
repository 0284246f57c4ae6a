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
    data_git_repo: str,
    data_git_rev: str,
    checkout_dir: str,
    dvc_remote_url: str,
    dvc_endpoint_url: str,
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
        data_git_repo: Git URL whose data.dvc pins the data ("" = use data_root as it is).
        data_git_rev: Branch, tag or commit of data_git_repo; data_root is then a path inside that checkout.
        checkout_dir: Where to clone (on a cluster: the shared workspace volume); "" = beside the manifest.
        dvc_remote_url: The DVC remote as this pod reaches it ("" = the repo's default remote).
        dvc_endpoint_url: S3 endpoint for that remote ("" = AWS).
        manifest: The manifest (Parquet).
        result: The step's result (JSON).
    """
    from landmarkflow import steps
    from landmarkflow.services import start_step

    start_step()
    from pathlib import Path

    synth = steps.SynthOptions(num_train=synth_train, num_test=synth_test, seed=synth_seed)
    revision = None
    if data_git_rev:
        revision = steps.DataRevision(
            repo=data_git_repo or repo_root,
            rev=data_git_rev,
            checkout_dir=Path(checkout_dir or Path(manifest.path).parent / "checkout"),
            remote_url=dvc_remote_url or None,
            endpoint_url=dvc_endpoint_url or None,
        )
    ingested = steps.ingest(
        dataset, data_root, manifest.path, synth=synth, repo_root=repo_root or None, revision=revision
    )
    ingested.save(result.path)
    manifest.metadata.update({"data_hash": ingested.data_hash, "faces": sum(ingested.counts.values())})

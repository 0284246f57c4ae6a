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
    dvc_remote_url: str,
    manifest: Output[Dataset],
    result: Output[Artifact],
):
    """Read a dataset from its native files into a manifest, version it and push it to the DVC remote.

    The only step that reads a host path: every later step fetches the data by its hash from the remote.

    Args:
        dataset: Dataset name (synthetic, 300w).
        data_root: Folder holding the dataset as unpacked (on a cluster: a volume, or the pod's own folder
            where synthetic data is rendered).
        repo_root: The project checkout whose DVC-tracked data/ holds data_root ("" = version data_root itself).
        synth_train: Synthetic training faces rendered when the synthetic folder is empty.
        synth_test: Synthetic test faces rendered when the synthetic folder is empty.
        synth_seed: Seed of the synthetic renderer.
        data_git_repo: Git URL whose data.dvc pins the data ("" = use data_root as it is).
        data_git_rev: Branch, tag or commit of data_git_repo; data_root is then a path inside that checkout.
        dvc_remote_url: The DVC remote the data goes to and later steps fetch from: s3://bucket/prefix (endpoint
            and credentials from the environment) or a folder ("" = the repo's default remote).
        manifest: The manifest (Parquet).
        result: The step's result (JSON).
    """
    from landmarkflow import steps
    from landmarkflow.data.synthetic_default import SynthOptions
    from landmarkflow.services import start_step

    scratch = start_step()
    synth = SynthOptions(num_train=synth_train, num_test=synth_test, seed=synth_seed)
    revision = None
    if data_git_rev:
        revision = steps.DataRevision(
            repo=data_git_repo or repo_root, rev=data_git_rev, checkout_dir=scratch / "checkout"
        )
    ingested = steps.ingest(
        dataset,
        data_root,
        manifest.path,
        synth=synth,
        repo_root=repo_root or None,
        revision=revision,
        remote=dvc_remote_url or None,
    )
    steps.require_remote(ingested, "the later steps, each in a pod of its own,")  # before any of them starts
    ingested.save(result.path)
    manifest.metadata.update(
        {"data_hash": ingested.data_hash, "data_remote": ingested.data_remote, "faces": sum(ingested.counts.values())}
    )

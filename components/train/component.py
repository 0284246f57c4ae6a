"""Train: one model on the validated manifest, in an MLflow run (DDP when nproc > 1)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    config: str,
    epochs: int,
    nproc: int,
    nodes: int,
    image: str,
    manifest: Input[Dataset],
    ingest_result: Input[Artifact],
    pipeline_job_id: str,
    pipeline_task_id: str,
    checkpoint: Output[Model],
    result: Output[Artifact],
):
    """Train the model of `config` and log it to MLflow; a retry of this task continues the earlier attempt's run
    from its last checkpoint on the tracking server.

    Args:
        config: Experiment config YAML, its absolute path inside the image (freshness resolved it).
        epochs: Override of train.epochs; negative keeps the config's value.
        nproc: Processes per node for DDP (torchrun); 1 trains in this process.
        nodes: Training nodes; more than 1 trains in a Kubeflow Trainer TrainJob of `nproc` GPUs per node, which this
            step creates and waits for.
        image: The image the TrainJob's nodes run (this step's own).
        manifest: The validated manifest.
        ingest_result: Ingest's result (data hash and DVC remote: the train split is fetched from there).
        pipeline_job_id: dsl.PIPELINE_JOB_ID_PLACEHOLDER; with the task id, the resume key that every attempt of
            this task shares. Two whole-value parameters, because the KFP backend substitutes a placeholder only
            when it is a parameter's entire value, not inside a longer string.
        pipeline_task_id: dsl.PIPELINE_TASK_ID_PLACEHOLDER.
        checkpoint: Folder with model.pt (weights + config) and the loss curves.
        result: The step's result (JSON).
    """

    from landmarkflow import steps
    from landmarkflow.data.manifest import TRAIN_SPLIT
    from landmarkflow.services import start_step

    scratch = start_step()
    ingested = steps.IngestResult.load(ingest_result.path)
    ingested.manifest = manifest.path
    overrides = {"train.epochs": epochs} if epochs >= 0 else None
    resume_key = f"{pipeline_job_id}/{pipeline_task_id}"
    local = steps.materialise_data(ingested, [TRAIN_SPLIT], scratch / "data")
    trained = steps.train(
        config,
        local,
        checkpoint.path,
        overrides,
        nproc=nproc,
        resume_key=resume_key,
        nodes=nodes,
        image=image,
    )
    trained.save(result.path)
    checkpoint.metadata.update({"mlflow_run_id": trained.run_id, "config_hash": trained.config_hash})

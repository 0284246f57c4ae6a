"""The landmark pipeline: ingest -> freshness -> validate -> per model: train -> evaluate -> export -> gate ->
register -> promote.

Freshness decides which models have data they were not trained on; when none has, the run ends there (a `dsl.If`
branch not taken, not a failure) with the outcome logged in MLflow.

Only wiring lives here; every step is a component in components/ calling landmarkflow.steps.
Steps with side effects or decisions (ingest, validate, export, gate, register, promote) never come
from the cache: a gate must look at today's champion, and a promotion must really happen.
Every step reaches MLflow and S3 through the variables of one Kubernetes Secret, whose name is chosen at compile
time (`pipelines/compile.py --secret`, read here from LANDMARKFLOW_SECRET).
Cluster-only settings (GPUs, /dev/shm, requests, Secrets) are ignored by kfp.local with a warning.
"""

import os

from kfp import dsl, kubernetes
from kfp.dsl import Artifact, Dataset, Input, PipelineTask

from components.evaluate.component import evaluate
from components.export.component import export
from components.freshness.component import freshness
from components.gate.component import gate
from components.gpu_requests.component import gpu_requests
from components.image import IMAGE
from components.ingest.component import ingest
from components.promote.component import promote
from components.register.component import register
from components.train.component import train
from components.validate.component import validate
from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.services import DEFAULT_SECRET, SECRET_ENV, SECRET_NAME_ENV
from landmarkflow.threads import STEP_THREADS_ENV
from landmarkflow.trainjob.owner import POD_NAME_ENV, POD_UID_ENV

SECRET = os.environ.get(SECRET_NAME_ENV) or DEFAULT_SECRET
"""The Kubernetes Secret every step takes its environment from."""


def use_services(*tasks: PipelineTask) -> None:
    """Give each task the tracking URI and S3 credentials from the Secret, each key under its own variable's name,
    and the Secret's name, so that a step missing one can say where it should have come from."""
    for task in tasks:
        kubernetes.use_secret_as_env(task, secret_name=SECRET, secret_key_to_env={name: name for name in SECRET_ENV})
        task.set_env_variable(SECRET_NAME_ENV, SECRET)


STEP_CPUS = 2
"""The CPUs each step that computes (train, evaluate, export) asks for, and so the threads it computes on."""


def compute_on(task: PipelineTask, cpus: int) -> PipelineTask:
    """Ask for `cpus` CPUs for the task's pod, and have the step compute on that many threads (`STEP_THREADS_ENV`):
    its pod sees every core of the node, and would otherwise start a thread on each. kfp.local ignores the request;
    `make pipeline-run` sets the threads itself, which the step keeps."""
    return task.set_cpu_request(str(cpus)).set_env_variable(STEP_THREADS_ENV, str(cpus))


TRAIN_RETRIES = 3
"""Pre-emptions one training survives (waits of 1, 2 and 4 minutes before the attempts)."""
TRAIN_DEADLINE = "7d"
"""The longest a training may take, retries included."""
DEFAULT_CONFIGS = [
    "configs/dsat_synthetic_tiny.yaml",
    "configs/rdfn_synthetic_tiny.yaml",
    "configs/lgcn_synthetic_tiny.yaml",
    "configs/hih_synthetic_tiny.yaml",
]
"""The embedded default's models, in the order they start. On one machine two model branches (train, evaluate,
export, gate, register, promote) run at once and the next starts when one ends, so the order decides when the last
ends. On both 2-core AMD EPYCs LGCN's branch is the longest (its evaluate and export fit shapes too) and DSAT's the
shorter of the first two: LGCN starts third, in the slot DSAT frees. By the branch times of fresh-clone runs, with
HIH third instead the last branch would end 0.3 min later with native bfloat16 (DSAT 6.5, RDFN 6.8, HIH 6.4, LGCN
7.1 min) and 1 min later without (7.3, 8.3, 9.3, 15.6), and 1.2 min sooner on an Intel Xeon with AMX, where RDFN's
branch was the longest (7.7, 11.2, 8.6, 7.4): no one order is best on every CPU."""


@dsl.pipeline(name="landmark-model", description="Train, evaluate, export, gate, register and promote one model.")
def model_branch(
    config: str,
    epochs: int,
    gpus: int,
    nodes: int,
    manifest: Input[Dataset],
    ingest_result: Input[Artifact],
    real_faces: str = "",
    real_faces_dataset: str = "300w",
    serve_image: str = "",
):
    """One model from config to a gated registry version (served by KServe when `serve_image` is set)."""
    # Asked inside the branch: kfp.local hands a loop's body the loop item in place of any task output from outside
    # the loop (kfp 2.17), so numbers computed before the ParallelFor would not arrive here on one machine.
    requests = gpu_requests(gpus=gpus, nodes=nodes)
    trained = train(
        config=config,
        epochs=epochs,
        nproc=gpus,
        nodes=nodes,
        image=IMAGE,
        manifest=manifest,
        ingest_result=ingest_result,
        pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        pipeline_task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
    )
    # A pre-empted (or otherwise killed) training pod is retried and continues from the last checkpoint it
    # uploaded; the back-off leaves the autoscaler minutes for a new node. Argo counts the max duration from the
    # first attempt's start and ends every retry at that deadline, so it must cover a whole training: KFP's
    # default of one hour would give up on (and cut short) any longer one.
    trained.set_retry(
        num_retries=TRAIN_RETRIES, backoff_duration="1m", backoff_factor=2, backoff_max_duration=TRAIN_DEADLINE
    )
    compute_on(trained, STEP_CPUS).set_memory_request("8Gi")
    # The compiler orders a task after the producer of its inputs, not of its resources: `after` says so.
    trained.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(requests.outputs["train"]).after(requests)
    # DataLoader workers share batches through /dev/shm, which is 64 MiB in a default pod.
    kubernetes.empty_dir_mount(trained, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit="16Gi")
    # The pod's name and uid: a TrainJob the step creates is owned by its pod, so a cancelled run's job goes with it.
    kubernetes.use_field_path_as_env(trained, POD_NAME_ENV, "metadata.name")
    kubernetes.use_field_path_as_env(trained, POD_UID_ENV, "metadata.uid")
    evaluated = evaluate(
        manifest=manifest,
        checkpoint=trained.outputs["checkpoint"],
        train_result=trained.outputs["result"],
        real_faces=real_faces,
        real_faces_dataset=real_faces_dataset,
    )
    exported = export(
        manifest=manifest, checkpoint=trained.outputs["checkpoint"], train_result=trained.outputs["result"]
    ).set_caching_options(False)
    compute_on(evaluated, STEP_CPUS)
    compute_on(exported, STEP_CPUS)
    # With GPUs, export builds and compares the TensorRT engines on a GPU node (`nvidia.com/gpu`; an engine only
    # runs on the architecture it was built for, so the serving nodes should be of that GPU model: pin one with the
    # cluster's node selectors).
    exported.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(requests.outputs["export"]).after(requests)
    gated = gate(
        manifest=manifest,
        train_result=trained.outputs["result"],
        evaluate_result=evaluated.outputs["result"],
        export_result=exported.outputs["result"],
    ).set_caching_options(False)
    registered = register(
        onnx_model=exported.outputs["onnx_model"],
        train_result=trained.outputs["result"],
        evaluate_result=evaluated.outputs["result"],
        export_result=exported.outputs["result"],
        gate_result=gated.outputs["result"],
    ).set_caching_options(False)
    promoted = promote(
        register_result=registered.outputs["result"], gate_result=gated.outputs["result"], serve_image=serve_image
    ).set_caching_options(False)
    use_services(trained, evaluated, exported, gated, registered, promoted)


def make_pipeline(parallelism: int = 0):
    """The top-level pipeline; `parallelism` caps concurrent model branches (0 = unlimited).

    On a cluster every branch has its own pods, so all run at once. On one machine the local runner
    runs 2 at once (kfp.local's cap), each with its share of the cores as threads (threads.share_cores).
    """

    @dsl.pipeline(
        name="landmarkflow",
        description="Facial landmark models from versioned, validated data to gated, promoted, exported models.",
    )
    def landmark_pipeline(
        dataset: str = "synthetic",
        data_root: str = "data/raw/synthetic",
        repo_root: str = "",
        configs: list = DEFAULT_CONFIGS,
        epochs: int = -1,
        gpus: int = 0,
        nodes: int = 1,
        synth_train: int = SynthOptions.num_train,
        synth_test: int = SynthOptions.num_test,
        synth_seed: int = SynthOptions.seed,
        data_git_repo: str = "",
        data_git_rev: str = "",
        dvc_remote_url: str = "",
        real_faces: str = "",
        real_faces_dataset: str = "300w",
        force_retrain: bool = False,
        serve_image: str = "",
    ):
        """The whole pipeline on one dataset, one branch per model config whose model has new data to learn from.

        Args:
            dataset: Dataset name (synthetic, 300w).
            data_root: Dataset folder ingest reads (a volume, or where ingest renders synthetic faces); no other
                step reads it: they fetch the data by its DVC hash from dvc_remote_url.
            repo_root: Checkout with the DVC-tracked data/ ("" = ingest versions data_root itself).
            configs: Experiment config files, one trained model each.
            epochs: Override of every config's train.epochs; negative keeps them.
            gpus: GPUs per training pod; DDP uses one process per GPU.
            nodes: Training nodes; more than 1 trains each model in a Kubeflow Trainer TrainJob of `gpus` GPUs per
                node (the train step creates it and waits for it).
            synth_train: Synthetic training faces when the synthetic folder is empty.
            synth_test: Synthetic test faces when the synthetic folder is empty.
            synth_seed: Seed of the synthetic renderer.
            data_git_repo: Git URL whose data.dvc pins the data ("" = repo_root); used with data_git_rev.
            data_git_rev: Start from this git revision + `dvc pull` ("" = data_root as it is).
            dvc_remote_url: The DVC remote ingest pushes to and every later step fetches from, as pods reach it:
                s3://bucket/prefix, with AWS_ENDPOINT_URL and the credentials from the environment, or a folder
                ("" = repo_root's default remote).
            real_faces: DVC hash (`<md5>.dir`) of a folder of real annotated faces pushed to that same remote ("" =
                none): evaluate measures every model on them as real_nme (gated by a config's gate.max_real_nme).
            real_faces_dataset: The format of the real faces: 300w, wflw, cofw, cofw68 or aflw.
            force_retrain: Train every config's model even when its champion (or its newest version, which failed its
                gates) was trained on this very data; otherwise those are skipped.
            serve_image: Image (the project's, built by `make image`) of the KServe InferenceService that promote
                applies for every new champion, in the pipeline's namespace ("" = promote only moves the alias).
        """
        ingested = ingest(
            dataset=dataset,
            data_root=data_root,
            repo_root=repo_root,
            synth_train=synth_train,
            synth_test=synth_test,
            synth_seed=synth_seed,
            data_git_repo=data_git_repo,
            data_git_rev=data_git_rev,
            dvc_remote_url=dvc_remote_url,
        ).set_caching_options(False)
        checked = freshness(
            ingest_result=ingested.outputs["result"], configs=configs, force=force_retrain
        ).set_caching_options(False)
        use_services(ingested, checked)
        # kfp.local resolves a condition only on a task's single `Output`, which is why freshness returns a bool.
        with dsl.If(checked.outputs["Output"] == True, name="new-data"):  # noqa: E712 (a KFP condition, not Python)
            validated = validate(
                manifest=ingested.outputs["manifest"],
                ingest_result=ingested.outputs["result"],
                freshness_result=checked.outputs["result"],
            ).set_caching_options(False)
            use_services(validated)
            with dsl.ParallelFor(validated.outputs["Output"], parallelism=parallelism, name="models") as config:
                model_branch(
                    config=config,
                    epochs=epochs,
                    gpus=gpus,
                    nodes=nodes,
                    manifest=ingested.outputs["manifest"],
                    ingest_result=ingested.outputs["result"],
                    real_faces=real_faces,
                    real_faces_dataset=real_faces_dataset,
                    serve_image=serve_image,
                )

    return landmark_pipeline


landmark_pipeline = make_pipeline()

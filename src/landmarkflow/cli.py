"""`landmarkflow`: the command line, one subcommand per pipeline step plus `run` and `predict`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.data.versioning import DataVersion, VersioningError, configure_s3_remote, pull, status, track
from landmarkflow.logs import configure_logging
from landmarkflow.services import DEFAULT_SECRET, SECRET_ENV
from landmarkflow.tracking import disable_telemetry

if TYPE_CHECKING:
    from landmarkflow.serving.kserve import Rollout

app = typer.Typer(help="Facial landmark datasets to deployed models.", no_args_is_help=True)
data_app = typer.Typer(
    help="Datasets: render synthetic faces, ingest and validate a dataset, check what is new, version it with DVC.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
models_app = typer.Typer(
    help="The landmark models: what exists, how big, how costly; the registered versions of one.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
console = Console(stderr=True)
T = TypeVar("T")
DEFAULT_WORKDIR = Path("runs/latest")
DEFAULT_CONFIG = Path("configs/hih_synthetic_tiny.yaml")
ConfigOption = Annotated[Path, typer.Option(help="Experiment config YAML.")]
EpochsOption = Annotated[int | None, typer.Option(min=1, help="Override train.epochs.")]
NprocOption = Annotated[int, typer.Option(min=1, help="Processes for DDP training (torchrun); 1 = plain process.")]
ImageOption = Annotated[
    str | None, typer.Option(help="The project's image the pods run (default: LANDMARKFLOW_IMAGE, else ours).")
]
SecretOption = Annotated[
    str | None,
    typer.Option(help=f"Kubernetes Secret with the keys {', '.join(SECRET_ENV)} (default: {DEFAULT_SECRET})."),
]


RolloutOption = Annotated[
    bool, typer.Option(help="Then apply the new champion's KServe InferenceService (serve-manifest).")
]
NamespaceOption = Annotated[
    str | None, typer.Option(help="Namespace of the InferenceService (default: the kubeconfig's).")
]
WorkdirOption = Annotated[
    Path, typer.Option(help="The run's folder: each step reads earlier steps' <step>.json there and writes its own.")
]
IngestOption = Annotated[
    Path | None, typer.Option("--ingest", help="An ingest.json elsewhere (default: the workdir's).")
]
STEP_ERRORS = (ValueError, OSError, VersioningError)
"""What a step raises for bad input or missing results (config, format and manifest errors, a missing
<step>.json, a DVC command that failed); each message names the file or field, so no traceback is needed."""


def _step(run: Callable[[], T]) -> T:
    """Run one step, turning its errors into a clean exit with the message."""
    try:
        return run()
    except STEP_ERRORS as exc:
        _fail(str(exc))


def _epochs(epochs: int | None) -> dict[str, Any] | None:
    return {"train.epochs": epochs} if epochs is not None else None


def _error(message: str) -> None:
    # Messages quote formats such as "[x1 x2 y1 y2]", which rich would otherwise swallow as markup; soft_wrap keeps
    # a long path in one piece when stderr is no terminal (rich would break it at 80 columns).
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _fail(message: str) -> NoReturn:
    _error(message)
    raise typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    """Facial landmark datasets to deployed models."""
    disable_telemetry()
    configure_logging(verbose)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder to write the dataset into (empty or new).")] = Path(
        "data/raw/synthetic"
    ),
    train: Annotated[int, typer.Option(help="Training faces.")] = SynthOptions.num_train,
    test: Annotated[int, typer.Option(help="Test faces (common + challenging).")] = SynthOptions.num_test,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = SynthOptions.seed,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = SynthOptions.image_size,
    layout: Annotated[
        str,
        typer.Option(help="Points per face: 68 (300W folders), 98 (WFLW files), 29 (COFW .mat) or 19 (AFLW .mat)."),
    ] = "68",
) -> None:
    """Render synthetic faces with exact landmarks: 68 points in the 300W folder layout, or another benchmark's
    layout in that benchmark's files."""
    from landmarkflow.data.synthetic import synthesize
    from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS

    if layout not in LAYOUT_DATASETS:
        _fail(f"--layout {layout!r}: expected one of {', '.join(LAYOUT_DATASETS)}")
    report = _step(lambda: synthesize(out, train, test, seed=seed, image_size=size, layout=layout))
    console.print(
        f"{report.images} faces {report.per_split} at {report.image_size} px -> {report.root} "
        f"({report.seconds:.1f} s, {report.images_per_s:.0f} images/s); "
        f"ingest with --dataset {LAYOUT_DATASETS[layout]}",
        soft_wrap=True,
    )


@data_app.command("ingest")
def data_ingest(
    dataset: Annotated[str, typer.Option(help="Dataset name: synthetic, 300w, wflw, cofw, cofw68 or aflw.")],
    root: Annotated[Path, typer.Option(help="Dataset folder as unpacked.")],
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    repo: Annotated[
        Path | None,
        typer.Option(
            help="Project checkout: a root inside its data/ is tracked with DVC for the data hash (default: the "
            "current folder, where it is a DVC repo)."
        ),
    ] = None,
    render: Annotated[
        bool, typer.Option(help="Render the synthetic default first when --dataset synthetic finds no faces.")
    ] = True,
    remote: Annotated[
        str | None,
        typer.Option(
            help="A DVC remote's URL (s3://bucket/prefix, endpoint and credentials from the environment, or a "
            "folder) to version the data in and push it to, for steps that run elsewhere."
        ),
    ] = None,
) -> None:
    """Read a dataset's native files into <workdir>/manifest.parquet and ingest.json, as the pipeline's ingest
    step: files that do not parse are listed (validation fails on them), the rest are ingested, and the data
    hash is the DVC hash when the root lies in the repo's tracked data/ or --remote is given, else that of the
    manifest and its images."""
    from landmarkflow.workflow import DEFAULT_SYNTH, ingest_step

    ingested = _step(
        lambda: ingest_step(
            workdir,
            dataset,
            root,
            synth=DEFAULT_SYNTH if render else None,
            repo_root=_dvc_project(repo),
            remote=remote,
        )
    )
    console.print(
        f"{sum(ingested.counts.values())} faces {ingested.counts} -> {ingested.manifest} (data hash "
        f"{ingested.data_hash}); {len(ingested.problems)} file(s) not ingested",
        soft_wrap=True,
    )


def _dvc_project(repo: Path | None) -> Path | None:
    """The checkout whose DVC versions a root inside its data/: `repo` as given, else the current folder where it
    is a DVC repo (elsewhere the data is hashed, not versioned)."""
    if repo is not None:
        return repo
    return Path.cwd() if (Path.cwd() / ".dvc").is_dir() else None


@data_app.command("validate")
def data_validate(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    ingest_result: IngestOption = None,
) -> None:
    """Run the data suite over the ingested manifest (reports in <workdir>/validation/, an MLflow run in the
    data experiment); exit status 1 when any check fails, the files ingest could not read included."""
    from landmarkflow.data.validation.rendering import print_summary
    from landmarkflow.workflow import validate_step

    result = _step(lambda: validate_step(workdir, ingest_result))
    print_summary(result)
    if not result.success:
        raise typer.Exit(code=1)


@data_app.command("freshness")
def data_freshness(
    config: Annotated[list[Path], typer.Option(help="Experiment config (repeatable): one model each.")],
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    ingest_result: IngestOption = None,
    force: Annotated[bool, typer.Option(help="Retrain every model, even on data it was trained on.")] = False,
) -> None:
    """Which models have data to learn from in the ingested data: those whose champion and newest version were
    trained on other data (or that have none). Writes <workdir>/freshness.json and an MLflow run in the data
    experiment; a scheduled run trains only these. Exit status 0 either way."""
    from landmarkflow.workflow import freshness_step

    _step(lambda: freshness_step(workdir, list(config), ingest_result, force))  # the step logs its decisions


def _version_line(version: DataVersion) -> str:
    size = f"{version.nfiles} files, {version.size / 1e6:.1f} MB"
    return f"{version.path}: md5 {version.md5}, {size}, remote {version.remote}"


RepoOption = Annotated[Path, typer.Option(help="The project checkout (git + DVC repo).")]
TargetOption = Annotated[str, typer.Option(help="Tracked folder or its .dvc file.")]
RemoteOption = Annotated[str | None, typer.Option(help="DVC remote name (default: the repo's default remote).")]


@data_app.command("remote")
def data_remote(
    url: Annotated[str, typer.Option(help="s3://bucket/prefix of the remote.")],
    endpoint: Annotated[str | None, typer.Option(help="S3 endpoint (SeaweedFS, MinIO); default AWS.")] = None,
    name: Annotated[str, typer.Option(help="Remote name.")] = "s3",
    repo: RepoOption = Path("."),
) -> None:
    """Make an S3 remote the default; credentials stay in the environment (AWS_ACCESS_KEY_ID, ...)."""
    _step(lambda: configure_s3_remote(repo, name, url, endpoint, make_default=True))
    typer.echo(f"default DVC remote: {name} -> {url}" + (f" via {endpoint}" if endpoint else ""))


@data_app.command("push")
def data_push(target: TargetOption = "data", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Track the folder (`dvc add`) and upload it to the remote; prints the version to commit (its .dvc file).

    The target is relative to the repo, as pull and status take it (`track` resolves it there)."""
    typer.echo(_version_line(_step(lambda: track(Path(target.removesuffix(".dvc")), repo, remote=remote))))


@data_app.command("pull")
def data_pull(target: TargetOption = "data.dvc", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Fetch the version the .dvc file pins and check it out (local edits to tracked files are replaced)."""
    typer.echo(_version_line(_step(lambda: pull(target, repo, remote))))


@data_app.command("status")
def data_status(target: TargetOption = "data.dvc", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Whether the workspace and the remote hold the version the .dvc file pins; exit 1 when not."""
    local, cloud = _step(lambda: (status(target, repo), status(target, repo, cloud=True, remote=remote)))
    for where, state in (("workspace", local), ("remote", cloud)):
        typer.echo(f"{where}: {'in sync' if state['in_sync'] else json.dumps(state['changes'])}")
    if not (local["in_sync"] and cloud["in_sync"]):
        raise typer.Exit(code=1)


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of objects instead of a table.")] = False,
    configs: Annotated[Path, typer.Option(help="Folder of experiment configs.")] = Path("configs"),
    include_all: Annotated[bool, typer.Option("--all", help="Every config, not only paper and small ones.")] = False,
) -> None:
    """The configs with a paper's numbers to check (a `reference:` section) and the small ones (--all: every
    config): parameters (ours, as the authors count, the paper's) and GFLOPs per face, every crop view included."""
    from rich.table import Table

    from landmarkflow.model_catalog import describe, listed_configs

    if not configs.is_dir():
        _fail(f"--configs {configs}: no such folder; run from the project's checkout, or give its configs/ folder")
    described = _step(lambda: [describe(path) for path in listed_configs(configs, include_all)])
    cards = sorted(described, key=lambda c: (c.name, c.params))
    if as_json:
        typer.echo(json.dumps([card.to_dict() for card in cards], indent=2))
        return
    table = Table(title="landmarkflow models")
    for column in ("model", "config", "points", "input", "params (M)", "as authors count", "paper", "GFLOPs"):
        table.add_column(column, justify="left" if column in ("model", "config") else "right")
    for card in cards:
        paper = f"{card.paper_params / 1e6:.2f}" if card.paper_params else "-"
        table.add_row(
            card.name,
            Path(card.config).stem,
            str(card.num_points),
            str(card.input_size),
            f"{card.params / 1e6:.2f}",
            f"{card.reference_params / 1e6:.2f}",
            paper,
            f"{card.gflops:.2f}",
        )
    Console(width=max(Console().width, 120)).print(table)


@models_app.command("versions")
def models_versions(
    name: Annotated[str, typer.Argument(help="The registered model, e.g. hih-synthetic.")],
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of objects instead of a table.")] = False,
) -> None:
    """Every registered version of NAME, oldest first: aliases, gate, test NME, lineage, champion once, rolled back."""
    from rich.table import Table

    from landmarkflow.outages import tracking_step
    from landmarkflow.registry import version_history

    history = _step(lambda: tracking_step(version_history)(name))
    if not history:
        _fail(f"{name}: no registered version (is the model's name right, and MLFLOW_TRACKING_URI the store?)")
    if as_json:
        typer.echo(json.dumps(history, indent=2))
        return
    table = Table(title=f"{name}: registered versions")
    columns = ("version", "aliases", "gate", "test NME", "data", "config", "commit", "champion once", "rolled back")
    for column in columns:
        table.add_column(column, justify="right" if column in ("version", "test NME") else "left")
    for row in history:
        table.add_row(
            f"v{row['version']}",
            ", ".join(row["aliases"]),
            row["gate"] or "-",
            "-" if row["test_nme"] is None else f"{row['test_nme']:.2%}",
            (row["data_hash"] or "-")[:12],
            row["config_hash"] or "-",
            (row["git_commit"] or "-")[:12],
            "yes" if row["promoted"] else "",
            row["rolled_back"] or "",
        )
    Console(width=max(Console().width, 120)).print(table)


@app.command("run")
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    epochs: EpochsOption = None,
    nproc: NprocOption = 1,
) -> None:
    """Run every step in this process: ingest, validate, train, evaluate, export, gate, register, promote."""
    from landmarkflow.data.validation.result import DataValidationError
    from landmarkflow.workflow import run_workflow

    try:
        result = run_workflow(config, workdir, _epochs(epochs), repo_root=_dvc_project(None), nproc=nproc)
    except DataValidationError as exc:
        _fail(f"data validation failed, nothing was trained:\n{exc}")
    except STEP_ERRORS as exc:
        _fail(str(exc))
    console.print(  # the steps have logged what they did; this says where it is
        f"results in {Path(workdir).resolve()} (<step>.json each), the model {result.export.onnx_path}: "
        f"`landmarkflow predict --model {workdir} IMAGE` reads a photo with it",
        soft_wrap=True,
    )


@app.command("train")
def train(
    config: ConfigOption = DEFAULT_CONFIG,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    ingest_result: IngestOption = None,
    epochs: EpochsOption = None,
    nproc: NprocOption = 1,
    resume_key: Annotated[
        str | None,
        typer.Option(
            help="Name this training: started again with the same key and config, it continues the MLflow run of "
            "the earlier attempt from its last uploaded checkpoint, or returns that run if it finished training."
        ),
    ] = None,
) -> None:
    """Train one model on the ingested data in an MLflow run; writes <workdir>/train/ and train.json."""
    from landmarkflow.workflow import train_step

    trained = _step(lambda: train_step(workdir, config, ingest_result, _epochs(epochs), nproc, resume_key))
    took = f"{trained.seconds / 60:.1f} min" if trained.seconds >= 60 else f"{trained.seconds:.0f} s"
    console.print(
        f"trained {trained.model} in {took}, validation NME {100 * trained.final_val_nme:.2f}% "
        f"(MLflow run {trained.run_id}) -> {trained.checkpoint}"
    )


@app.command("trainjob")
def trainjob(
    nodes: Annotated[int, typer.Option(min=2, help="Training nodes (pods), 2 or more.")],
    gpus_per_node: Annotated[int, typer.Option(min=0, help="GPUs per node, one process each; 0 = one CPU process.")],
    config: ConfigOption = DEFAULT_CONFIG,
    image: ImageOption = None,
    secret: SecretOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    ingest_result: IngestOption = None,
    epochs: EpochsOption = None,
) -> None:
    """Print a Kubeflow Trainer TrainJob that trains CONFIG on several nodes, for `kubectl apply -f -`.

    It opens the job's MLflow run on MLFLOW_TRACKING_URI (the server the nodes reach through the Secret) and puts
    the ingest record and manifest into it; the nodes fetch the images from the DVC remote ingest pushed them to,
    and the node that holds rank 0 logs model.pt to the run. CONFIG is the path inside the image."""
    from landmarkflow.image import image as default_image
    from landmarkflow.services import secret_name
    from landmarkflow.trainjob.spec import trainjob_yaml
    from landmarkflow.workflow import trainjob_step

    job = _step(
        lambda: trainjob_step(
            workdir,
            config,
            nodes,
            gpus_per_node,
            image or default_image(),
            secret or secret_name(),
            ingest_result,
            _epochs(epochs),
        )
    )
    typer.echo(trainjob_yaml(job), nl=False)


@app.command("evaluate")
def evaluate(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    real_faces: Annotated[
        Path | None,
        typer.Option(
            help="A folder of real annotated faces in the model's layout (every split counted): adds real_nme, "
            "its CED and an overlay to the run."
        ),
    ] = None,
    real_dataset: Annotated[
        str | None,
        typer.Option(help="The format of --real-faces: 300w (when not given), wflw, cofw, cofw68 or aflw."),
    ] = None,
) -> None:
    """The benchmark's protocol on the test split, the mean-shape baseline, CED and overlays, logged to the run."""
    from landmarkflow.evaluation.real_faces import RealFaces
    from landmarkflow.workflow import evaluate_step

    if real_dataset is not None and real_faces is None:
        _fail(f"--real-dataset {real_dataset} names the format of --real-faces, which was not given")
    real = RealFaces(real_dataset or "300w", real_faces) if real_faces is not None else None
    evaluated = _step(lambda: evaluate_step(workdir, real))
    console.print(
        f"test NME {100 * evaluated.nme:.2f}% (mean shape {100 * evaluated.baseline_metrics['nme']:.2f}%), "
        f"perturbed boxes {100 * evaluated.perturbed['nme_perturbed']:.2f}%"
        + (f"; real faces NME {100 * evaluated.real_metrics['nme']:.2f}%" if evaluated.real_metrics else "")
    )


@app.command("export")
def export(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """ONNX of the trained model's predict, its parity with PyTorch on the test split; TensorRT on a GPU."""
    from landmarkflow.workflow import export_step

    exported = _step(lambda: export_step(workdir))
    console.print(
        f"{exported.onnx_path}: |NME(onnx) - NME(torch)| = {abs(exported.parity_delta):.2e} on "
        f"{exported.parity_images} faces; TensorRT {exported.tensorrt}",
        soft_wrap=True,
    )


@app.command("gate")
def gate(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Decide promotion (NME threshold, mean-shape bar, champion, ONNX parity); a failed gate exits 0."""
    from landmarkflow.workflow import gate_step

    _step(lambda: gate_step(workdir))  # the step logs its decision and reasons


@app.command("register")
def register(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Register the ONNX model as a new version with lineage tags; `challenger` when it passed the gates."""
    from landmarkflow.workflow import register_step

    registered = _step(lambda: register_step(workdir))
    role = "challenger" if registered.challenger else "not a challenger: its gates failed, or a newer version is"
    console.print(f"{registered.registered_name} v{registered.version} ({role})")


@app.command("promote")
def promote(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    rollout: RolloutOption = False,
    image: ImageOption = None,
    secret: SecretOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Move `champion` to the registered version when its gates passed; otherwise say why it stays."""
    from landmarkflow.workflow import promote_step

    to_cluster = _rollout(image, secret, namespace) if rollout else None
    _step(lambda: promote_step(workdir, to_cluster))  # the step logs where champion is and why


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The registered model, e.g. hih-synthetic.")],
    reason: Annotated[str, typer.Option(help="Why: kept as the tag `rolled_back` on the version left.")],
    to: Annotated[
        str | None,
        typer.Option(help="The version to make champion (default: the newest earlier champion not rolled back)."),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="The champion meant; then the same command run again after it worked rolls back nothing."
        ),
    ] = None,
    rollout: RolloutOption = False,
    image: ImageOption = None,
    secret: SecretOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Move `champion` back by hand, under the alias lock; promote never puts back the version it leaves."""
    from landmarkflow.rollback import roll_back

    to_cluster = _rollout(image, secret, namespace) if rollout else None
    _step(lambda: roll_back(name, reason, to, to_cluster, from_))  # it logs the move


def _rollout(image: str | None, secret: str | None, namespace: str | None) -> Rollout:
    """Where `--rollout` serves the new champion: the project's image, the pipeline's Secret."""
    from landmarkflow.image import image as default_image
    from landmarkflow.services import secret_name
    from landmarkflow.serving.kserve import Rollout

    return Rollout(image or default_image(), secret or secret_name(), namespace)


def _parse_bbox(bbox: str) -> list[float]:
    from landmarkflow.inference import parse_box

    try:
        return parse_box(bbox)
    except ValueError as exc:
        _fail(f"--bbox {bbox!r}: {exc}")


def _describe(result: dict) -> str:
    faces = result["faces"]
    if not faces:
        return f"{result['image']}: no face found (pass --bbox to skip detection)"
    boxes = "; ".join(f"box {', '.join(f'{v:.0f}' for v in face['bbox'])}" for face in faces)
    return f"{result['image']}: {len(faces)} face(s), {len(faces[0]['landmarks'])} points each ({boxes})"


@app.command("predict")
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    model: Annotated[
        str, typer.Option(help="An .onnx file, a model folder, or models:/<name>@<alias>, /<version> or /latest.")
    ],
    bbox: Annotated[
        str | None,
        typer.Option(
            help="Face box x1,y1,x2,y2 in pixels, taken as it is (for a 68-point model a tight landmark box reads "
            "best); default: detect faces (YuNet, or the LBP cascade where its wheel does not install; a 68-point "
            "model reads each face again from its first answer's tight box)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per image (bbox and landmarks) on stdout.")
    ] = False,
    draw: Annotated[
        Path | None, typer.Option(help="Folder to write each image with its predicted landmarks drawn on.")
    ] = None,
) -> None:
    """Landmarks in original-image pixel coordinates (0-based) for every face in each image."""
    from landmarkflow.detection import check_detector
    from landmarkflow.inference import Predictor

    box = None if bbox is None else _parse_bbox(bbox)
    try:
        if box is None:
            check_detector()
        predictor = Predictor.load(model)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    drawn: set[Path] = set()
    failed = 0
    for image in images:
        try:
            result = predictor.predict_file(image, bbox=box)
        except (OSError, ValueError) as exc:
            # One unreadable image does not cost the others their answers: said on stderr, counted in the exit code.
            _error(str(exc))
            failed += 1
            continue
        typer.echo(json.dumps(result) if as_json else _describe(result))
        if draw is not None:
            target = _draw_result(result, draw, drawn)
            drawn.add(target)
            typer.echo(f"drawn -> {target}", err=as_json)
    if failed:
        others = "; the others were answered" if failed < len(images) else ""
        _fail(f"{failed} of {len(images)} images failed (above){others}")


def _draw_result(result: dict, folder: Path, taken: set[Path]) -> Path:
    """Write `predict`'s result drawn on its image into `folder` (`_drawing_path`); the file written."""
    import cv2
    import numpy as np

    from landmarkflow.data.draw import draw_landmarks
    from landmarkflow.fileio import atomic_write_bytes
    from landmarkflow.imageio import read_rgb

    canvas = cv2.cvtColor(read_rgb(result["image"]), cv2.COLOR_RGB2BGR)
    for face in result["faces"]:
        canvas = draw_landmarks(canvas, np.asarray(face["landmarks"]))
    target = _drawing_path(folder, Path(result["image"]), taken)
    try:
        atomic_write_bytes(target, cv2.imencode(".png", canvas)[1].tobytes())
    except OSError as exc:
        _fail(f"--draw {folder}: cannot write {target.name}: {exc}")
    return target


def _drawing_path(folder: Path, image: Path, taken: set[Path]) -> Path:
    """`<stem>_landmarks.png` in `folder`, numbered when an earlier image of this run had the same stem."""
    target, number = folder / f"{image.stem}_landmarks.png", 2
    while target in taken:
        target, number = folder / f"{image.stem}_{number}_landmarks.png", number + 1
    return target


@app.command("serve")
def serve(
    model: Annotated[
        str, typer.Option(help="An .onnx file, a model folder, or models:/<name>@<alias>, /<version> or /latest.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Server processes, each with its own model session and its share of the cores as threads."
        ),
    ] = 1,
    max_batch: Annotated[int, typer.Option(min=1, help="Most face crops in one model call.")] = 32,
    batch_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long the first request of a batch waits for others to join it.")
    ] = 5.0,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest image file a request may send.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image (width x height) a request may send.")] = (
        40_000_000
    ),
) -> None:
    """Answer `POST /v1/landmarks` with the JSON of `predict --json` over HTTP; `GET /healthz`, `GET /v1/model`.

    An alias (or latest) is resolved at start-up: the server keeps answering with that version until it is
    restarted."""
    import os

    import uvicorn

    from landmarkflow.detection import check_detector
    from landmarkflow.inference import Predictor
    from landmarkflow.serving.app import SETTINGS_ENV, ServeSettings, create_app
    from landmarkflow.serving.model_ref import pin_model
    from landmarkflow.serving.uploads import Limits
    from landmarkflow.threads import share_cores

    limits = Limits(max_bytes=round(max_upload_mb * 2**20), max_pixels=max_pixels)
    settings = ServeSettings(model, limits, max_batch, batch_wait_ms)
    try:
        served = pin_model(model)
        if workers == 1:
            uvicorn.run(create_app(settings, served), host=host, port=port)
            return
        check_detector()
        Predictor.load(served.uri)  # here once: uvicorn restarts a worker that fails to load it, forever
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    os.environ[SETTINGS_ENV] = ServeSettings(served.uri, limits, max_batch, batch_wait_ms).to_json()
    share_cores(workers)
    uvicorn.run("landmarkflow.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers)


@app.command("serve-manifest")
def serve_manifest(
    model: Annotated[
        str,
        typer.Option(
            help="models:/<name>@<alias> or models:/<name>/latest (resolved to its version now), or "
            "models:/<name>/<version>."
        ),
    ],
    image: ImageOption = None,
    secret: SecretOption = None,
    name: Annotated[str | None, typer.Option(help="The InferenceService's name (default: the model's).")] = None,
    cpu: Annotated[str, typer.Option(help="CPU request and limit of each pod.")] = "2",
    memory: Annotated[str, typer.Option(help="Memory request and limit of each pod.")] = "2Gi",
    min_replicas: Annotated[int, typer.Option(min=1, help="Fewest pods.")] = 1,
    max_replicas: Annotated[int, typer.Option(min=1, help="Most pods (autoscaled between).")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Server processes per pod.")] = 1,
) -> None:
    """Print a KServe InferenceService serving MODEL with `landmarkflow serve` in the project's image, for
    `kubectl apply -f -`; the pods reach MLflow through the pipeline's Secret."""
    from landmarkflow.image import image as default_image
    from landmarkflow.services import secret_name
    from landmarkflow.serving.kserve import ServingRequest, inference_service, inference_service_yaml
    from landmarkflow.serving.model_ref import pin_model

    def build() -> dict:
        request = ServingRequest(
            pin_model(model).uri,
            image or default_image(),
            secret or secret_name(),
            name,
            cpu,
            memory,
            min_replicas,
            max_replicas,
            workers,
        )
        return inference_service(request)

    typer.echo(inference_service_yaml(_step(build)), nl=False)


if __name__ == "__main__":
    app()

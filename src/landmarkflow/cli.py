"""`landmarkflow`: the command line, one subcommand per pipeline step plus `run` and `predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from landmarkflow.logs import configure_logging
from landmarkflow.tracking import disable_telemetry

if TYPE_CHECKING:
    from landmarkflow.data.versioning import DataVersion

app = typer.Typer(help="Facial landmark datasets to deployed models.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: render, ingest, validate.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="The landmark models: what exists, how big, how costly.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console(stderr=True)


def _fail(message: str) -> None:
    # Messages quote formats such as "[x1 x2 y1 y2]", which rich would otherwise swallow as markup.
    console.print(f"[red]error:[/red] {escape(message)}")
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
    train: Annotated[int, typer.Option(help="Training faces.")] = 2000,
    test: Annotated[int, typer.Option(help="Test faces (common + challenging).")] = 300,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
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
    try:
        report = synthesize(out, train, test, seed=seed, image_size=size, layout=layout)
    except (ValueError, FileExistsError) as exc:
        _fail(str(exc))
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
    out: Annotated[Path, typer.Option(help="Manifest Parquet file to write.")],
) -> None:
    """Read a dataset's native files into a manifest (Parquet)."""
    from landmarkflow.data.formats.readers import read_dataset
    from landmarkflow.data.manifest import ManifestError, write_manifest

    try:
        records = read_dataset(dataset, root)
        write_manifest(records, out)
    except (ValueError, OSError, ManifestError) as exc:
        _fail(str(exc))
    splits: dict[str, int] = {}
    for record in records:
        splits[record.split] = splits.get(record.split, 0) + 1
    console.print(f"{len(records)} faces {splits} -> {out}")


@data_app.command("validate")
def data_validate(
    manifest: Annotated[Path, typer.Argument(help="Manifest Parquet file.")],
    root: Annotated[Path, typer.Option(help="Dataset folder the image paths are relative to.")],
    report: Annotated[Path | None, typer.Option(help="Folder for the HTML report.")] = None,
) -> None:
    """Run the data suite; exit status 1 when any check fails."""
    from landmarkflow.data.manifest import ManifestError, read_manifest
    from landmarkflow.data.validate import print_summary, validate_manifest

    try:
        frame = read_manifest(manifest)
    except ManifestError as exc:
        _fail(str(exc))
    result = validate_manifest(frame, root, report)
    print_summary(result)
    if not result.success:
        raise typer.Exit(code=1)


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
    from landmarkflow.data.versioning import VersioningError, configure_s3_remote

    try:
        configure_s3_remote(repo, name, url, endpoint, make_default=True)
    except VersioningError as exc:
        _fail(str(exc))
    typer.echo(f"default DVC remote: {name} -> {url}" + (f" via {endpoint}" if endpoint else ""))


@data_app.command("push")
def data_push(target: TargetOption = "data", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Track the folder (`dvc add`) and upload it to the remote; prints the version to commit (its .dvc file)."""
    from landmarkflow.data.versioning import VersioningError, track

    try:
        version = track(repo / target.removesuffix(".dvc"), repo, remote=remote)
    except VersioningError as exc:
        _fail(str(exc))
    typer.echo(_version_line(version))


@data_app.command("pull")
def data_pull(target: TargetOption = "data.dvc", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Fetch the version the .dvc file pins and check it out (local edits to tracked files are replaced)."""
    from landmarkflow.data.versioning import VersioningError, pull

    try:
        version = pull(target, repo, remote)
    except VersioningError as exc:
        _fail(str(exc))
    typer.echo(_version_line(version))


@data_app.command("status")
def data_status(target: TargetOption = "data.dvc", repo: RepoOption = Path("."), remote: RemoteOption = None) -> None:
    """Whether the workspace and the remote hold the version the .dvc file pins; exit 1 when not."""
    from landmarkflow.data.versioning import VersioningError, status

    try:
        local, cloud = status(target, repo), status(target, repo, cloud=True, remote=remote)
    except VersioningError as exc:
        _fail(str(exc))
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
    """Every model at its paper configs and small configs: parameters (ours, as the authors count, the paper's)
    and GFLOPs per face."""
    from rich.table import Table

    from landmarkflow.model_catalog import describe, listed_configs

    cards = sorted((describe(path) for path in listed_configs(configs, include_all)), key=lambda c: (c.name, c.params))
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


@app.command("run")
def run(
    config: Annotated[Path, typer.Option(help="Experiment config YAML.")] = Path("configs/hih_synthetic_tiny.yaml"),
    workdir: Annotated[Path, typer.Option(help="Where each step writes its outputs.")] = Path("runs/latest"),
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    nproc: Annotated[int, typer.Option(help="Processes for DDP training (torchrun); 1 = plain process.")] = 1,
) -> None:
    """Run every step in this process: ingest, validate, train, evaluate, export, gate, register, promote."""
    from landmarkflow.data.validate import DataValidationError
    from landmarkflow.workflow import run_workflow

    overrides = {"train.epochs": epochs} if epochs is not None else None
    try:
        result = run_workflow(config, workdir, overrides, repo_root=Path.cwd(), nproc=nproc)
    except DataValidationError as exc:
        _fail(f"data validation failed, nothing was trained:\n{exc}")
    console.print(result.promote.message)


def _parse_bbox(bbox: str) -> list[float]:
    try:
        box = [float(v) for v in bbox.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        _fail(f"--bbox {bbox!r}: expected x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    return box


def _describe(result: dict) -> str:
    faces = result["faces"]
    if not faces:
        return f"{result['image']}: no face found (pass --bbox to skip detection)"
    boxes = "; ".join(f"box {', '.join(f'{v:.0f}' for v in face['bbox'])}" for face in faces)
    return f"{result['image']}: {len(faces)} face(s), {len(faces[0]['landmarks'])} points each ({boxes})"


@app.command("predict")
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    model: Annotated[str, typer.Option(help="An .onnx file, a model folder, or models:/<name>@<alias>.")],
    bbox: Annotated[
        str | None, typer.Option(help="Face box x1,y1,x2,y2 in pixels (loose face box); default: detect faces.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per image (bbox and landmarks) on stdout.")
    ] = False,
    draw: Annotated[
        Path | None, typer.Option(help="Folder to write each image with its predicted landmarks drawn on.")
    ] = None,
) -> None:
    """Landmarks in original-image pixel coordinates (0-based) for every face in each image."""
    import cv2
    import numpy as np

    from landmarkflow.data.draw import draw_landmarks
    from landmarkflow.fileio import atomic_write_bytes
    from landmarkflow.inference import Predictor

    box = None if bbox is None else _parse_bbox(bbox)
    try:
        predictor = Predictor.load(model)
        results = predictor.predict_files(images, bbox=box)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    for result in results:
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(_describe(result))
        if draw is not None:
            canvas = cv2.imread(result["image"], cv2.IMREAD_COLOR)
            for face in result["faces"]:
                canvas = draw_landmarks(canvas, np.asarray(face["landmarks"]))
            target = draw / f"{Path(result['image']).stem}_landmarks.png"
            atomic_write_bytes(target, cv2.imencode(".png", canvas)[1].tobytes())
            typer.echo(f"drawn -> {target}", err=as_json)


if __name__ == "__main__":
    app()

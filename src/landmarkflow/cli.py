"""`landmarkflow`: the command line, one subcommand per pipeline step plus `run` and `predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from landmarkflow.logs import configure_logging
from landmarkflow.tracking import disable_telemetry

app = typer.Typer(help="Facial landmark datasets to deployed models.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: render, ingest, validate.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    """Facial landmark datasets to deployed models."""
    disable_telemetry()
    configure_logging(verbose)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder to write the 300W-layout dataset into.")] = Path(
        "data/raw/synthetic"
    ),
    train: Annotated[int, typer.Option(help="Training faces.")] = 2000,
    test: Annotated[int, typer.Option(help="Test faces (common + challenging).")] = 300,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
) -> None:
    """Render synthetic faces with exact 68-point landmarks in the 300W folder layout."""
    from landmarkflow.data.synthetic import synthesize

    report = synthesize(out, train, test, seed=seed, image_size=size)
    console.print(report)


@data_app.command("ingest")
def data_ingest(
    dataset: Annotated[str, typer.Option(help="Dataset name: synthetic or 300w.")],
    root: Annotated[Path, typer.Option(help="Dataset folder as unpacked.")],
    out: Annotated[Path, typer.Option(help="Manifest Parquet file to write.")],
) -> None:
    """Read a dataset's native files into a manifest (Parquet)."""
    from landmarkflow.data.formats.readers import read_dataset
    from landmarkflow.data.manifest import ManifestError, write_manifest

    try:
        records = read_dataset(dataset, root)
    except (ValueError, OSError, ManifestError) as exc:
        _fail(str(exc))
    write_manifest(records, out)
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
    from landmarkflow.data.manifest import read_manifest
    from landmarkflow.data.validate import print_summary, validate_manifest

    result = validate_manifest(read_manifest(manifest), root, report)
    print_summary(result)
    if not result.success:
        raise typer.Exit(code=1)


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


@app.command("predict")
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    model: Annotated[str, typer.Option(help="An .onnx file, a model folder, or models:/<name>@<alias>.")],
    bbox: Annotated[
        str | None, typer.Option(help="Face box x1,y1,x2,y2 in pixels (loose face box); default: detect faces.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image (the only output format).")] = True,
) -> None:
    """Landmarks in original-image pixel coordinates (0-based), one JSON object per image."""
    from landmarkflow.inference import Predictor

    box = None
    if bbox is not None:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            box = []
        if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
            _fail(f"--bbox {bbox!r}: expected x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    try:
        predictor = Predictor.load(model)
        results = predictor.predict_files(images, bbox=box)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    for result in results:
        typer.echo(json.dumps(result))


if __name__ == "__main__":
    app()

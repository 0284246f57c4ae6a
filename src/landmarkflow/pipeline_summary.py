"""What a local run says: before it, how long its trainings will take on this CPU; after it, what each model
scored, where its champion points, and where to look."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from landmarkflow.config import load_config
from landmarkflow.evaluation.real_faces import PREFIX as REAL_PREFIX
from landmarkflow.registry import CHAMPION, latest_version, version_by_alias
from landmarkflow.steps.checking_freshness import latest_freshness
from landmarkflow.tracking import data_experiment_name, experiment_name, registered_model_name, tracking_uri
from landmarkflow.train.trainer import cpu_computes_bfloat16

REPORT_WIDTH = 150
"""Columns the end-of-run report is laid out for, so a log file (no terminal) keeps every cell whole."""


def float32_notice(configs: list[str]) -> str | None:
    """The warning a CPU run starts with when models that set `train.amp` will train in float32 because this CPU
    has no native bfloat16 (None otherwise): the run takes about twice its budget, so the user knows before."""
    slowed = [config.model.name.upper() for config in map(load_config, configs) if config.train.amp]
    if not slowed or cpu_computes_bfloat16():
        return None
    return (
        f"This CPU has no native bfloat16: {', '.join(slowed)} (train.amp) train{'s' if len(slowed) == 1 else ''} in "
        "float32, at about half the speed. "
        "The default run takes about 30 minutes on 2 such cores instead of 15 (README: What a run produced)."
    )


def print_pipeline_report(
    configs: list[str],
    dataset: str,
    outputs: Path,
    minutes: float,
    error: str | None = None,
    real_faces: bool = False,
) -> int:
    """Print the results table and pointers; returns the process exit code (1 when the run failed). A run given
    `real_faces` (`--real-faces`) gets a column of them, so the transfer shows beside the test NME."""
    console = Console(width=max(Console().width, REPORT_WIDTH))
    table = Table(title=f"landmarkflow on {dataset} ({minutes:.1f} min)")
    columns = [column for column in COLUMNS if real_faces or column != REAL_COLUMN]
    for column in columns:
        table.add_column(column)
    for config_path in configs:
        cells = _model_cells(registered_model_name(load_config(config_path).model.name, dataset))
        table.add_row(*(cells.get(column, "-") for column in columns))
    console.print(table)
    freshness = latest_freshness(dataset)
    if freshness:
        console.print(f"Data:              {escape(freshness)}")
    if error:
        console.print(f"[red]pipeline failed:[/red] {error}")
    uri = tracking_uri()
    server = uri.startswith(("http://", "https://"))
    experiments = f"experiment {experiment_name(dataset)}; data validation in {data_experiment_name(dataset)}"
    console.print(f"MLflow store:      {uri}")
    browse = uri if server else "make mlflow-ui  ->  http://127.0.0.1:5000"
    console.print(f"  browse it:       {browse}  ({experiments})")
    console.print(f"Pipeline outputs:  {outputs.resolve()}  (manifest, validation report, checkpoints, ONNX)")
    predict = "landmarkflow predict --model models:/<model>-<dataset>@champion IMAGE"
    console.print(f"Use a champion:    {f'MLFLOW_TRACKING_URI={uri} ' if server else ''}.venv/bin/{predict}")
    return 1 if error else 0


REAL_COLUMN = "real NME"
"""The newest version's `real_nme`: evaluate's NME on the real faces its run was given, which `gate.max_real_nme`
reads. A model the run did not retrain shows the one measured when it was trained, if any."""
COLUMNS = (
    "model",
    "latest version",
    "gate",
    "test NME",
    "perturbed boxes",
    "mean-shape NME",
    "x mean shape",
    REAL_COLUMN,
    "champion",
    "champion NME",
)
"""The report's columns; a run without real faces leaves REAL_COLUMN out."""


def _model_cells(name: str) -> dict[str, str]:
    """One registered model's cells by column (its newest version's scores and its champion); a model without
    versions has its name only, and dashes elsewhere."""
    latest = latest_version(name)
    if latest is None:
        return {"model": name}
    metrics = MlflowClient().get_run(latest.run_id).data.metrics if latest.run_id else {}
    tags, champion = latest.tags, version_by_alias(name, CHAMPION)
    return {
        "model": name,
        "latest version": f"v{latest.version}",
        "gate": tags.get("gate", "-"),
        "test NME": _percent(tags.get("test_nme")),
        "perturbed boxes": _percent(metrics.get("test_nme_perturbed")),
        "mean-shape NME": _percent(tags.get("baseline_nme")),
        "x mean shape": _ratio(tags.get("baseline_nme"), tags.get("test_nme")),
        REAL_COLUMN: _percent(metrics.get(f"{REAL_PREFIX}_nme")),
        "champion": f"v{champion.version}" if champion else "none",
        "champion NME": _percent(champion.nme) if champion and champion.nme is not None else "-",
    }


def _percent(value: str | float | None) -> str:
    return f"{100 * float(value):.2f}%" if value not in (None, "", "None") else "-"


def _ratio(baseline: str | None, nme: str | None) -> str:
    """How many times below the mean shape's NME the model's NME is."""
    try:
        return f"{float(baseline) / float(nme):.2f}x"
    except (TypeError, ValueError, ZeroDivisionError):
        return "-"

"""The pipeline's steps over one working folder, for the CLI and tests (the KFP pipeline wires the same steps).

A workdir holds each step's result as `<step>.json` (the hand-off the components pass as artifacts) and the
step's files in `<step>/`. Every step function here loads what it needs from the workdir, calls the step of
`landmarkflow.steps` that the component calls too, and saves its result: so any one step can be rerun by hand
(`landmarkflow evaluate --workdir runs/hih`), and `run_workflow` is those same functions one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from landmarkflow import steps
from landmarkflow.config import load_config
from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.data.validation.result import ValidationResult
from landmarkflow.data.validation.run import require_valid

if TYPE_CHECKING:
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    from landmarkflow.evaluation.real_faces import RealFaces
    from landmarkflow.serving.kserve import Rollout

DEFAULT_SYNTH = SynthOptions()
MANIFEST_FILE = "manifest.parquet"
COMMAND_OF_STEP = {"ingest": "data ingest", "freshness": "data freshness", "validate": "data validate"}
"""The CLI subcommand of a step, where it is not the step's own name."""
Result = TypeVar("Result", bound=steps.StepResult)


@dataclass(frozen=True)
class Workdir:
    """One pipeline run on disk: `<path>/<step>.json` results and `<path>/<step>/` outputs.

    The path is made absolute, so that the paths results hold (the manifest, the checkpoint) still lead to their
    files when a later step runs from another folder."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).resolve())

    def result_file(self, step: str) -> Path:
        return self.path / f"{step}.json"

    def outputs(self, step: str) -> Path:
        return self.path / step

    def load(self, step: str, kind: type[Result]) -> Result:
        """The saved result of `step`, with an error naming the step to run first when there is none."""
        path = self.result_file(step)
        if not path.is_file():
            command = COMMAND_OF_STEP.get(step, step)
            raise FileNotFoundError(
                f"{path}: no {step} result here; run `landmarkflow {command}` for this workdir first"
            )
        return kind.load(path)

    def save(self, step: str, result: Result) -> Result:
        result.save(self.result_file(step))
        return result


def ingest_step(
    workdir: Path,
    dataset: str,
    root: str | Path,
    synth: SynthOptions | None = DEFAULT_SYNTH,
    repo_root: str | Path | None = None,
    remote: str | None = None,
) -> steps.IngestResult:
    """Native files -> `<workdir>/manifest.parquet` and ingest.json (data hash, files that could not be read);
    versioned and pushed to the DVC remote `remote` when given (see `steps.ingest`)."""
    work = Workdir(Path(workdir))
    ingested = steps.ingest(dataset, root, work.path / MANIFEST_FILE, synth=synth, repo_root=repo_root, remote=remote)
    return work.save("ingest", ingested)


def freshness_step(
    workdir: Path, configs: list[str | Path], ingest_result: str | Path | None = None, force: bool = False
) -> steps.FreshnessResult:
    """Which of `configs` have data to learn from in the ingested data (freshness.json); see `steps.check_freshness`."""
    work = Workdir(Path(workdir))
    ingested = steps.IngestResult.load(ingest_result) if ingest_result else work.load("ingest", steps.IngestResult)
    return work.save("freshness", steps.check_freshness(ingested, configs, force=force))


def validate_step(workdir: Path, ingest_result: str | Path | None = None) -> ValidationResult:
    """The data suite over the ingested manifest (reports in `<workdir>/validation/`), with drift from the champions'
    data when the workdir holds a freshness check; returns its result, which the caller checks (a failure is an
    outcome here, not an exception), and keeps its verdict as validate.json for `train_step`."""
    work = Workdir(Path(workdir))
    ingested = steps.IngestResult.load(ingest_result) if ingest_result else work.load("ingest", steps.IngestResult)
    checked = work.load("freshness", steps.FreshnessResult) if work.result_file("freshness").is_file() else None
    result = steps.validate(ingested, work.outputs("validation"), checked)
    failed = [failure.check for failure in result.failures]
    report = str(result.report_path or work.outputs("validation"))
    verdict = steps.ValidateResult(result.success, ingested.manifest, ingested.manifest_sha256, failed, report)
    work.save("validate", verdict)
    return result


def train_step(
    workdir: Path,
    config_path: str | Path,
    ingest_result: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    nproc: int = 1,
    resume_key: str | None = None,
) -> steps.TrainResult:
    """Train `config_path` on the ingested data (the workdir's ingest.json unless `ingest_result` names one), unless
    the workdir's validation failed on that data; `resume_key` continues the MLflow run of an earlier attempt with
    that key (see `steps.train`)."""
    work = Workdir(Path(workdir))
    ingested = steps.IngestResult.load(ingest_result) if ingest_result else work.load("ingest", steps.IngestResult)
    if work.result_file("validate").is_file():
        steps.require_validated(work.load("validate", steps.ValidateResult), ingested)
    trained = steps.train(config_path, ingested, work.outputs("train"), overrides, nproc=nproc, resume_key=resume_key)
    return work.save("train", trained)


def trainjob_step(
    workdir: Path,
    config_path: str | Path,
    nodes: int,
    gpus_per_node: int,
    image: str,
    secret: str,
    ingest_result: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainerV1alpha1TrainJob:
    """The TrainJob that trains `config_path` on the ingested data on `nodes` nodes (see `steps.trainjob`)."""
    work = Workdir(Path(workdir))
    ingested = steps.IngestResult.load(ingest_result) if ingest_result else work.load("ingest", steps.IngestResult)
    return steps.trainjob(config_path, ingested, nodes, gpus_per_node, image, secret, overrides)


def evaluate_step(workdir: Path, real_faces: RealFaces | None = None) -> steps.EvalResult:
    """Evaluate the workdir's trained model; `real_faces` adds the `real_*` metrics and plots."""
    work = Workdir(Path(workdir))
    trained = work.load("train", steps.TrainResult)
    return work.save("evaluate", steps.evaluate(trained, work.outputs("evaluate"), real_faces))


def export_step(workdir: Path) -> steps.ExportResult:
    work = Workdir(Path(workdir))
    trained = work.load("train", steps.TrainResult)
    return work.save("export", steps.export(trained, work.outputs("export")))


def gate_step(workdir: Path) -> steps.GateResult:
    work = Workdir(Path(workdir))
    gated = steps.gate(
        work.load("train", steps.TrainResult),
        work.load("evaluate", steps.EvalResult),
        work.load("export", steps.ExportResult),
    )
    return work.save("gate", gated)


def register_step(workdir: Path) -> steps.RegisterResult:
    work = Workdir(Path(workdir))
    registered = steps.register(
        work.load("train", steps.TrainResult),
        work.load("evaluate", steps.EvalResult),
        work.load("export", steps.ExportResult),
        work.load("gate", steps.GateResult),
    )
    return work.save("register", registered)


def promote_step(workdir: Path, rollout: Rollout | None = None) -> steps.PromoteResult:
    work = Workdir(Path(workdir))
    promoted = steps.promote(work.load("register", steps.RegisterResult), work.load("gate", steps.GateResult), rollout)
    return work.save("promote", promoted)


@dataclass
class WorkflowResult:
    """Every step's result."""

    ingest: steps.IngestResult
    train: steps.TrainResult
    evaluate: steps.EvalResult
    export: steps.ExportResult
    gate: steps.GateResult
    register: steps.RegisterResult
    promote: steps.PromoteResult


def run_workflow(
    config_path: str | Path,
    workdir: str | Path,
    overrides: dict[str, Any] | None = None,
    synth: SynthOptions | None = DEFAULT_SYNTH,
    repo_root: str | Path | None = None,
    nproc: int = 1,
) -> WorkflowResult:
    """ingest -> validate -> train -> evaluate -> export -> gate -> register -> promote, in this process.

    A failing validation raises DataValidationError before anything is trained or registered.
    """
    workdir = Path(workdir)
    config = load_config(config_path, overrides)
    ingested = ingest_step(workdir, config.data.dataset, config.data.root, synth=synth, repo_root=repo_root)
    require_valid(validate_step(workdir))
    trained = train_step(workdir, config_path, overrides=overrides, nproc=nproc)
    return WorkflowResult(
        ingest=ingested,
        train=trained,
        evaluate=evaluate_step(workdir),
        export=export_step(workdir),
        gate=gate_step(workdir),
        register=register_step(workdir),
        promote=promote_step(workdir),
    )

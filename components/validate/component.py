"""Validate: the data suite; a failure stops the pipeline before training. It hands on the models to train."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate(
    manifest: Input[Dataset], ingest_result: Input[Artifact], freshness_result: Input[Artifact], report: Output[HTML]
) -> list:
    """Run the Great Expectations suite and image checks over the manifest.

    Args:
        manifest: The manifest from ingest.
        ingest_result: Ingest's result (data hash and DVC remote).
        freshness_result: The freshness check's result: the models to train, and the data their champions were
            trained on, which the drift report compares with (fetching its profile from MLflow).
        report: The HTML validation report.

    Returns:
        The config files of the models to train, once the data passed.
    """
    import shutil
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.data.validation.rendering import print_summary
    from landmarkflow.data.validation.run import require_valid
    from landmarkflow.services import start_step

    scratch = start_step()
    ingested = steps.IngestResult.load(ingest_result.path)
    ingested.manifest = manifest.path
    report_dir = Path(report.path).with_name("validation")
    checked = steps.FreshnessResult.load(freshness_result.path)
    outcome = steps.validate(steps.materialise_data(ingested, None, scratch / "data"), report_dir, checked)
    print_summary(outcome)
    # The HTML artifact is the page itself. Its Data Docs link resolves in report_dir beside it under kfp.local; on a
    # cluster only the page is uploaded, and the whole folder is in the validate run's MLflow artifacts.
    shutil.copyfile(outcome.report_path, report.path)
    require_valid(outcome)
    return checked.retrain

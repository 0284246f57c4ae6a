"""What a local run says: the line it starts with when its bfloat16 models will train in float32, and the table it
ends with, read from a real MLflow store."""

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow import steps
from landmarkflow.pipeline_summary import REAL_COLUMN, float32_notice, print_pipeline_report
from tests.fakes import candidate

TINY = [f"configs/{model}_synthetic_tiny.yaml" for model in ("dsat", "rdfn", "hih", "lgcn")]


def test_a_cpu_without_bfloat16_names_the_models_it_slows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    notice = float32_notice(TINY)
    assert notice is not None
    assert notice.startswith("This CPU has no native bfloat16: RDFN, HIH, LGCN (train.amp) train in float32")
    assert "DSAT" not in notice  # its config trains in float32 everywhere: nothing changes for it
    assert float32_notice(["configs/hih_synthetic_tiny.yaml"]).startswith(
        "This CPU has no native bfloat16: HIH (train.amp) trains in float32"
    )


def test_no_notice_where_bfloat16_is_native_or_no_model_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert float32_notice(TINY) is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert float32_notice(["configs/dsat_synthetic_tiny.yaml"]) is None


def _report_rows(text: str) -> dict[str, list[str]]:
    """The table's cells by model, and its header under the key "model"."""
    rows = [[cell.strip() for cell in line.strip("┃│ ").replace("┃", "│").split("│")] for line in text.splitlines()]
    return {row[0]: row for row in rows if row[0] == "model" or row[0].endswith("-synthetic")}


def test_the_report_shows_each_model_and_a_real_face_column_for_a_run_given_real_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hih, dsat = candidate(tmp_path, "hih", 0.043, None), candidate(tmp_path, "dsat", 0.062, None)
    for made in (hih, dsat):
        assert steps.promote(made.register(), made.gated).promoted
    client = MlflowClient()
    client.log_metric(hih.trained.run_id, "test_nme_perturbed", 0.1037)
    client.log_metric(hih.trained.run_id, "real_nme", 0.0899)
    configs = [f"configs/{model}_synthetic_tiny.yaml" for model in ("hih", "dsat", "lgcn")]

    assert print_pipeline_report(configs, "synthetic", tmp_path, 12.3) == 0
    rows = _report_rows(capsys.readouterr().out)
    assert REAL_COLUMN not in rows["model"]  # a run without real faces: an older run's figure would mislead
    assert rows["hih-synthetic"] == [
        "hih-synthetic",
        "v1",
        "passed",
        "4.30%",
        "10.37%",
        "50.00%",
        "11.63x",
        "v1",
        "4.30%",
    ]
    assert rows["dsat-synthetic"][4] == "-"  # no perturbed-box NME logged
    assert rows["lgcn-synthetic"] == ["lgcn-synthetic", *["-"] * 8]  # nothing registered: a row of dashes

    assert print_pipeline_report(configs, "synthetic", tmp_path, 12.3, "train failed", real_faces=True) == 1
    out = capsys.readouterr().out
    rows = _report_rows(out)
    column = rows["model"].index(REAL_COLUMN)
    assert (column, rows["hih-synthetic"][column], rows["dsat-synthetic"][column]) == (7, "8.99%", "-")
    assert rows["lgcn-synthetic"] == ["lgcn-synthetic", *["-"] * 9]
    assert rows["dsat-synthetic"][-2:] == ["v1", "6.20%"]
    assert "pipeline failed: train failed" in out

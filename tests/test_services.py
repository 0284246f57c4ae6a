"""A pipeline step reaches its services only through its environment, and says which Secret to fix when a variable
is missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from landmarkflow.services import DEFAULT_SECRET, SECRET_NAME_ENV, TRACKING_URI, ServiceEnvError, require_tracking_uri


def test_the_tracking_uri_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACKING_URI, "http://mlflow.mlops.svc:5000")
    assert require_tracking_uri() == "http://mlflow.mlops.svc:5000"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_tracking_uri_names_the_variable_and_the_secret(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a silent local sqlite store: on a cluster it would vanish with the pod."""
    if value is None:
        monkeypatch.delenv(TRACKING_URI)
    else:
        monkeypatch.setenv(TRACKING_URI, value)
    monkeypatch.delenv(SECRET_NAME_ENV, raising=False)
    with pytest.raises(ServiceEnvError, match=f"{TRACKING_URI} is not set.*Secret '{DEFAULT_SECRET}'"):
        require_tracking_uri()
    monkeypatch.setenv(SECRET_NAME_ENV, "team-landmarkflow")
    with pytest.raises(ServiceEnvError, match=re.escape("Secret 'team-landmarkflow' (pipelines/compile.py --secret)")):
        require_tracking_uri()


def test_a_step_starts_in_a_fresh_empty_folder_that_goes_with_its_process(tmp_path: Path) -> None:
    """As on a pod's private disk: nothing of the folder it was started in, and nothing left behind."""
    (tmp_path / "left_by_another_step.txt").write_text("not for you")
    code = "from landmarkflow.services import start_step\nimport os\nprint(start_step(), os.listdir('.'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    scratch, listing = done.stdout.split()
    assert listing == "[]" and Path(scratch) != tmp_path and Path(scratch) == Path(scratch).resolve()
    assert not Path(scratch).exists()

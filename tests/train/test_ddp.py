"""DDP with real processes: torchrun starting 2 gloo ranks on the CPU, each on one thread, beside one process on
the same global batch. A small LGCN (the paper's momentum SGD, its loss summed over the batch) on 24 px crops of
synthetic faces: 7 steps an epoch."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from landmarkflow.config import load_config
from landmarkflow.data.synthetic import synthesize
from landmarkflow.models.zoo import build_model
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.steps import IngestResult
from landmarkflow.tracking import TELEMETRY_OFF, ensure_experiment, experiment_name, setup_tracking
from landmarkflow.train.checkpoint import LAST, load_state
from landmarkflow.train.durable import CHECKPOINT_DIR, RESUME_KEY_TAG
from landmarkflow.train.trainer import seed_everything
from landmarkflow.workflow import MANIFEST_FILE, ingest_step
from tests.fakes import assert_same_weights

pytestmark = pytest.mark.slow
EPOCHS = 20
PROBE = Path(__file__).with_name("ddp_probe.py")
OVERRIDES = {
    "model": {
        "filters": 8,
        "kernel_size": 5,
        "input_size": 24,
        "local_5x5_layers": 1,
        "local_3x3_layers": 1,
        "global_layers": 1,
    },
    "train": {"epochs": EPOCHS, "batch_size": 8, "lr": 8.0e-3, "milestones": [15], "amp": False, "num_workers": 0},
    "eval": {"batch_size": 16},
}


@dataclass(frozen=True)
class Runs:
    """One uninterrupted training on one process and one on two, of the same config and data."""

    config: Path
    ingested: IngestResult
    one: Path
    two: Path
    two_run_id: str
    tracking_uri: str
    probe: Path


def _config(folder: Path) -> Path:
    raw = yaml.safe_load(Path("configs/lgcn_synthetic_tiny.yaml").read_text())
    for section, values in OVERRIDES.items():
        raw[section].update(values)
    path = folder / "lgcn_ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _env(tracking_uri: str, artifacts: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **TELEMETRY_OFF,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "LANDMARKFLOW_ARTIFACTS": str(artifacts),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def _finish(process: subprocess.Popen[bytes], log: Path, timeout: float = 400) -> str:
    assert process.wait(timeout=timeout) == 0, log.read_text()[-4000:]
    return log.read_text()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IngestResult]:
    """The config, and 63 ingested train faces (7 of them held out for validation)."""
    folder = tmp_path_factory.mktemp("data")
    synthesize(folder / "faces", num_train=70, num_test=2, seed=3, image_size=64, progress=False)
    return _config(folder), ingest_step(folder / "ingest", "synthetic", folder / "faces", synth=None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data: tuple[Path, IngestResult]) -> Runs:
    config, ingested = data
    folder = tmp_path_factory.mktemp("ddp")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("LANDMARKFLOW_ARTIFACTS", str(folder / "artifacts"))
        setup_tracking()  # a module fixture runs before the per-test store is set: point MLflow here explicitly
        run_id = MlflowClient(uri).create_run(ensure_experiment(experiment_name("synthetic"))).info.run_id
    probe = folder / "probe"
    probe.mkdir()
    env = _env(uri, folder / "artifacts", PROBE_DIR=str(probe))
    data = ["--config", str(config), "--manifest", ingested.manifest, "--root", ingested.root]
    one_command = [sys.executable, "-m", "landmarkflow.train", *data, "--out", str(folder / "one")]
    two_command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(PROBE)]
    two_command += [*data, "--out", str(folder / "two"), "--run-id", run_id]
    with (folder / "one.log").open("wb") as one_log, (folder / "two.log").open("wb") as two_log:
        one = subprocess.Popen(one_command, stdout=one_log, stderr=subprocess.STDOUT, env=env)
        two = subprocess.Popen(two_command, stdout=two_log, stderr=subprocess.STDOUT, env=env)
    _finish(one, folder / "one.log")
    _finish(two, folder / "two.log")
    return Runs(config, ingested, folder / "one", folder / "two", run_id, uri, probe)


def test_two_processes_follow_the_single_process_loss_trajectory(runs: Runs) -> None:
    """Each of 2 ranks takes 4 of the global batch of 8 (4 of the same 8 faces as the single process's step) and DDP
    averages their gradients: 140 SGD steps should go alike.

    Where the runs legitimately differ: BatchNorm normalises each rank's 4 faces by their own statistics (and keeps
    running statistics of rank 0's alone) where one process normalises all 8 together, and float sums run in another
    order. From the same initial weights the first epoch's losses agree to ~1e-6; the difference then grows as
    training amplifies it, to +-0.2 of a loss of ~60 (which falls by only 2.3 here: LGCN's loss is mostly the targets'
    energy). So the tolerances are: the first epoch within 1e-4 of the loss; the curves, averaged over 5 epochs (35
    steps) to take out noise that both runs share, within 10% of the loss the single process shed over the run
    (measured: 1.4%); the weights moved as far from the initial ones (within 5%; measured: 1.2%). A step that is wrong,
    e.g. DDP's gradient average halving LGCN's batch-summed gradient, misses all three by far (measured on earlier
    faces: 1.6e-3 of the loss in the first epoch, 38% of the shed loss, and half as far). At lr 4e-3 the faces of the
    300W-mean renderer shed only 1.8% of the loss, within reach of the runs' divergence (0.2): hence lr 8e-3.
    """
    one = load_state(runs.one / CHECKPOINT_FILE)
    two = load_state(runs.two / CHECKPOINT_FILE)
    one_loss, two_loss = one["history"]["train_loss"], two["history"]["train_loss"]
    assert len(one_loss) == len(two_loss) == EPOCHS
    assert abs(one_loss[0] - two_loss[0]) < 1e-4 * one_loss[0]
    shed = one_loss[0] - one_loss[-1]
    assert shed > 0.02 * one_loss[0]  # it did learn: the comparison below is not between two flat lines
    for start in range(0, EPOCHS, 5):
        window = slice(start, start + 5)
        assert abs(statistics.mean(one_loss[window]) - statistics.mean(two_loss[window])) < 0.1 * shed, start

    config = load_config(runs.config)
    seed_everything(config.train.seed)
    model = build_model(config.model)
    initial = model.state_dict()
    weights = [name for name, _ in model.named_parameters()]  # not BatchNorm's statistics, nor the calibration's fit

    def moved(state: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([(state[name] - initial[name]).flatten() for name in weights])

    travelled = moved(two["model"]).norm() / moved(one["model"]).norm()
    assert abs(float(travelled) - 1) < 0.05


def test_rank_zero_alone_logs_and_writes_checkpoints(runs: Runs) -> None:
    """Both ranks ran the probe; rank 1 never wrote a checkpoint nor called MLflow. Rank 0 wrote last.pt once an
    epoch and then model.pt, uploaded each last.pt to the run, and logged each epoch's metrics once, into the one run
    the job was given."""
    assert not (runs.probe / "rank1.jsonl").exists()
    notes = [json.loads(line) for line in (runs.probe / "rank0.jsonl").read_text().splitlines()]
    assert [note["paths"] for note in notes if note["call"] == "save_checkpoint"] == [[LAST]] * EPOCHS + [
        [CHECKPOINT_FILE]
    ]
    assert [note["paths"] for note in notes if note["call"] == "upload_checkpoint"] == [[LAST]] * EPOCHS
    assert [note["step"] for note in notes if note["call"] == "log_metrics"] == list(range(1, EPOCHS + 1))
    assert sorted(path.name for path in runs.two.iterdir()) == sorted([LAST, CHECKPOINT_FILE])

    client = MlflowClient(runs.tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name("synthetic"))
    assert [run.info.run_id for run in client.search_runs([experiment.experiment_id])] == [runs.two_run_id]
    history = load_state(runs.two / CHECKPOINT_FILE)["history"]
    for metric in ("train_loss", "val_nme"):
        curve = sorted((m.step, m.value) for m in client.get_metric_history(runs.two_run_id, metric))
        logged = [(epoch + 1, value) for epoch, value in enumerate(history[metric]) if math.isfinite(value)]
        assert curve == logged, metric
    uploaded = [item.path for item in client.list_artifacts(runs.two_run_id, CHECKPOINT_DIR)]
    assert uploaded == [f"{CHECKPOINT_DIR}/{LAST}"]


def _pod_folder(folder: Path, ingested: IngestResult) -> Path:
    """A fresh workdir holding only what a pod gets as input artifacts: the manifest and ingest's result."""
    folder.mkdir()
    (folder / MANIFEST_FILE).write_bytes(Path(ingested.manifest).read_bytes())
    IngestResult(**{**vars(ingested), "manifest": str(folder / MANIFEST_FILE)}).save(folder / "ingest.json")
    return folder


def _train(workdir: Path, config: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """`landmarkflow train --nproc 2`, on the test's MLflow store."""
    command = [sys.executable, "-m", "landmarkflow.cli", "train", "--config", str(config), "--workdir", str(workdir)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "--nproc", "2", *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(os.environ["MLFLOW_TRACKING_URI"], Path(os.environ["LANDMARKFLOW_ARTIFACTS"])),
        )


def _wait_for(found: object, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 300
    while not found():
        assert process.poll() is None, f"exited before {what}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no {what} in 300 s:\n{log.read_text()[-4000:]}"
        time.sleep(0.05)


def _only_run(key: str) -> str | None:
    """The run tagged with resume key `key` in the test's store, once there is one."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name("synthetic"))
    found = client.search_runs([experiment.experiment_id], f"tags.{RESUME_KEY_TAG} = '{key}'") if experiment else []
    return found[0].info.run_id if found else None


def test_a_ddp_job_killed_after_an_epoch_resumes_to_the_uninterrupted_weights(runs: Runs, tmp_path: Path) -> None:
    """The job (step, torchrun and both ranks) is SIGKILLed once it has uploaded a checkpoint, and started again in an
    empty folder with the same resume key: it continues the same run from that checkpoint, every rank restarting from
    rank 0's weights, optimiser, schedule and generators, and ends with exactly the uninterrupted 2-process weights
    (2 gloo ranks sum each gradient in one order, so the arithmetic repeats bit for bit)."""
    key = "ddp-job/train-1"
    setup_tracking()  # the store exists before the job opens it and this test polls it
    first = _train(
        _pod_folder(tmp_path / "attempt1", runs.ingested), runs.config, tmp_path / "1.log", "--resume-key", key
    )
    _wait_for(lambda: _only_run(key), first, tmp_path / "1.log", "MLflow run")
    run_id = _only_run(key)
    client = MlflowClient()
    # An epoch's metrics follow its checkpoint's upload, which the local store makes by copying the file.
    _wait_for(lambda: client.get_metric_history(run_id, "train_loss"), first, tmp_path / "1.log", "first epoch")
    _kill_job(first.pid)
    first.wait(timeout=30)

    second = _train(
        _pod_folder(tmp_path / "attempt2", runs.ingested), runs.config, tmp_path / "2.log", "--resume-key", key
    )
    log = _finish(second, tmp_path / "2.log")
    resumed_at = re.search(r"resumed from \S+ at epoch (\d+)", log)
    assert f"continuing run {run_id}" in log and resumed_at, log[-4000:]
    assert 2 <= int(resumed_at.group(1)) <= EPOCHS
    assert [m.step for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)] == list(
        range(1, EPOCHS + 1)
    )
    want = load_state(runs.two / CHECKPOINT_FILE)["model"]
    assert_same_weights(want, load_state(tmp_path / "attempt2" / "train" / CHECKPOINT_FILE)["model"])


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children] + [grand for child in children for grand in _descendants(int(child))]


def _kill_job(pid: int) -> None:
    """SIGKILL a job and every process under it, as a pod dies (torchrun starts each rank in a session of its own)."""
    for each in [pid, *_descendants(pid)]:
        os.kill(each, signal.SIGKILL)


def _rank_pid(job: int, rank: int) -> int | None:
    for pid in _descendants(job):
        try:
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    return None


def test_a_rank_killed_mid_epoch_ends_the_job_with_an_error_naming_it(
    data: tuple[Path, IngestResult], tmp_path: Path
) -> None:
    """torchrun sees the dead rank within its monitor interval, stops the other (which would otherwise wait in the
    gradient all-reduce) and fails; the train step's error says which rank died and how, and the run is FAILED."""
    config, ingested = data
    workdir = _pod_folder(tmp_path / "work", ingested)
    job = _train(workdir, config, tmp_path / "job.log", "--resume-key", "ddp-job/dies")
    _wait_for(lambda: (workdir / "train" / LAST).is_file(), job, tmp_path / "job.log", "first checkpoint")
    rank_one = _rank_pid(job.pid, 1)
    assert rank_one is not None
    os.kill(rank_one, signal.SIGKILL)
    killed = time.monotonic()
    code = job.wait(timeout=120)
    took = time.monotonic() - killed
    log = " ".join((tmp_path / "job.log").read_text().split())  # the CLI wraps its lines
    assert code != 0 and took < 30, log[-4000:]
    assert f"error: distributed training failed: rank 1 (local rank 1, pid {rank_one}) was killed by SIGKILL" in log
    assert MlflowClient().get_run(_only_run("ddp-job/dies")).info.status == RunStatus.to_string(RunStatus.FAILED)

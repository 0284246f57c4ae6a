"""Data versioning with DVC: track and push a data folder, pull it back, pin it by its `.dvc` md5.

DVC runs as a subprocess (`python -m dvc` of this interpreter) rather than in-process: each call gets
fresh state, releases DVC's repo lock when it exits, and cannot leave DVC's logging or signal handlers
behind in a long-lived caller. The `.dvc` file's md5 (`<hash>.dir` for a folder) is the data hash that
lineage tags carry. Credentials never go into tracked files: dvc-s3 reads AWS_* from the environment.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from landmarkflow.data.dvc_remote import DEFAULT_RETRY, RetryPolicy
from landmarkflow.tracking import TELEMETRY_OFF

log = logging.getLogger(__name__)

PIPELINE_REMOTE = "pipeline"
"""The name under which a remote given by URL (the pipeline's `dvc_remote_url`) is configured."""
DVC_TIMEOUT_S = 3600  # a push of a large dataset to a slow remote; a hung transfer still ends
REMOTE_DOWN = (
    "Could not connect to the endpoint URL",
    "Connect timeout on endpoint URL",
    "Read timeout on endpoint URL",
    "Connection was closed before we received a valid response",
    "ServiceUnavailable",
    "SlowDown",
    "InternalError",
    "RequestTimeout",
)
"""What DVC reports (botocore's words, S3's error codes) when the remote failed rather than refused: a push or pull
that ends so is run again within bounds (both move only the objects still missing); any other failure (refused
credentials, no such bucket) ends it at once."""


class VersioningError(RuntimeError):
    """A DVC or git command failed, or a `.dvc` file is not what it should be; the message says which."""


@dataclass(frozen=True)
class DataVersion:
    """One pinned version of a tracked path, as its `.dvc` file records it."""

    md5: str
    dvc_file: Path
    nfiles: int
    size: int
    remote: str | None
    path: Path

    def to_dict(self) -> dict[str, object]:
        return {
            "md5": self.md5,
            "dvc_file": str(self.dvc_file),
            "nfiles": self.nfiles,
            "size": self.size,
            "remote": self.remote,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class RevisionData:
    """Data materialised from a git revision: where it is, its version, and the commit the revision named."""

    data_dir: Path
    version: DataVersion
    commit: str


def read_version(dvc_file: Path) -> DataVersion:
    """Parse `outs[0]` of a `.dvc` file (md5, size, nfiles; `hash: md5` marks a DVC 3 entry)."""
    dvc_file = Path(dvc_file)
    try:
        content = yaml.safe_load(dvc_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise VersioningError(f"{dvc_file}: cannot read the .dvc file ({exc})") from exc
    outs = content.get("outs") if isinstance(content, dict) else None
    if not outs or not isinstance(outs[0], dict) or "md5" not in outs[0] or "path" not in outs[0]:
        raise VersioningError(f"{dvc_file}: no `outs` entry with md5 and path; is it a DVC 3 .dvc file?")
    out = outs[0]
    if out.get("hash", "md5") != "md5":
        raise VersioningError(f"{dvc_file}: unsupported hash {out['hash']!r}, expected md5")
    md5 = str(out["md5"])
    return DataVersion(
        md5=md5,
        dvc_file=dvc_file,
        nfiles=int(out.get("nfiles", 0 if md5.endswith(".dir") else 1)),
        size=int(out.get("size", 0)),
        remote=out.get("remote"),
        path=dvc_file.parent / str(out["path"]),
    )


def run_dvc(args: Sequence[str], repo_root: Path, timeout_s: float = DVC_TIMEOUT_S) -> str:
    """Run `dvc <args>` in `repo_root` with telemetry off; return stdout, raise VersioningError on failure."""
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]  # queue behind another step's DVC call
    return _run(command, Path(repo_root), f"dvc {' '.join(args)}", timeout_s)


def track(
    path: Path, repo_root: Path, push: bool = True, remote: str | None = None, retry: RetryPolicy = DEFAULT_RETRY
) -> DataVersion:
    """`dvc add` a folder (writing `<path>.dvc`), then push it; the returned version names the remote pushed to.

    Idempotent: unchanged data keeps its md5, DVC re-hashes nothing it has seen (its state db keys on
    mtime and inode), and a push of objects the remote already has transfers nothing.
    """
    repo_root = Path(repo_root).resolve()
    target = _inside(Path(path), repo_root)
    if not (repo_root / target).exists():
        raise VersioningError(f"cannot track {repo_root / target}: no such file or folder")
    name = (remote or default_remote(repo_root)) if push else None  # no remote: fail before changing anything
    run_dvc(["add", target.as_posix()], repo_root)
    dvc_file = repo_root / f"{target.as_posix()}.dvc"
    return _push(dvc_file, repo_root, name, None, retry) if name else read_version(dvc_file)


def push(
    target: Path | str,
    repo_root: Path,
    remote: str | None = None,
    jobs: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> DataVersion:
    """Upload the cache objects of a `.dvc` file (or tracked path) to `remote` (default: the default remote)."""
    repo_root = Path(repo_root).resolve()
    return _push(_dvc_file(target, repo_root), repo_root, remote, jobs, retry)


def pull(
    target: Path | str,
    repo_root: Path,
    remote: str | None = None,
    jobs: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> DataVersion:
    """Fetch a `.dvc` file's data from `remote` (default: the default remote) and check it out in the workspace.

    The workspace copy is forced to the `.dvc` file's version: local edits to tracked files are overwritten.
    """
    repo_root = Path(repo_root).resolve()
    dvc_file = _dvc_file(target, repo_root)
    name = remote or default_remote(repo_root)
    _transfer(["pull", "--force", "-r", name, *_jobs(jobs), _rel(dvc_file, repo_root)], repo_root, retry)
    return replace(read_version(dvc_file), remote=name)


def _transfer(args: Sequence[str], repo_root: Path, retry: RetryPolicy = DEFAULT_RETRY) -> str:
    """`run_dvc` for a push or pull: run again while the remote is down (REMOTE_DOWN), at most `retry.attempts`
    times, then fail naming the attempts."""
    return retry.run(
        lambda: run_dvc(args, repo_root),
        refusal=lambda exc: None if isinstance(exc, VersioningError) and _remote_down(exc) else exc,
        exhausted=lambda exc: VersioningError(f"{exc}\nthe remote did not answer in {retry.attempts} attempts"),
        describe=lambda _: f"dvc {args[0]}: the remote did not answer",
        logger=log,
    )


def _remote_down(exc: VersioningError) -> bool:
    return any(sign in str(exc) for sign in REMOTE_DOWN)


def status(target: Path | str, repo_root: Path, cloud: bool = False, remote: str | None = None) -> dict[str, Any]:
    """Whether the workspace (or, with `cloud`, the remote) matches the `.dvc` file.

    Returns `{"in_sync": bool, "changes": <dvc status --json output>}`; `changes` is empty when in sync.
    """
    repo_root = Path(repo_root).resolve()
    dvc_file = _dvc_file(target, repo_root)
    args = ["status", "--json"]
    if cloud:
        args += ["--cloud", "-r", remote or default_remote(repo_root)]
    changes = json.loads(run_dvc([*args, _rel(dvc_file, repo_root)], repo_root) or "{}")
    return {"in_sync": not changes, "changes": changes}


def default_remote(repo_root: Path) -> str:
    """The repo's default remote (`core.remote`, merged over DVC's config levels like the CLI does)."""
    from dvc.config import Config, ConfigError

    dvc_dir = Path(repo_root) / ".dvc"
    if not dvc_dir.is_dir():
        raise VersioningError(f"{repo_root} is not a DVC repo (no .dvc/); run `dvc init` there")
    try:
        name = Config(dvc_dir=str(dvc_dir))["core"].get("remote")
    except ConfigError as exc:
        raise VersioningError(f"{repo_root}: unreadable DVC config ({exc})") from exc
    if not name:
        raise VersioningError(
            f"{repo_root}: no default DVC remote; add one with `dvc remote add -d <name> <url>` or pass remote="
        )
    return str(name)


def remote_url(repo_root: Path, name: str) -> str:
    """The URL of remote `name` as DVC resolves it (a relative local remote becomes an absolute path)."""
    url = _remotes(Path(repo_root)).get(name)
    if url is None:
        raise VersioningError(f"{repo_root}: no DVC remote named {name!r}")
    return url


def remote_for_url(repo_root: Path, url: str) -> str:
    """The name of the repo's remote at `url`; one is added to the git-ignored `.dvc/config.local` if none is.

    A pipeline names its remote by URL (where pods fetch from), while `dvc push` takes a remote's name.
    """
    repo_root = Path(repo_root).resolve()
    wanted = normalise_remote_url(url)
    for name, known in _remotes(repo_root).items():
        if normalise_remote_url(known) == wanted:
            return name
    run_dvc(["remote", "add", "--local", "--force", PIPELINE_REMOTE, wanted], repo_root)
    return PIPELINE_REMOTE


def normalise_remote_url(url: str) -> str:
    """An S3 URL without a trailing slash, or a local remote as an absolute path (how a pod is told)."""
    if url.startswith("s3://"):
        return url.rstrip("/")
    if "://" in url and not url.startswith("file://"):
        raise VersioningError(f"unsupported DVC remote {url!r}: expected s3://bucket/prefix or a local folder")
    return str(Path(url.removeprefix("file://")).expanduser().resolve())


def track_outside(folder: Path, remote: str) -> str:
    """Version a folder that no DVC repo holds, push it to the remote at URL `remote`; return its `.dir` md5.

    A throwaway DVC repo (no git) takes a hard-linked copy of the folder as its `data/` (a plain copy across
    file systems), `dvc add`s and pushes it, and is removed. The hash is the folder's own `.dir` md5,
    the same a `dvc add` of the folder anywhere gives. DVC copies into its cache rather than linking, so
    the original files are never touched (nor made read-only).
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise VersioningError(f"cannot version {folder}: not a folder")
    url = normalise_remote_url(remote)
    with tempfile.TemporaryDirectory(prefix="landmarkflow-dvc-") as scratch:
        repo = Path(scratch)
        run_dvc(["init", "--no-scm", "--quiet"], repo)
        run_dvc(["remote", "add", "--default", PIPELINE_REMOTE, url], repo)
        shutil.copytree(folder, repo / "data", copy_function=_link_or_copy)
        return track(repo / "data", repo, remote=PIPELINE_REMOTE).md5


def configure_s3_remote(
    repo_root: Path, name: str, url: str, endpoint_url: str | None = None, make_default: bool = False
) -> None:
    """Add or replace an S3 remote in `.dvc/config`: url and endpoint only, never credentials.

    Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a profile, or
    IRSA on a cluster), which dvc-s3 reads through boto; nothing secret lands in a tracked file.
    """
    if not url.startswith("s3://"):
        raise VersioningError(f"S3 remote url must start with s3://, got {url!r}")
    repo_root = Path(repo_root).resolve()
    run_dvc(["remote", "add", "--force", *(["--default"] if make_default else []), name, url], repo_root)
    if endpoint_url:
        run_dvc(["remote", "modify", name, "endpointurl", endpoint_url], repo_root)


def checkout_revision(
    repo: str | Path,
    rev: str,
    target_dir: Path,
    dvc_file: str = "data.dvc",
    remote: str | None = None,
    remote_url: str | None = None,
    jobs: int | None = None,
) -> RevisionData:
    """Materialise the data pinned at git revision `rev` of `repo` into `target_dir`, as a cluster pod does.

    Shallow-fetches just that revision (branch, tag or commit), then `dvc pull`s `dvc_file`. `remote_url`
    overrides the remote's URL for this checkout only (written with `--local`, so to the clone's git-ignored
    `.dvc/config.local`): a pod may reach the object store at another bucket path than a laptop, and a
    repo's relative local remote means nothing inside a fresh clone. An S3 endpoint comes from
    AWS_ENDPOINT_URL in the environment, which DVC's S3 client reads like boto3 does.
    """
    target_dir = Path(target_dir).resolve()
    if target_dir.exists() and any(target_dir.iterdir()):
        raise VersioningError(f"{target_dir} is not empty; checkout_revision needs a fresh folder")
    source = Path(repo)
    url = source.resolve().as_uri() if source.exists() else str(repo)  # file:// so that --depth applies
    target_dir.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(target_dir)]
    _run([*git, "init", "--quiet"], target_dir)
    _run([*git, "remote", "add", "origin", url], target_dir)
    _run([*git, "fetch", "--depth", "1", "origin", rev], target_dir)
    _run([*git, "-c", "advice.detachedHead=false", "checkout", "FETCH_HEAD"], target_dir)
    commit = _run([*git, "rev-parse", "HEAD"], target_dir).strip()
    if not (target_dir / dvc_file).is_file():
        raise VersioningError(f"{repo}@{rev} has no {dvc_file}")
    name = remote or default_remote(target_dir)
    if remote_url:
        run_dvc(["remote", "modify", "--local", name, "url", normalise_remote_url(remote_url)], target_dir)
    version = pull(target_dir / dvc_file, target_dir, name, jobs)
    return RevisionData(data_dir=version.path, version=version, commit=commit)


def _run(command: Sequence[str], cwd: Path, label: str | None = None, timeout_s: float = DVC_TIMEOUT_S) -> str:
    label = label or " ".join(command)
    env = {**os.environ, **TELEMETRY_OFF, "GIT_TERMINAL_PROMPT": "0"}  # a pod must fail, not wait for a password
    try:
        done = subprocess.run(
            list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError as exc:
        raise VersioningError(f"`{label}`: {command[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise VersioningError(f"`{label}` in {cwd} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip())[-2000:]
        raise VersioningError(f"`{label}` in {cwd} failed with exit status {done.returncode}:\n{detail}")
    return done.stdout


def _push(dvc_file: Path, repo_root: Path, remote: str | None, jobs: int | None, retry: RetryPolicy) -> DataVersion:
    name = remote or default_remote(repo_root)
    _transfer(["push", "-r", name, *_jobs(jobs), _rel(dvc_file, repo_root)], repo_root, retry)
    return replace(read_version(dvc_file), remote=name)


def _inside(path: Path, repo_root: Path) -> Path:
    """`path` relative to `repo_root` (relative inputs are taken as relative to it); refuse paths outside."""
    absolute = (path if path.is_absolute() else repo_root / path).resolve()
    if not absolute.is_relative_to(repo_root) or absolute == repo_root:
        raise VersioningError(f"{path} is not inside the DVC repo {repo_root}")
    return absolute.relative_to(repo_root)


def _dvc_file(target: Path | str, repo_root: Path) -> Path:
    """The `.dvc` file of a target given as that file or as the tracked path."""
    relative = _inside(Path(target), repo_root)
    dvc_file = repo_root / (relative if relative.suffix == ".dvc" else Path(f"{relative.as_posix()}.dvc"))
    if not dvc_file.is_file():
        raise VersioningError(f"{dvc_file} does not exist; track the data first (`dvc add`)")
    return dvc_file


def _remotes(repo_root: Path) -> dict[str, str]:
    """Every remote's name and resolved URL, merged over DVC's config levels (config.local included)."""
    from dvc.config import Config, ConfigError

    dvc_dir = repo_root / ".dvc"
    if not dvc_dir.is_dir():
        raise VersioningError(f"{repo_root} is not a DVC repo (no .dvc/); run `dvc init` there")
    try:
        remotes = Config(dvc_dir=str(dvc_dir))["remote"]
    except ConfigError as exc:
        raise VersioningError(f"{repo_root}: unreadable DVC config ({exc})") from exc
    return {name: str(conf["url"]) for name, conf in remotes.items()}


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _rel(path: Path, repo_root: Path) -> str:
    return path.relative_to(repo_root).as_posix()


def _jobs(jobs: int | None) -> list[str]:
    return ["--jobs", str(jobs)] if jobs else []

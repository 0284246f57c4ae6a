"""The image every step runs in, tested without a container engine: what components/Dockerfile copies (less what
.dockerignore leaves out) installs the package and its CLI, the image carries the commit it was built from, and
`make image` / `image-push` / `pipeline-compile` agree on its tag."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from landmarkflow.registry import GIT_COMMIT_ENV
from pipelines.landmarks import DEFAULT_CONFIGS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "components" / "Dockerfile"
REGISTRY = "registry.example.com/team"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(keyword.upper(), rest.strip()) for keyword, _, rest in (line.partition(" ") for line in lines)]


def ignore_patterns(context: Path) -> list[re.Pattern[str]]:
    """.dockerignore as regexes over `path/`: `*` and `?` within a segment, `**` across segments (what Docker
    supports, less `!` exceptions, which this file does not use)."""
    patterns = []
    for line in (context / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "this test's .dockerignore reader does not know `!` exceptions"
        regex = ""
        for part in line.strip("/").split("/"):
            if part == "**":
                regex += "(?:[^/]+/)*"
            else:
                regex += "".join({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)) for c in part) + "/"
        patterns.append(re.compile(regex))
    return patterns


def ignored(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    """Docker leaves a path out when it or a folder above it matches."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) + "/" for n in range(len(parts))]
    return any(pattern.fullmatch(prefix) for pattern in patterns for prefix in prefixes)


def copy_into(stage: Path, arguments: str, context: Path, patterns: list[re.Pattern[str]]) -> None:
    """One COPY: files to a destination (a folder when it ends in /), a folder's contents into the destination."""
    *sources, destination = [arg for arg in arguments.split() if not arg.startswith("--")]
    target = stage / destination
    for source in sources:
        path = context / source
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(context).as_posix()
            if ignored(relative, patterns):
                continue
            if path.is_dir():
                out = target / file.relative_to(path)
            else:
                out = target / file.name if destination.endswith("/") else target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, out)


def fresh_venv(path: Path) -> Path:
    """A venv of its own that sees the project venv's packages through a .pth file (this machine cannot download
    them), so what it imports from landmarkflow is only what gets installed into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    (site_packages,) = path.glob("lib/python*/site-packages")
    (site_packages / "project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path / "bin"


def test_what_the_dockerfile_copies_installs_the_cli(tmp_path: Path) -> None:
    steps = instructions(DOCKERFILE)
    (workdir,) = [args for keyword, args in steps if keyword == "WORKDIR"]
    stage = tmp_path / "image" / workdir.lstrip("/")
    bin_dir = fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    patterns = ignore_patterns(REPO)
    installs = 0
    for keyword, args in steps:
        if keyword == "COPY":
            copy_into(stage, args, REPO, patterns)
        elif keyword == "RUN" and re.search(r'pip install "\.', args):
            command = [str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "."]
            done = subprocess.run(command, cwd=stage, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            installs += 1
    assert installs == 1

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import landmarkflow; print(landmarkflow.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv")
    cli = subprocess.run(
        [str(bin_dir / "landmarkflow"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "Usage: landmarkflow" in cli.stdout and "train" in cli.stdout
    # The pipeline names its configs relative to the image's WORKDIR, where a step starts.
    assert not [config for config in DEFAULT_CONFIGS if not (stage / config).is_file()]


def test_the_image_leaves_out_caches_and_local_dvc_state() -> None:
    """.dvc/config.local may hold credentials and .dvc/cache whole datasets; neither belongs in a shared image."""
    patterns = ignore_patterns(REPO)
    for path in (".dvc/config.local", ".dvc/cache/files/md5/ab/cdef", "src/landmarkflow/__pycache__/cli.pyc"):
        assert ignored(path, patterns), path
    for path in (".dvc/config", "src/landmarkflow/cli.py", "configs/hih_synthetic_tiny.yaml"):
        assert not ignored(path, patterns), path


def test_the_image_carries_the_commit_it_was_built_from() -> None:
    """registry.git_commit() reads the variable in a pod; `make image` passes the build argument."""
    steps = instructions(DOCKERFILE)
    assert ("ARG", "GIT_COMMIT=unknown") in steps
    assert ("ENV", f"{GIT_COMMIT_ENV}=${{GIT_COMMIT}}") in steps


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """A committed copy of the Makefile (and the pyproject.toml its setup rule names), a fake `docker` that logs its
    arguments, and a PATH that has only it, git and make: nothing is built or pushed."""
    repo, tools = tmp_path / "repo", tmp_path / "bin"
    repo.mkdir()
    tools.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, repo / name)
    for tool in ("git", "make"):
        (tools / tool).symlink_to(shutil.which(tool))
    docker = tools / "docker"
    docker.write_text('#!/bin/bash\necho "docker $*" >> "$ENGINE_LOG"\n')
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": str(tools), "HOME": str(tmp_path), "ENGINE_LOG": str(tmp_path / "engine.log")}
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "Makefile"]):
        _run([*git, *command], repo, env).check_returncode()
    head = _run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    return repo, head, env


def test_make_tags_pushes_and_compiles_against_the_commit(checkout: tuple[Path, str, dict[str, str]]) -> None:
    repo, head, env = checkout
    pushed = _run(["make", "image-push", f"REGISTRY={REGISTRY}"], repo, env)
    assert pushed.returncode == 0, pushed.stderr
    assert Path(env["ENGINE_LOG"]).read_text().splitlines() == [
        f"docker build -f components/Dockerfile --build-arg GIT_COMMIT={head} -t landmarkflow-python:{head} .",
        f"docker tag landmarkflow-python:{head} {REGISTRY}/landmarkflow-python:{head}",
        f"docker push {REGISTRY}/landmarkflow-python:{head}",
    ]
    compile_line = _run(["make", "-n", "pipeline-compile", f"REGISTRY={REGISTRY}", "SECRET=team-mlflow"], repo, env)
    assert f"LANDMARKFLOW_IMAGE={REGISTRY}/landmarkflow-python:{head} " in compile_line.stdout
    assert '--secret "team-mlflow"' in compile_line.stdout


def test_a_dirty_tree_builds_as_dirty_and_is_never_pushed(checkout: tuple[Path, str, dict[str, str]]) -> None:
    repo, head, env = checkout
    with (repo / "Makefile").open("a") as makefile:
        makefile.write("# an uncommitted change\n")
    assert _run(["make", "image"], repo, env).returncode == 0
    assert f"-t landmarkflow-python:{head}-dirty ." in Path(env["ENGINE_LOG"]).read_text()
    refused = _run(["make", "image-push", f"REGISTRY={REGISTRY}"], repo, env)
    assert refused.returncode != 0 and "commit first" in refused.stderr


def test_without_docker_or_podman_make_image_says_so(checkout: tuple[Path, str, dict[str, str]]) -> None:
    repo, _, env = checkout
    (Path(env["PATH"]) / "docker").unlink()
    missing = _run(["make", "image"], repo, env)
    assert missing.returncode != 0 and "needs docker or podman; neither is installed" in missing.stderr

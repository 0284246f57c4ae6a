"""Per module: a tiny HIH champion, and a `landmarkflow serve` process answering with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ServerProcess
from tests.serving.champions import Champion, serve_process, train_champion


@pytest.fixture(scope="module")
def hih_champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    return train_champion(tmp_path_factory.mktemp("hih"), "configs/hih_synthetic_tiny.yaml")


@pytest.fixture(scope="module")
def hih_server(hih_champion: Champion, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    server, url = serve_process(hih_champion, tmp_path_factory.mktemp("serve") / "serve.log")
    with server:
        yield server, url

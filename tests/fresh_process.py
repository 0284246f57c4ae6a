"""What a fresh interpreter imports. The test session itself has long imported torch, MLflow and the rest, so a
test of import costs runs its code in a new process in the repository folder, as a component's process starts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_REPORT = (
    "import json, sys\n"
    "watched = json.loads(sys.argv[1])\n"
    "print(json.dumps(sorted(m for m in sys.modules if any(m == w or m.startswith(w + '.') for w in watched))))\n"
)


def imported_after(code: str, watched: Sequence[str]) -> list[str]:
    """The modules among `watched` (module names, each with its submodules) that running `code` imports."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_REPORT}", json.dumps(list(watched))],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])

"""Our own concise reports of a validation: `validation.html` (always written) and a rich console table.

The GX Data Docs are complete but hard to read for "which files are broken"; this page answers that
and links the Data Docs for the full expectation-level detail.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from landmarkflow.data.validation.drift import DRIFT_PLOT
from landmarkflow.data.validation.result import CHECKS, ValidationResult
from landmarkflow.fileio import atomic_write_text

REPORT_NAME = "validation.html"
HTML_EXAMPLES = 20
CONSOLE_EXAMPLES = 3

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.4em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
.skip { color: #777; }
code { font-size: 0.9em; }
ul { margin: 0; padding-left: 1.2em; }
"""


def _statuses(result: ValidationResult) -> list[tuple[str, str, int, list[str]]]:
    """(check, status, failing count, examples) for every check in catalogue order."""
    rows = []
    for check in CHECKS:
        failure = result.failure(check)
        if failure is not None:
            rows.append((check, "FAIL", failure.count, failure.examples))
        elif check in result.checks:
            rows.append((check, "pass", 0, []))
        elif check in result.skipped:
            rows.append((check, "not run", 0, []))
    return rows


def write_html(result: ValidationResult, path: Path) -> Path:
    """Write the report atomically; a reader sees the previous report or the complete new one."""
    esc = html.escape
    verdict = "passed" if result.success else "FAILED"
    body = [
        f"<h1>Data validation {verdict}</h1>",
        f"<p>{result.num_faces} faces in {result.num_images} images under <code>{esc(str(result.root))}</code>; "
        f"{len(result.failures)} of {len(result.checks)} checks failed; {result.seconds:.2f} s.</p>",
    ]
    if result.data_docs_path is not None:
        link = Path(os.path.relpath(result.data_docs_path, path.parent)).as_posix()
        body.append(f'<p>Expectation-level detail: <a href="{esc(link)}">Great Expectations Data Docs</a>.</p>')
    body.append("<table><tr><th>check</th><th>what it guards</th><th>status</th><th>failing</th>")
    body.append("<th>offending files (sample ids)</th></tr>")
    for check, status, count, examples in _statuses(result):
        css = {"FAIL": "fail", "pass": "pass"}.get(status, "skip")
        items = "".join(f"<li><code>{esc(e)}</code></li>" for e in examples[:HTML_EXAMPLES])
        more = f"<li>... and {count - HTML_EXAMPLES} more</li>" if count > HTML_EXAMPLES else ""
        body.append(
            f'<tr id="{esc(check)}"><td><code>{esc(check)}</code></td><td>{esc(CHECKS[check])}</td>'
            f'<td class="{css}">{esc(status)}</td><td>{count}</td><td><ul>{items}{more}</ul></td></tr>'
        )
    body.append("</table>")
    if result.drift:
        items = "".join(f"<li>{esc(report.summary())}</li>" for report in result.drift)
        picture = f'<img src="{DRIFT_PLOT}" alt="distributions">' if (path.parent / DRIFT_PLOT).is_file() else ""
        body.append(f"<h2>Drift from the data the champions were trained on</h2><ul>{items}</ul>{picture}")
    if result.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
        body.append(f'<h2>Warnings</h2><ul class="warn">{items}</ul>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>landmarkflow data validation: {verdict}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    atomic_write_text(path, page)
    return path


def print_summary(result: ValidationResult, console: Console | None = None) -> None:
    """A rich table: check, status, failing count, first example files."""
    table = Table(title=f"Data validation: {result.num_faces} faces in {result.num_images} images")
    for column in ("check", "status", "failing"):
        table.add_column(column)
    table.add_column("example files", overflow="fold")  # long paths wrap rather than lose their file name
    for check, status, count, examples in _statuses(result):
        style = {"FAIL": "bold red", "pass": "green"}.get(status, "dim")
        table.add_row(
            check, f"[{style}]{status}[/]", str(count), "\n".join(escape(e) for e in examples[:CONSOLE_EXAMPLES])
        )
    console = console or Console()
    console.print(table)
    for report in result.drift:
        console.print(f"[bold]drift:[/bold] {escape(report.summary())}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if result.report_path is not None:
        console.print(f"report: {result.report_path}")

"""Validating a manifest: the Great Expectations 1.x suite plus the image checks, folded into one result.

`validate_manifest` never raises on bad data: it returns a `ValidationResult` and the caller decides
(`require_valid` for callers that must stop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from landmarkflow.data.manifest import COLUMNS
from landmarkflow.data.validation.drift import DriftReport
from landmarkflow.data.validation.images import image_failures
from landmarkflow.data.validation.profiles import profile_for, published_count_warnings, shared_image_notes
from landmarkflow.data.validation.rendering import REPORT_NAME, write_html
from landmarkflow.data.validation.result import (
    DRIFT_CHECK,
    MANIFEST_CHECKS,
    CheckFailure,
    DataValidationError,
    ValidationResult,
)
from landmarkflow.data.validation.table import MALFORMED, face_table, format_int

MAX_EXAMPLES = 50  # kept per check in the result; the count is always the full number


def validate_manifest(
    frame: pd.DataFrame,
    root: Path,
    report_dir: Path | None = None,
    point_tolerance: float = 2.0,
    reader_failures: Sequence[CheckFailure] = (),
) -> ValidationResult:
    """Run every check over `frame` (images resolved under `root`); write reports into `report_dir` if given.

    Points and boxes may lie up to `point_tolerance` pixels outside [0, W-1] x [0, H-1]: real
    annotations put contour points on or just past the border. `reader_failures` are files the reader
    could not turn into manifest rows (a .pts with 67 points, a NaN, an unreadable image); they are
    reported under their checks beside what the suite finds.
    """
    from landmarkflow.tracking import disable_telemetry

    disable_telemetry()
    # GX takes seconds to import; pay that only when a validation runs, not on every import of the steps.
    from landmarkflow.data.validation.suite import run_suites

    start = time.perf_counter()
    root, report_dir = Path(root), Path(report_dir) if report_dir is not None else None
    frame = frame.reset_index(drop=True)
    complete = all(column in frame.columns for column in COLUMNS)
    faces = face_table(frame, point_tolerance) if complete else None
    suite = run_suites(frame, faces, point_tolerance, report_dir)

    failures: list[CheckFailure] = []
    if suite.schema_mismatch:
        failures.append(CheckFailure("schema", len(suite.schema_mismatch), list(suite.schema_mismatch)))
    if faces is None:
        checks, skipped = ["schema"], [c for c in MANIFEST_CHECKS if c != "schema"]
    else:
        checks, skipped = list(MANIFEST_CHECKS), []
        if "non_empty" in suite.failing_rows:
            failures.append(CheckFailure("non_empty", 1, ["the manifest has no rows"]))
        images = image_failures(faces, root)
        for check in checks:
            if check in ("schema", "non_empty"):
                continue
            from_suite, from_images = set(suite.failing_rows.get(check, ())), images.get(check, {})
            rows = sorted(from_suite | set(from_images))
            if rows:
                failures.append(
                    _failure(
                        check,
                        rows,
                        faces,
                        lambda i, c=check, s=from_suite, f=from_images: _detail(c, faces, i) if i in s else f[i],
                    )
                )
    failures = _merge(failures, reader_failures)
    result = ValidationResult(
        success=not failures,
        failures=failures,
        checks=checks,
        skipped=skipped,
        num_faces=len(frame),
        num_images=int(faces["image_path"].nunique()) if faces is not None else 0,
        root=root,
        report_path=report_dir / REPORT_NAME if report_dir is not None else None,
        data_docs_path=suite.data_docs,
        warnings=[
            *published_count_warnings(faces["dataset"], faces["split"], frame["subsets"].map(list)),
            *shared_image_notes(faces["dataset"], faces["split"], faces["image_path"]),
        ]
        if faces is not None
        else [],
    )
    result.seconds = time.perf_counter() - start
    if result.report_path is not None:
        write_html(result, result.report_path)
    return result


def _merge(failures: list[CheckFailure], extra: Sequence[CheckFailure]) -> list[CheckFailure]:
    """Fold reader failures into the suite's, one entry per check, reader examples first."""
    merged = {f.check: f for f in failures}
    for failure in extra:
        if failure.check in merged:
            known = merged[failure.check]
            merged[failure.check] = CheckFailure(
                failure.check, known.count + failure.count, [*failure.examples, *known.examples]
            )
        else:
            merged[failure.check] = failure
    return list(merged.values())


def record_drift(
    result: ValidationResult, reports: Sequence[DriftReport], limits: dict[str, tuple[float, str]]
) -> ValidationResult:
    """Add the drift reports to `result`, and a `data_drift` failure naming each model (as the reports label it) for
    which a feature moved further than its limit (`limits[label]`: the KS limit and the config that sets it); the
    HTML report is written again with them."""
    result.drift = list(reports)
    result.checks.append(DRIFT_CHECK)
    examples = []
    for report in reports:
        for label in report.models:
            if label not in limits:
                continue
            limit, source = limits[label]
            over = [f"{f.feature} KS {f.ks:.2f}" for f in report.features if f.ks > limit]
            if over:
                examples.append(
                    f"{label}: {', '.join(over)} above data.max_drift {limit} of {source}, from the data it was "
                    f"trained on ({report.reference_hash})"
                )
    if examples:
        result.failures.append(CheckFailure(DRIFT_CHECK, len(examples), examples))
        result.success = False
    if result.report_path is not None:
        write_html(result, result.report_path)
    return result


def require_valid(result: ValidationResult) -> ValidationResult:
    """Return `result` if it passed; otherwise raise DataValidationError with its summary."""
    if not result.success:
        raise DataValidationError(result.summary())
    return result


def _failure(check: str, rows: list[int], faces: pd.DataFrame, reason: Callable[[int], str]) -> CheckFailure:
    """Examples name the image file and the sample id, then why, e.g. `a.jpg (sample s1): 67 points ...`."""
    examples = []
    for index in rows[:MAX_EXAMPLES]:
        why = reason(index)
        examples.append(
            f"{faces.at[index, 'image_path']} (sample {faces.at[index, 'sample_id']})" + (f": {why}" if why else "")
        )
    return CheckFailure(check, len(rows), examples)


def _detail(check: str, faces: pd.DataFrame, index: int) -> str:
    """Why row `index` fails a GX check, from the face table's own columns."""
    row = faces.loc[index]
    size = f"{format_int(row['width'])}x{format_int(row['height'])}"
    if check == "point_count":
        points = "landmarks are not a K x 2 array" if row["n_points"] == MALFORMED else f"{row['n_points']} points"
        expected = format_int(row["expected_points"])
        return f"{points}, {row['n_visible']} visibility flags; layout {row['layout']} has {expected}"
    if check == "points_inside_image":
        return (
            f"points span x {row['min_x']:.1f}..{row['max_x']:.1f}, y {row['min_y']:.1f}..{row['max_y']:.1f} "
            f"in a {size} image"
        )
    if check == "boxes_inside_image":
        corners = ", ".join(f"{row[f'bbox_{c}']:.1f}" for c in ("x1", "y1", "x2", "y2"))
        return f"box [{corners}] in a {size} image"
    if check == "no_nan":
        return "NaN or inf in landmarks or box"
    if check == "unique_ids":
        return f"sample id used {row['id_uses']} times"
    if check == "duplicate_faces":
        return f"the same face (image and points) is annotated under {row['face_uses']} sample ids"
    if check == "split_leak":
        splits = sorted(faces.loc[faces["image_path"] == row["image_path"], "split"].unique())
        return f"image in splits {', '.join(splits)}"
    if check == "known_layout":
        return f"layout {row['layout']!r}"
    if check == "relative_path":
        return "absolute or escapes the dataset root"
    return _dataset_detail(check, row)


def _dataset_detail(check: str, row: pd.Series) -> str:
    """Why a face fails one of the per-dataset checks (validation/profiles.py)."""
    profile = profile_for(str(row["dataset"]))
    if check == "dataset_layout" and profile is not None:
        return f"layout {row['layout']} in {profile.name}, whose faces are {'/'.join(profile.layouts)}-point"
    if check == "known_subsets" and profile is not None:
        return f"{row['unknown_subsets']} subset name(s) outside {', '.join(profile.subsets) or 'none'}"
    if check == "visibility":
        return "no point is visible"
    if check == "subset_flags":
        return "'frontal' flag disagrees with the face's split, visibility or box"
    return ""

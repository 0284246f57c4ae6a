"""What a validation found: the check catalogue, per-check failures and the overall result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from landmarkflow.data.validation.drift import DriftReport

# Every check, in report order, with the one line a reader needs to know what it guards.
CHECKS: dict[str, str] = {
    "annotation_format": "every annotation file parses as its format (checked while ingesting)",
    "schema": "manifest columns are exactly the contract's",
    "non_empty": "the manifest has at least one face",
    "known_layout": "layout is one of the known layouts",
    "relative_path": "image_path is relative to the dataset root and stays inside it",
    "point_count": "each face has the layout's number of points and visibility flags",
    "no_nan": "no NaN or inf in landmarks or boxes",
    "points_inside_image": "every point lies inside the image, within the tolerance",
    "boxes_inside_image": "x1 < x2, y1 < y2 and the box lies inside the image, within the tolerance",
    "unique_ids": "sample_id is unique",
    "split_leak": "no image appears in two splits (by path or by content), unless the dataset splits per face (AFLW)",
    "duplicate_faces": "no face is annotated twice (same image, same points)",
    "dataset_layout": "the layout is the dataset's own (300W 68, WFLW 98, COFW 29, COFW-68 68, AFLW 19)",
    "known_subsets": "subset names are those the dataset defines (e.g. WFLW's six attributes)",
    "visibility": "at least one point of each face is visible (COFW occlusion flags, AFLW masks)",
    "subset_flags": "AFLW-Frontal flags exactly the test faces with all 19 points visible and inside the box",
    "image_exists": "the image file exists",
    "image_opens": "OpenCV decodes the image",
    "image_size": "the decoded width and height equal the manifest's",
    "data_drift": "no face feature moved further than a retrained model's data.max_drift (KS) from the data its "
    "champion was trained on (measured when a champion's data has a profile in MLflow)",
}
DRIFT_CHECK = "data_drift"
"""Measured by the validate step against the champions' data, not by the suite over the manifest alone."""
MANIFEST_CHECKS = tuple(check for check in CHECKS if check != DRIFT_CHECK)
"""What `validate_manifest` checks of a manifest and its images."""
SUMMARY_EXAMPLES = 5


@dataclass(frozen=True)
class CheckFailure:
    """One failed check: how many manifest rows (or schema columns) fail, and some of them by file."""

    check: str
    count: int
    examples: list[str]

    def to_dict(self) -> dict[str, object]:
        return {"check": self.check, "count": self.count, "examples": list(self.examples)}


@dataclass
class ValidationResult:
    """The outcome of `validate_manifest`; `success` is True only when every check that ran passed."""

    success: bool
    failures: list[CheckFailure]
    checks: list[str]
    num_faces: int
    num_images: int
    root: Path
    skipped: list[str] = field(default_factory=list)
    report_path: Path | None = None
    data_docs_path: Path | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    drift: list[DriftReport] = field(default_factory=list)

    def failure(self, check: str) -> CheckFailure | None:
        return next((f for f in self.failures if f.check == check), None)

    def summary(self, max_examples: int = SUMMARY_EXAMPLES) -> str:
        """Human text: verdict, then each failed check with its first offending files."""
        scope = f"{self.num_faces} faces in {self.num_images} images under {self.root}"
        if self.success:
            lines = [f"Data validation passed: {len(self.checks)} checks over {scope}."]
        else:
            lines = [f"Data validation FAILED: {len(self.failures)} of {len(self.checks)} checks over {scope}."]
        for failure in self.failures:
            lines.append(f"  {failure.check} ({CHECKS.get(failure.check, '')}): {failure.count} failing")
            shown = failure.examples[:max_examples]
            lines += [f"    - {example}" for example in shown]
            if failure.count > len(shown):
                lines.append(f"    ... and {failure.count - len(shown)} more")
        lines += [f"  drift: {report.summary()}" for report in self.drift]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.skipped:
            lines.append(f"  not run because the schema is broken: {', '.join(self.skipped)}")
        if self.report_path is not None:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "success": self.success,
            "failures": [f.to_dict() for f in self.failures],
            "checks": list(self.checks),
            "skipped": list(self.skipped),
            "num_faces": self.num_faces,
            "num_images": self.num_images,
            "root": str(self.root),
            "report_path": str(self.report_path) if self.report_path else None,
            "data_docs_path": str(self.data_docs_path) if self.data_docs_path else None,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
            "drift": [report.to_dict() for report in self.drift],
        }


class DataValidationError(RuntimeError):
    """Raised by callers that must not go on with invalid data; the message is the result's summary."""

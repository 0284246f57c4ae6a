"""The Great Expectations 1.x suites: manifest schema, and the per-face checks over the face table.

Each expectation carries `meta={"check": name}`; a check fails when any of its expectations fails, and its
offending rows are the union of their unexpected row indices. Importing GX costs seconds, so
`validation.run` imports this module only when a validation actually runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from landmarkflow.data.manifest import COLUMNS
from landmarkflow.layouts import LAYOUTS

DATA_SOURCE = "landmarkflow"
SCHEMA_SUITE = "manifest_schema"
FACES_SUITE = "manifest_faces"
DOCS_DIR = "data_docs"


@dataclass
class SuiteOutcome:
    """Failing manifest rows per check, schema mismatches, and where the GX Data Docs landed."""

    failing_rows: dict[str, set[int]] = field(default_factory=dict)
    schema_mismatch: list[str] = field(default_factory=list)
    data_docs: Path | None = None


def schema_expectations() -> list[gxe.Expectation]:
    return [gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=True, meta={"check": "schema"})]


def face_expectations(tolerance: float) -> list[gxe.Expectation]:
    """Expectations over `table.face_table`; NaN coordinates are left to `no_nan` alone."""
    either_missing = "either_value_is_missing"

    def pair(check: str, a: str, b: str, or_equal: bool) -> gxe.Expectation:
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a, column_B=b, or_equal=or_equal, ignore_row_if=either_missing, meta={"check": check}
        )

    def at_least(check: str, column: str, value: float) -> gxe.Expectation:
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=value, meta={"check": check})

    def only(check: str, column: str, values: list[object]) -> gxe.Expectation:
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values, meta={"check": check})

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "non_empty"}),
        only("known_layout", "layout", sorted(LAYOUTS)),
        only("relative_path", "path_is_relative", [True]),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="n_points", column_B="expected_points", ignore_row_if=either_missing, meta={"check": "point_count"}
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="n_visible",
            column_B="expected_points",
            ignore_row_if=either_missing,
            meta={"check": "point_count"},
        ),
        only("no_nan", "all_finite", [True]),
        at_least("points_inside_image", "min_x", -tolerance),
        at_least("points_inside_image", "min_y", -tolerance),
        pair("points_inside_image", "x_limit", "max_x", or_equal=True),
        pair("points_inside_image", "y_limit", "max_y", or_equal=True),
        pair("boxes_inside_image", "bbox_x2", "bbox_x1", or_equal=False),
        pair("boxes_inside_image", "bbox_y2", "bbox_y1", or_equal=False),
        at_least("boxes_inside_image", "bbox_x1", -tolerance),
        at_least("boxes_inside_image", "bbox_y1", -tolerance),
        pair("boxes_inside_image", "x_limit", "bbox_x2", or_equal=True),
        pair("boxes_inside_image", "y_limit", "bbox_y2", or_equal=True),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id", meta={"check": "unique_ids"}),
        only("split_leak", "split_leak_by_path", [False]),
        only("duplicate_faces", "face_uses", [1]),
        only("dataset_layout", "layout_fits_dataset", [True]),
        only("known_subsets", "unknown_subsets", [0]),
        at_least("visibility", "visible_count", 1),
        only("subset_flags", "subset_flags_consistent", [True]),
    ]


def run_suites(
    manifest: pd.DataFrame, faces: pd.DataFrame | None, tolerance: float, report_dir: Path | None
) -> SuiteOutcome:
    """Validate the schema (and the face table when there is one) in one GX context; build Data Docs if asked.

    With `report_dir` the context is a file context there, so the Data Docs site lands in
    `report_dir/data_docs`; without it, an ephemeral context leaves nothing on disk.
    """
    context = _context(report_dir)
    source = context.data_sources.add_or_update_pandas(name=DATA_SOURCE)
    outcome = SuiteOutcome()
    batches = [(SCHEMA_SUITE, schema_expectations(), manifest.iloc[:0])]
    if faces is not None:
        batches.append((FACES_SUITE, face_expectations(tolerance), faces))
    for name, expectations, frame in batches:
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("whole")
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")
        _collect(result.results, outcome)
    if report_dir is not None:
        context.build_data_docs()
        index = report_dir / DOCS_DIR / "index.html"
        outcome.data_docs = index if index.is_file() else None
    return outcome


def _context(report_dir: Path | None) -> gx.data_context.AbstractDataContext:
    if report_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        report_dir.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(report_dir))
        # The default site hides under gx/uncommitted/; put it next to our own report instead.
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str((report_dir / DOCS_DIR).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.variables.data_docs_sites = {"local_site": site}
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if report_dir is not None:
        context.variables.save()
    return context


def _collect(results: list, outcome: SuiteOutcome) -> None:
    """Fold expectation results into failing rows per check; a GX exception is our bug, so it is raised."""
    for result in results:
        config = result.expectation_config
        check = str(config.meta["check"])
        if result.exception_info and result.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX expectation {config.type} of check {check} raised: {result.exception_info}")
        if result.success:
            continue
        rows = outcome.failing_rows.setdefault(check, set())
        details = result.result.get("details") or {}
        mismatch = details.get("mismatched") or {}
        outcome.schema_mismatch += [f"missing column {c!r}" for c in mismatch.get("missing") or []]
        outcome.schema_mismatch += [f"unexpected column {c!r}" for c in mismatch.get("unexpected") or []]
        rows.update(int(i) for i in result.result.get("unexpected_index_list") or [])

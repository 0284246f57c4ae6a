"""A contact sheet of the same synthetic faces in every layout, for checking point semantics by eye.

Each layout is rendered with `synthesize(layout=...)` into a temporary folder and read back with its real reader
(so the sheet shows what ingest sees), then every face is cropped around its box and drawn with its points
(green visible, red hidden). Rows are layouts 68, 98, 29 and 19; columns the same faces.

    .venv/bin/python bench/draw_synthetic_layouts.py [--out docs/synthetic_layouts.png] [--faces 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from landmarkflow.data.draw import draw_landmarks
from landmarkflow.data.formats.readers import read_dataset
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic import synthesize
from landmarkflow.data.synthetic.layout_map import LAYOUT_DATASETS
from landmarkflow.data.synthetic.plan import plan
from landmarkflow.data.synthetic.synthesis import placements
from landmarkflow.imageio import write_image

CELL = 272  # pixels per face in the sheet
LABEL = 64  # width of the row-label column
MARGIN = 0.12  # crop margin around the face box, as a fraction of its longer side
FRACTION_CHALLENGING = 0.5  # of the test faces: half common, half challenging (pose, occluders)


def layout_faces(layout: str, faces: int, seed: int, size: int, work: Path) -> list[tuple[FaceRecord, np.ndarray]]:
    """The test faces of a synthetic dataset in `layout` as its reader returns them, with images, in plan order."""
    root = work / layout
    synthesize(root, 1, faces, seed, size, FRACTION_CHALLENGING, progress=False, layout=layout)
    records = {r.sample_id: r for r in read_dataset(LAYOUT_DATASETS[layout], root)}
    items = plan(1, faces, FRACTION_CHALLENGING)
    wanted = [records[place.sample_id] for place in placements(items, layout)[1:]]
    return [(r, cv2.imread(str(root / r.image_path), cv2.IMREAD_COLOR)) for r in wanted]


def cell(record: FaceRecord, image: np.ndarray) -> np.ndarray:
    """The face cropped to a square around its box and scaled to CELL pixels, with its points drawn."""
    x1, y1, x2, y2 = record.bbox
    side = max(x2 - x1, y2 - y1) * (1 + 2 * MARGIN)
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    scale = CELL / side
    warp = np.array([[scale, 0, CELL / 2 - scale * centre[0]], [0, scale, CELL / 2 - scale * centre[1]]])
    crop = cv2.warpAffine(image, warp, (CELL, CELL), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    crop &= 0xF0  # 16 levels per channel: the sheet's PNG stays small, the points keep their exact colours
    points = record.landmarks * scale + warp[:, 2]
    return draw_landmarks(crop, points, record.visible, radius=2)


def sheet(rows: dict[str, list[tuple[FaceRecord, np.ndarray]]]) -> np.ndarray:
    """One row per layout, its name in the label column."""
    lines = []
    for layout, faces in rows.items():
        label = np.full((CELL, LABEL, 3), 255, np.uint8)
        cv2.putText(label, layout, (8, CELL // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
        lines.append(np.concatenate([label, *(cell(r, image) for r, image in faces)], axis=1))
    return np.concatenate(lines, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_layouts.png"))
    parser.add_argument("--faces", type=int, default=4, help="faces per row (columns)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="rendered image side in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        rows = {
            layout: layout_faces(layout, args.faces, args.seed, args.size, Path(work)) for layout in LAYOUT_DATASETS
        }
    written = write_image(args.out, sheet(rows))
    print(f"{args.out}: {len(rows)} layouts x {args.faces} faces, {written // 1024} KB")


if __name__ == "__main__":
    main()

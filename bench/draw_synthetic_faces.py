"""A grid of synthetic faces as the renderer writes them (whole images, no crop), for the README.

The first faces of the default dataset's plan (seed 0), training and challenging ones alike, with or without
their 68 points drawn.

    .venv/bin/python bench/draw_synthetic_faces.py [--out docs/synthetic_faces.jpg] [--rows 2] [--cols 6] [--points]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from landmarkflow.data.draw import draw_landmarks
from landmarkflow.data.synthetic import render_face
from landmarkflow.data.synthetic.plan import item_spec, plan
from landmarkflow.imageio import write_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_faces.jpg"))
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="rendered image side in pixels")
    parser.add_argument("--points", action="store_true", help="draw the 68 points (green visible, red hidden)")
    args = parser.parse_args()
    count = args.rows * args.cols
    items = plan(count, count)  # train faces, then test faces (the last fifth of them challenging)
    chosen = items[: count - args.cols // 2] + items[-(args.cols // 2) :] if args.cols > 1 else items[:count]
    images = []
    for item in chosen:
        face = render_face(item_spec(args.seed, item), args.size)
        image = face.image
        if args.points:
            image = draw_landmarks(image, face.landmarks, face.visible)
        images.append(image)
    rows = [np.hstack(images[r * args.cols : (r + 1) * args.cols]) for r in range(args.rows)]
    write_image(args.out, np.vstack(rows))
    print(f"wrote {args.out} ({len(images)} faces)")


if __name__ == "__main__":
    main()

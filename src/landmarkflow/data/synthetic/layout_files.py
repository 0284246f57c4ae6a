"""How one layout writes a rendered dataset: the strategy that `synthesis` runs its one render loop with.

The loop plans the items, renders each face and counts it; a `LayoutFiles` says where each face lands, turns
it into a complete manifest record, writes its files, and at the end writes the layout's dataset-wide files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from landmarkflow.data.manifest import FaceRecord
from landmarkflow.data.synthetic.params import FaceSpec
from landmarkflow.data.synthetic.plan import SynthItem
from landmarkflow.data.synthetic.render import RenderedFace


@dataclass(frozen=True)
class Placement:
    """Where one face lands in a layout's dataset: its id and image file as that dataset's reader names them."""

    sample_id: str
    image_path: str


@dataclass(frozen=True)
class Written:
    """One face the loop has written: its item, the parameters it was rendered from and its record."""

    item: SynthItem
    spec: FaceSpec
    record: FaceRecord


@dataclass(frozen=True)
class LayoutFiles:
    """One layout's part of rendering a dataset.

    check(root, items): refuse, before any rendering, a folder or a plan the layout cannot write.
    place(item, row, row_in_split): where an item lands, from its row in the plan and in its split.
    record(item, placement, spec, face): the face's complete record in the layout.
    write_face(root, record, face): the face's own files, as soon as it is rendered.
    finish(root, seed, written): the files that hold every face, after the last one.
    """

    check: Callable[[Path, Sequence[SynthItem]], None]
    place: Callable[[SynthItem, int, int], Placement]
    record: Callable[[SynthItem, Placement, FaceSpec, RenderedFace], FaceRecord]
    write_face: Callable[[Path, FaceRecord, RenderedFace], None]
    finish: Callable[[Path, int, Sequence[Written]], None]

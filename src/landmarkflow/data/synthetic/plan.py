"""What a synthetic dataset holds, whatever the layout it is written in: its items (stream, index, 300W folder)
and each item's face parameters.

Each image has its own RNG, seeded by (seed, stream, index), where the streams are train, common and
challenging: image k of a stream is the same whatever the dataset size, so a small dataset is a prefix
of a large one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmarkflow.data.formats.w300 import FOLDERS_BY_PATH, W300Folder
from landmarkflow.data.synthetic.params import FaceSpec, sample_spec

STREAMS = {"train": 0, "common": 1, "challenging": 2}
HARD_TRAIN_FRACTION = 0.4
"""Training faces drawn hard (yaw up to 70 degrees, strong expressions, occluders): twice the test split's
challenging share, which follows 300W. It taught RDFN the turned faces (synthetic test 9.63 -> 8.28%, challenging
26.3 -> 20.3%) and left HIH as it was."""
WIDE_YAW_TRAIN_FRACTION = 0.25
"""Training faces that are ordinary in every way but their turn, drawn up to `params.WIDE_YAW`: hard faces are
turned, but also blurred, dark and occluded, while real turned faces are mostly clean photographs."""


@dataclass(frozen=True)
class SynthItem:
    """One image to render: its stream and index there, and where it goes in the 300W layout."""

    stream: str
    index: int
    folder: W300Folder

    @property
    def sample_id(self) -> str:
        """300W-style id: folder and file stem."""
        return f"{self.folder.path}/{self.stream}_{self.index:06d}"


def folder_for(stream: str, index: int) -> W300Folder:
    """The 300W folder of image `index` of a stream, in 300W's proportions and independent of the dataset size:
    train 2/20 afw, 5/20 lfpw, 13/20 helen; common test 2/5 lfpw, 3/5 helen; challenging ibug."""
    if stream == "challenging":
        return FOLDERS_BY_PATH["ibug"]
    if stream == "common":
        return FOLDERS_BY_PATH["lfpw/testset" if (index * 3) % 5 < 2 else "helen/testset"]
    slot = (index * 7) % 20  # 7 is prime to 20, so every 20 consecutive images hold the exact proportions
    return FOLDERS_BY_PATH["afw" if slot < 2 else "lfpw/trainset" if slot < 7 else "helen/trainset"]


def plan(num_train: int, num_test: int, challenging_fraction: float = 0.2) -> list[SynthItem]:
    """The images of a dataset: train, then common test, then challenging test (ibug)."""
    num_challenging = round(num_test * challenging_fraction)
    counts = {"train": num_train, "common": num_test - num_challenging, "challenging": num_challenging}
    return [SynthItem(stream, k, folder_for(stream, k)) for stream, count in counts.items() for k in range(count)]


def item_spec(
    seed: int,
    item: SynthItem,
    hard_train_fraction: float = HARD_TRAIN_FRACTION,
    wide_yaw_train_fraction: float = WIDE_YAW_TRAIN_FRACTION,
) -> FaceSpec:
    """The face of one item: challenging test faces are hard, and so is that fraction of training faces; the next
    `wide_yaw_train_fraction` of training faces are ordinary faces turned wide. Test faces draw nothing for it."""
    rng = np.random.default_rng([seed, STREAMS[item.stream], item.index])
    if item.stream != "train":
        return sample_spec(rng, hard=item.stream == "challenging")
    draw = rng.uniform()
    hard = draw < hard_train_fraction
    return sample_spec(rng, hard=hard, wide_yaw=not hard and draw < hard_train_fraction + wide_yaw_train_fraction)

"""The upright second pass: a face the first pass finds rolled is cropped again, turned so that its eyes are level,
and predicted once more on that crop.

Why: the models learn from crops rolled up to 15-30 degrees, yet read an upright face better than a rolled one, and
real photos roll further (300W's challenging faces). The first pass's eye line is accurate enough to undo most of
the roll: on the real dev faces rolled by +-30 degrees each of eight default trainings gained 2.4-5.5 points of NME
(configs/hih_synthetic.md has the table). Faces rolled less than the threshold keep their first answer and cost
one pass.

The crop keeps the box's centre and side; only its rotation changes. Evaluation, validation, `predict` and the
server all go through here, so a deployed model answers what evaluate measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landmarkflow.geometry import CropSpec
from landmarkflow.layouts import Layout, get_layout
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import cut_views


@dataclass(frozen=True)
class UprightPass:
    """Crop a face again, turned upright, when its first answer's eye line rolls more than `above_deg`."""

    layout: Layout
    above_deg: float

    @classmethod
    def maybe(cls, layout: str, above_deg: float | None) -> UprightPass | None:
        """The pass for a config's or a deployed model's threshold; None (or infinity) turns it off."""
        if above_deg is None or not math.isfinite(above_deg):
            return None
        return cls(get_layout(layout), above_deg)

    def plan(
        self,
        images: Sequence[np.ndarray],
        boxes: np.ndarray,
        points: np.ndarray,
        crop_spec: CropSpec,
    ) -> UprightCrops | None:
        """The upright crops of the faces whose (N, K, 2) first-pass image points roll more than the threshold, None
        when none does; `images[i]` is face i's HxWx3 uint8 RGB image and `boxes[i]` the box its first crop was cut
        from by `crop_spec`, which cuts the second crops too."""
        roll = self.layout.eye_line_deg(points)
        rolled = np.flatnonzero(np.abs(roll) > self.above_deg)
        if not len(rolled):
            return None
        matrices, crops = cut_views(crop_spec, [images[i] for i in rolled], boxes[rolled], roll[rolled])
        return UprightCrops(rolled, crop_spec, matrices, crops)

    def run(
        self,
        predict: CropPredictor,
        images: Sequence[np.ndarray],
        boxes: np.ndarray,
        points: np.ndarray,
        crop_spec: CropSpec,
    ) -> np.ndarray:
        """The (N, K, 2) image points after the second pass: `plan`, one `predict` call, `merge`."""
        upright = self.plan(images, boxes, points, crop_spec)
        return points if upright is None else upright.merge(points, np.asarray(predict(upright.crops), np.float64))


@dataclass(frozen=True)
class UprightCrops:
    """Which faces get a second look (indices into the first pass), the spec that cut their views, and the views'
    crop affines and model inputs."""

    faces: np.ndarray
    crop_spec: CropSpec
    matrices: np.ndarray
    crops: np.ndarray

    def merge(self, points: np.ndarray, crop_points: np.ndarray) -> np.ndarray:
        """The first pass's (N, K, 2) image points with the second-look faces' answers, mapped back, in their place."""
        merged = np.array(points, dtype=np.float64, copy=True)
        merged[self.faces] = self.crop_spec.to_image(crop_points, self.matrices)
        return merged

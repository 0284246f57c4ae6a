"""The base of every model's config section, apart from the modules so that configs load without torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from landmarkflow.layouts import LAYOUTS

if TYPE_CHECKING:
    from landmarkflow.codecs.base import Codec


class ModelParams(BaseModel, ABC):
    """Base of every model's config section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    num_points: int = 68
    input_size: int = 256
    flip_test: bool = Field(
        False, description="predict averages the landmarks of the crop and of its mirror image (mirrored back)"
    )
    shape_calibration_modes: int = Field(
        0,
        ge=0,
        description="predict corrects its answer in this many shape modes, by a linear map fitted on the train "
        "faces after training (models/shape_calibration.py); 0: none",
    )

    @model_validator(mode="after")
    def _post_steps_possible(self) -> ModelParams:
        if self.flip_test and str(self.num_points) not in LAYOUTS:
            raise ValueError(
                f"flip_test needs a layout's left/right point pairs, but num_points {self.num_points} is none of the "
                f"layouts ({', '.join(LAYOUTS)} points)"
            )
        if self.shape_calibration_modes and str(self.num_points) not in LAYOUTS:
            raise ValueError(
                f"shape_calibration_modes needs a layout's eyes, but num_points {self.num_points} is none of the "
                f"layouts ({', '.join(LAYOUTS)} points)"
            )
        if self.shape_calibration_modes > 2 * self.num_points - 4:
            raise ValueError(
                f"shape_calibration_modes must be at most {2 * self.num_points - 4} for {self.num_points} points "
                f"(shapes aligned by a similarity vary in at most 2 x points - 4 directions), "
                f"got {self.shape_calibration_modes}"
            )
        return self

    @abstractmethod
    def make_codec(self) -> Codec:
        """The codec that encodes this model's targets and decodes its outputs."""

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

    @model_validator(mode="after")
    def _flip_pairs_known(self) -> ModelParams:
        if self.flip_test and str(self.num_points) not in LAYOUTS:
            raise ValueError(
                f"flip_test needs a layout's left/right point pairs, but num_points {self.num_points} is none of the "
                f"layouts ({', '.join(LAYOUTS)} points)"
            )
        return self

    @abstractmethod
    def make_codec(self) -> Codec:
        """The codec that encodes this model's targets and decodes its outputs."""

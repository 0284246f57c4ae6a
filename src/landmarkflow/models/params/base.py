"""The base of every model's config section, apart from the modules so that configs load without torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from landmarkflow.codecs.base import Codec


class ModelParams(BaseModel, ABC):
    """Base of every model's config section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    num_points: int = 68
    input_size: int = 256

    @abstractmethod
    def make_codec(self) -> Codec:
        """The codec that encodes this model's targets and decodes its outputs."""

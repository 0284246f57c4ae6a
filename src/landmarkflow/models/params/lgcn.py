"""LGCN's `model:` section (docs/models.md §4): checked without torch, so a config parses before any model is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from landmarkflow.codecs.lgcn_kernel import PAPER_KERNEL_SIZE, PATCH
from landmarkflow.models.params.base import ModelParams

if TYPE_CHECKING:
    from landmarkflow.codecs.lgcn import LGCNCodec


class LGCNParams(ModelParams):
    """The `model:` section for LGCN; defaults are the paper's nf = 128 network on 96 x 96 crops."""

    name: Literal["lgcn"] = "lgcn"
    input_size: int = Field(96, ge=PATCH, description="crop side; every map has this side too")
    filters: int = Field(128, ge=1, description="width nf of every conv layer (the paper also has nf = 64)")
    local_5x5_layers: int = Field(5, ge=0, description="local subnet: 5 x 5 conv layers first")
    local_3x3_layers: int = Field(10, ge=0, description="local subnet: then 3 x 3 conv layers")
    global_layers: int = Field(7, ge=1, description="global subnet: dilated 3 x 3 conv layers")
    global_dilation: int = Field(4, ge=1, description="dilation of the global subnet's convs")
    kernel_size: int = Field(PAPER_KERNEL_SIZE, ge=3, description="blur kernel side (odd); sigmas scale with it")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout after every subnet conv layer")

    @model_validator(mode="after")
    def _consistent(self) -> LGCNParams:
        if self.local_5x5_layers + self.local_3x3_layers < 1:
            raise ValueError("the local subnet needs at least one layer (local_5x5_layers + local_3x3_layers >= 1)")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred 'same' blur), got {self.kernel_size}")
        if self.kernel_size > 2 * self.input_size - 1:
            raise ValueError(
                f"kernel_size {self.kernel_size} is wider than any blur on a {self.input_size} px map can use "
                f"(max {2 * self.input_size - 1})"
            )
        return self

    def make_codec(self) -> LGCNCodec:
        """The codec these params describe (the dataset and the model share it); imported here, as it needs torch."""
        from landmarkflow.codecs.lgcn import LGCNCodec

        return LGCNCodec(self.num_points, self.input_size, self.kernel_size)

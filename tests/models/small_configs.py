"""Small network configs that more than one test file builds, kept here so that they cannot drift apart:
a model small enough for a forward pass or a short overfit to take milliseconds on CPU."""

from __future__ import annotations

# HIH's sizes and decoding (input 64 -> 16x16 integer maps, 4x4 decimal maps), for validating params.
SMALL_HIH_SIZES = {
    "name": "hih",
    "num_points": 5,
    "input_size": 64,
    "heatmap_size": 16,
    "decimal_size": 4,
    "dec_sigma": 0.6,
}
# The buildable small HIH: those sizes on a shallow, narrow hourglass.
SMALL_HIH = {**SMALL_HIH_SIZES, "hourglass_depth": 2, "channels": 32, "decimal_channels": 32}
# A narrow, shallow LGCN on 24 px crops: its heatmaps are the crop's size.
SMALL_LGCN = {
    "name": "lgcn",
    "num_points": 5,
    "input_size": 24,
    "filters": 8,
    "local_5x5_layers": 1,
    "local_3x3_layers": 2,
    "global_layers": 2,
    "global_dilation": 2,
    "kernel_size": 11,
    "dropout": 0.0,
}

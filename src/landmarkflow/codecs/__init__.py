"""Codecs: encode crop-frame landmarks into training targets and decode model outputs back.

The dataset encodes with the model's codec and the model decodes with the same object, so heatmap
size and sigma have exactly one source.
"""

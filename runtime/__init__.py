"""The lightweight runtime: numpy + pillow + one inference backend, never TensorFlow.

This is what runs on a Raspberry Pi and what the Android demo mirrors. It owns the model
manifest and the preprocessing, which training and conversion reuse.
"""

from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization
from edgemri.runtime.preprocess import postprocess, prepare_pixels, preprocess

__all__ = [
    "InputSpec", "Manifest", "OutputSpec", "Quantization",
    "load_image", "postprocess", "prepare_pixels", "preprocess",
]

"""edgemri: medical-image classifiers from training to a phone or a Raspberry Pi.

The top-level package is the shared core (CLI, errors, lazy extras, data layer). The runtime,
training and conversion live in ``edgemri.runtime``, ``edgemri.train`` and ``edgemri.convert``.
Importing this package must stay cheap: it imports no TensorFlow, Keras, ONNX or OpenVINO.
"""

__version__ = "0.1.0"

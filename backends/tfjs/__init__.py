"""The ``tfjs`` backend: the detector in TF.js inside headless Chromium (see :mod:`backends.tfjs.backend`)."""
from backends.tfjs.backend import TfjsBackend

__all__ = ["TfjsBackend"]

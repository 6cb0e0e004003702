"""The ``ortweb`` backend: the detector on ONNX Runtime Web in headless Chromium (see :mod:`backends.ortweb.backend`)."""
from backends.ortweb.backend import OrtWebBackend

__all__ = ["OrtWebBackend"]

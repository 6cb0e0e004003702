"""The ``tesseractjs`` backend: Tesseract.js in headless Chromium (see :mod:`backends.tesseractjs.backend`)."""
from backends.tesseractjs.backend import TesseractJsBackend

__all__ = ["TesseractJsBackend"]

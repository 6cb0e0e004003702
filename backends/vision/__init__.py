"""Google Cloud Vision backend (``vision``) and a local server that speaks its protocol.

Importing this package is cheap: the Vision client is imported when a backend opens.
"""
from backends.vision.backend import VisionBackend

__all__ = ["VisionBackend"]

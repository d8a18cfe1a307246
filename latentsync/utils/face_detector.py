"""Compatibility path: face detection lives in `latentsync.faces.detector` (`FaceDetector`).

Kept at the official LatentSync path so the layout stays diffable with it and official-style imports work.
Importing this module gives the package module itself (one module object).
"""

import sys

from latentsync.faces import detector as _impl

sys.modules[__name__] = _impl

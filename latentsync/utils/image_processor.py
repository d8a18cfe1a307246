"""Compatibility path: the official `ImageProcessor` and `load_fixed_mask` live in `latentsync.pipelines.image_processor`.

Kept at the official LatentSync path so the layout stays diffable with it and official-style imports work.
Importing this module gives the package module itself (one module object).
"""

import sys

from latentsync.pipelines import image_processor as _impl

sys.modules[__name__] = _impl

"""Shim: The inference CLI lives in `latentsync.cli.inference` (console script `latentsync`).

Kept so `python -m scripts.inference` works from the repository root, as in the official layout. Importing
this module gives the package module itself (one module object, so attributes set on it are seen there).
"""

import sys

from latentsync.cli import inference as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl

"""`with obj:` for the classes that hold a file, pipe or worker and release it in their `close()`."""

from __future__ import annotations

from contextlib import AbstractContextManager


class ClosesOnExit(AbstractContextManager):
    """Mixin: entering gives the object itself (from `AbstractContextManager`), leaving calls `close()`."""

    def __exit__(self, *exc) -> None:
        self.close()

"""Models logged before the package moved (``wtc.tracking``, ``wtc.serving``) pickled their classes
under the old module names; while they are unpickled, those names point at where the classes live now."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator

__all__ = ["MOVED_MODULES", "old_module_names"]

#: Old module -> the module that holds its classes now.
MOVED_MODULES = {
    "wtc.tracking": "wtc.store",
    "wtc.tracking.pyfunc": "wtc.store.pyfunc",
    "wtc.tracking.models": "wtc.store.logged_models",
    "wtc.tracking.recovery": "wtc.store.recovery_model",
    "wtc.serving": "wtc.inference",
    "wtc.serving.tasks": "wtc.inference.tasks",
    "wtc.serving.recovery": "wtc.inference.recovery",
}


@contextlib.contextmanager
def old_module_names() -> Iterator[None]:
    """Within the block, ``import wtc.tracking.pyfunc`` (what unpickling an older model does) finds
    ``wtc.store.pyfunc``; the aliases are removed afterwards."""
    added = [old for old in MOVED_MODULES if old not in sys.modules]
    for old in added:
        sys.modules[old] = importlib.import_module(MOVED_MODULES[old])
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)

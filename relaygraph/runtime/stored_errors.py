"""A node's stored exception, shown with its original type where that is safe.

Savers keep an exception as its type name and message and read it back as a
:class:`~relaygraph.persistence.serde.StoredError` (nothing is unpickled or imported).
For ``StateSnapshot.tasks[].error`` relaygraph goes one step further: when the original
class is a builtin exception, or a class of a module the process has already imported,
the error comes back as an instance of a subclass of *both* ``StoredError`` and that class,
so ``isinstance(task.error, KeyError)`` holds. The class's own ``__init__`` never runs and
no module is imported.
"""

from __future__ import annotations

import builtins
import sys
import threading
from typing import Any

from relaygraph.persistence.serde import StoredError

__all__ = ["restore_error"]

_lock = threading.Lock()
_classes: dict[type, type] = {}


def _original_class(type_name: str) -> type | None:
    """The exception class ``type_name`` names, if it is loaded already (never imported)."""
    if "." not in type_name:
        found = getattr(builtins, type_name, None)
    else:
        # "pkg.mod.Outer.Inner": find the longest prefix that is a loaded module.
        parts = type_name.split(".")
        found = None
        for cut in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:cut]))
            if module is None:
                continue
            found = module
            for attribute in parts[cut:]:
                found = getattr(found, attribute, None)
            break
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


def _combined(original: type) -> type | None:
    with _lock:
        if original not in _classes:
            try:
                _classes[original] = type(
                    original.__name__,
                    (StoredError, original),
                    {"__module__": original.__module__, "__qualname__": original.__qualname__},
                )
            except TypeError:  # an incompatible layout (e.g. a __slots__ base): keep StoredError
                _classes[original] = StoredError
        combined = _classes[original]
    return None if combined is StoredError else combined


def restore_error(error: Any) -> Any:
    """``error`` as an instance of its original type where possible (see module doc)."""
    if type(error) is not StoredError:
        return error
    original = _original_class(error.type_name)
    combined = _combined(original) if original is not None else None
    if combined is None:
        return error
    message = f"{error.type_name}: {error.message}" if error.message else error.type_name
    try:  # the class's own __new__ (never its __init__): some builtins insist on it
        restored = combined.__new__(combined, message)
        BaseException.__init__(restored, message)
    except Exception:
        return error
    restored.type_name = error.type_name
    restored.message = error.message
    return restored

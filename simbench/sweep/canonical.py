"""What the sweep modules share at the bottom: the error of a sweep file and the canonical
JSON form (and digest) that ids and content hashes are computed from."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import ValidationError

__all__ = ["SweepError", "canonical_json", "digest"]


class SweepError(ValidationError):
    """A sweep file that cannot be run; the message names file, block, key and value."""


# --------------------------------------------------------------------------- canonical form


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and tuples reach here from to_dict() implementations
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "name"):
        return obj.name
    raise TypeError(f"cannot put {type(obj).__name__} into a canonical sweep dictionary")


def canonical_json(obj: Any) -> str:
    """Key-order independent JSON: sorted keys, no spaces, floats by their shortest ``repr``.

    Python's ``json`` writes floats with ``float.__repr__`` (shortest round-tripping
    digits), identical on every platform and Python version, so the text and any hash of it
    are stable.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def digest(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()

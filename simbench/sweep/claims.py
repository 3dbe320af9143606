"""Compile each thing once across worker processes: a claim per unit of warm-up.

Workers that start together need the same compiled kernels, and each would compile them
all: on 2 CPUs that doubles nothing but the waiting.  Numba's on-disk cache lets one
process load what another compiled, so the workers share the work instead: before a unit
of warm-up (a structure to train, a group of metric kernels) a worker claims it with a file
created exclusively; a unit another live worker has claimed is put off until that worker
has finished it, when it loads from the cache instead of compiling.  Each worker finishes
its own claims before it waits for others', so no two wait for each other.

A unit is finished when its owner removes its claim, and nothing else is kept: a marker
saying "compiled" would outlive a cleared cache and send every worker to compile the unit
at once.

Claims only order the work: a claim whose owner died or that is older than
:data:`STALE_SECONDS` is ignored, a unit is always run by every worker that needs it (from
the cache when someone compiled it first), and a failure here only means compiling again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

__all__ = ["STALE_SECONDS", "claims_dir", "run_shared"]

# A claim older than this is someone's leftover (a compile takes seconds to a minute).
STALE_SECONDS = 300.0
# How often a worker looks whether a unit it waits for is done.
POLL_SECONDS = 0.02


def claims_dir() -> Path:
    """Where the claims live: one directory per user and compiled-code cache, since units
    are shared only between processes that share a cache."""
    import numba

    package = Path(__file__).resolve().parent.parent  # where Numba caches beside the sources
    where = os.environ.get("NUMBA_CACHE_DIR") or str(package)
    tag = hashlib.sha1(f"{where}|{numba.__version__}".encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"simbench-compile-{uid}" / tag


def _name(key: Hashable) -> str:
    return hashlib.sha1(repr(key).encode()).hexdigest()[:24]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (an unreaped zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"
    except (OSError, ValueError):
        return True


def _owner(claim: Path) -> int | None:
    """The live owner of a fresh claim, or None (no claim, a dead owner, or stale)."""
    try:
        text = claim.read_text()
        age = time.time() - claim.stat().st_mtime
        pid = int(text)
    except (OSError, ValueError):
        return None
    if age > STALE_SECONDS or pid == os.getpid() or not _alive(pid):
        return None
    return pid


def _publish(claim: Path) -> None:
    """Create ``claim`` holding this process's id, or raise ``FileExistsError``.

    The claim appears whole: the id is written to a file of this process's own and linked
    to the claim's name, which fails if the name exists.  Created empty and written after,
    a claim could be read in between as one without an owner, and taken over: workers that
    start together then compiled the same unit at once.
    """
    own = claim.with_name(f"{claim.name}.{os.getpid()}")
    own.write_text(str(os.getpid()))
    try:
        os.link(own, claim)
    except FileExistsError:
        raise
    except OSError:
        # a file system without hard links: created exclusively and written after, the
        # short window above left open rather than no sharing at all
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
    finally:
        with contextlib.suppress(OSError):
            own.unlink()


def _try_claim(directory: Path, name: str) -> bool:
    """Claim a unit; False when another live worker holds it and has not finished."""
    claim = directory / f"{name}.claim"
    for _ in range(2):
        try:
            _publish(claim)
        except FileExistsError:
            if _owner(claim) is not None:
                return False
            with contextlib.suppress(OSError):
                claim.unlink()  # a dead or stale claim: take it over
            continue
        except OSError:  # no claim can be written here: plain order
            break
        return True
    return True  # could not settle it: run the unit anyway


def _finish(directory: Path, name: str) -> None:
    """Release a claim: the unit is compiled (or failed; the next worker tries it)."""
    with contextlib.suppress(OSError):
        (directory / f"{name}.claim").unlink()


def _wait(directory: Path, name: str) -> None:
    """Wait while another live worker holds the unit's claim (bounded by its staleness)."""
    claim = directory / f"{name}.claim"
    while _owner(claim) is not None:
        time.sleep(POLL_SECONDS)


def run_shared(units: Iterable[tuple[Hashable, Callable[[], object]]]) -> None:
    """Run every ``(key, fn)`` unit, those claimed by other live workers last, after they
    are done (see the module notes).  ``fn`` should not raise; if it does, the unit's claim
    is released and the exception propagates."""
    try:
        directory = claims_dir()
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # nowhere to share: plain order
        for _, fn in units:
            fn()
        return
    later = []
    for key, fn in units:
        name = _name(key)
        if not _try_claim(directory, name):
            later.append((name, fn))
            continue
        try:
            fn()
        finally:
            _finish(directory, name)
    for name, fn in later:
        _wait(directory, name)
        fn()

"""Compile sharing between worker processes: units claimed by another live worker run last,
once it has finished them; dead or stale claims are taken over; nothing is ever skipped."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest

from simbench.sweep import claims


@pytest.fixture
def where(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "claims_dir", lambda: tmp_path)
    return tmp_path


@pytest.fixture
def other_worker():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _units(order):
    return [(key, lambda key=key: order.append(key)) for key in ("a", "b", "c")]


def test_units_claimed_elsewhere_run_last_once_released(where, other_worker):
    name = claims._name("b")
    claim = where / f"{name}.claim"
    claim.write_text(str(other_worker))
    order: list[str] = []
    runner = threading.Thread(target=claims.run_shared, args=(_units(order),))
    runner.start()
    time.sleep(0.3)
    assert order == ["a", "c"]  # b waits for the other worker
    claim.unlink()  # the other worker finished b
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert order == ["a", "c", "b"]
    # this worker's own claims are released, and nothing else is left behind
    assert list(where.iterdir()) == []


def _claim_in_step(directory, barrier, names, results):
    won = []
    for name in names:
        barrier.wait()  # every process tries the same unit at the same moment
        if claims._try_claim(directory, name):
            won.append(name)
    results.put(won)


def test_workers_starting_together_never_both_claim_a_unit(tmp_path):
    """A claim is never seen without its owner: workers that try a unit at the same moment
    leave exactly one owner (created empty and written after, about half had two)."""
    ctx = multiprocessing.get_context("fork")
    names = [f"unit{i}" for i in range(100)]
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_in_step, args=(tmp_path, barrier, names, results))
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    won = [name for _ in procs for name in results.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted(won) == sorted(names)  # each unit claimed once, by one of them
    # the claims hold their owners' ids, and nothing else is left behind
    owners = {int((tmp_path / f"{n}.claim").read_text()) for n in names}
    assert owners <= {proc.pid for proc in procs}
    assert len(list(tmp_path.iterdir())) == len(names)


def test_without_hard_links_claims_are_still_exclusive(where, monkeypatch):
    """On a file system that refuses hard links, a claim is created exclusively instead:
    it still names its owner, and a second claim of the unit by another live process
    fails."""

    def no_links(src, dst):
        raise PermissionError("hard links are not supported here")

    monkeypatch.setattr(claims.os, "link", no_links)
    assert claims._try_claim(where, "u")
    claim = where / "u.claim"
    assert int(claim.read_text()) == os.getpid()
    assert [p.name for p in where.iterdir()] == ["u.claim"]  # nothing else left behind
    proc = subprocess.run(
        [sys.executable, "-c", _CLAIM_AGAIN, str(where)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "False", proc.stderr


_CLAIM_AGAIN = """
import sys
from pathlib import Path
from simbench.sweep import claims
print(claims._try_claim(Path(sys.argv[1]), "u"))
"""


def test_a_second_run_claims_again(where, other_worker):
    """Nothing from a finished run says a unit is compiled (the compiled code may have been
    cleared since): a later run claims every unit again, and waits for a live owner."""
    order: list[str] = []
    claims.run_shared(_units(order))
    claim = where / f"{claims._name('b')}.claim"
    claim.write_text(str(other_worker))
    runner = threading.Thread(target=claims.run_shared, args=(_units(order),))
    runner.start()
    time.sleep(0.3)
    assert order == ["a", "b", "c", "a", "c"]
    claim.unlink()
    runner.join(timeout=5)
    assert order == ["a", "b", "c", "a", "c", "b"]


def test_a_claim_whose_owner_left_is_waited_for_no_longer(where, other_worker):
    name = claims._name("b")
    (where / f"{name}.claim").write_text(str(other_worker))
    order: list[str] = []
    runner = threading.Thread(target=claims.run_shared, args=(_units(order),))
    runner.start()
    time.sleep(0.2)
    os.kill(other_worker, 9)
    runner.join(timeout=5)
    assert order == ["a", "c", "b"]


@pytest.mark.parametrize("stale", ["dead", "old", "garbled"])
def test_dead_stale_or_garbled_claims_are_taken_over(where, stale):
    name = claims._name("b")
    claim = where / f"{name}.claim"
    if stale == "dead":
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        claim.write_text(str(proc.pid))
    elif stale == "old":
        claim.write_text(str(os.getppid()))
        old = time.time() - claims.STALE_SECONDS - 10
        os.utime(claim, (old, old))
    else:
        claim.write_text("not a pid")
    order: list[str] = []
    claims.run_shared(_units(order))
    assert order == ["a", "b", "c"]


def test_a_failing_unit_releases_its_claim(where):
    def boom():
        raise RuntimeError("compile failed")

    with pytest.raises(RuntimeError):
        claims.run_shared([("x", boom)])
    assert not (where / f"{claims._name('x')}.claim").exists()


def test_without_a_place_for_claims_units_run_in_order(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(claims, "claims_dir", lambda: blocker / "sub")
    order: list[str] = []
    claims.run_shared(_units(order))
    assert order == ["a", "b", "c"]

"""Report the GLM benchmarks: simbench's fit_glm against statsmodels, scikit-learn and glum.

Usage::

    python scripts/bench_glm.py                  # run the full grid, print the speed-ups
    python scripts/bench_glm.py --threads 1      # the same with every library on one thread
    python scripts/bench_glm.py run1.json ...    # report saved --benchmark-json files
                                                 # (several: best time of each benchmark)

The benchmarks are ``tests/benchmarks/test_bench_glm.py`` with ``SIMBENCH_BENCH_FULL=1``
(Poisson, Bernoulli and Gamma; n in {1e3, 1e4, 1e5}; p in {10, 50}).  Every figure is the
minimum over a benchmark's rounds (one round = one complete fit); a speed-up is the peer's
time over simbench's in the same group doing the same work (statsmodels against ``fit_glm``
with its covariances read, scikit-learn and glum against ``fit_glm`` alone), and the summary
is their geometric mean over the groups.  Targets: >= 10x statsmodels, >= 3x scikit-learn and glum.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("statsmodels", "sklearn", "glum")
# the simbench benchmark that does each peer's work (statsmodels also computes a covariance)
OURS = {"statsmodels": "simbench+cov", "sklearn": "simbench", "glum": "simbench"}
TARGETS = {"statsmodels": 10.0, "sklearn": 3.0, "glum": 3.0}
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def run_benchmarks(out: Path, threads: int | None = None) -> None:
    env = dict(os.environ, SIMBENCH_BENCH_FULL="1")
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "benchmarks" / "test_bench_glm.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-enable",
        "--benchmark-only",
        f"--benchmark-json={out}",
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)


def report(*paths: Path) -> str:
    """The table of one or more saved runs (several: the best time of each benchmark, which
    filters out runs disturbed by other load on a shared machine)."""
    best: dict[tuple[str, str], float] = {}
    data: dict = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        for b in data["benchmarks"]:
            key = (b["group"], b["extra_info"]["impl"])
            t = b["stats"]["min"]
            best[key] = min(t, best.get(key, math.inf))
    cpu = data.get("machine_info", {}).get("cpu", {})
    lines = [f"machine: {cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} CPUs"]
    lines.append(
        f"{'group':26s} {'simbench':>10s} {'+cov':>10s} " + " ".join(f"{p:>16s}" for p in PEERS)
    )
    ratios: dict[str, list[float]] = {p: [] for p in PEERS}

    def order(group: str):
        _, fam, n, p = group.split("-")
        return fam, int(n[1:]), int(p[1:])

    for group in sorted({g for g, _ in best}, key=order):
        plain = best.get((group, "simbench"))
        if plain is None:
            continue
        with_cov = best.get((group, "simbench+cov"))
        cells = []
        for peer in PEERS:
            theirs = best.get((group, peer))
            ours = best.get((group, OURS[peer]), plain)  # older runs: no simbench+cov
            if theirs is None:
                cells.append(f"{'-':>16s}")
                continue
            ratios[peer].append(theirs / ours)
            cells.append(f"{theirs * 1e3:9.2f}ms {theirs / ours:5.1f}x")
        cov = f"{with_cov * 1e3:8.2f}ms" if with_cov is not None else f"{'-':>10s}"
        lines.append(f"{group:26s} {plain * 1e3:8.2f}ms {cov} " + " ".join(cells))
    lines.append("geometric-mean speed-up of simbench:")
    for peer in PEERS:
        r = ratios[peer]
        if not r:
            continue
        gm = math.exp(sum(math.log(x) for x in r) / len(r))
        verdict = "met" if gm >= TARGETS[peer] else "NOT met"
        lines.append(
            f"  vs {peer:12s} {gm:6.2f}x over {len(r)} groups "
            f"(target {TARGETS[peer]:g}x: {verdict}; range {min(r):.2f}x .. {max(r):.2f}x)"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    threads = None
    if "--threads" in argv:
        i = argv.index("--threads")
        threads = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    if argv:
        print(report(*[Path(a) for a in argv]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench_glm.json"
        run_benchmarks(out, threads)
        print(report(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Report the network benchmarks: bandwidth fraction and speed-ups over PyTorch.

Usage::

    python scripts/bench_network.py                 # run tests/benchmarks/test_bench_network.py
    python scripts/bench_network.py run1.json ...   # report saved --benchmark-json files
                                                    # (several: best time of each benchmark)

Every figure is the minimum over the benchmark's rounds (one round = one epoch).  The
bandwidth is the read rate of a 256 MB array measured in the same run; "fraction" is the
bytes of X read per full-batch epoch divided by the epoch time, over that bandwidth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # group -> minimal speed-up over PyTorch
    "glm-full-p50": 3.0,
    "glm-batch256-p10": 20.0,
    "glm-batch256-p50": 20.0,
    "mlp-adam": 5.0,
}
BANDWIDTH_TARGET = 0.65


def run_benchmarks(out: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "benchmarks" / "test_bench_network.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-enable",
        "--benchmark-only",
        f"--benchmark-json={out}",
    ]
    subprocess.run(cmd, cwd=ROOT, check=True)


def report(*paths: Path) -> str:
    """The figures of one or more saved runs (several: the best time of each benchmark, which
    filters out runs disturbed by other load on a shared machine)."""
    best: dict[tuple[str, str], tuple[float, dict]] = {}
    data = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        for b in data["benchmarks"]:
            key = (b["group"], b["extra_info"].get("impl", "simbench"))
            t = b["stats"]["min"]
            if key not in best or t < best[key][0]:
                best[key] = (t, b["extra_info"])
    lines = []
    cpu = data.get("machine_info", {}).get("cpu", {})
    lines.append(f"machine: {cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} CPUs")
    bw = None
    if ("bandwidth", "simbench") in best:
        t, info = best[("bandwidth", "simbench")]
        bw = info["bytes"] / t
        lines.append(f"memory bandwidth (read, all threads): {bw / 1e9:.1f} GB/s")
    groups = sorted({g for g, _ in best if g != "bandwidth"})
    lines.append(
        f"{'group':18s} {'simbench':>12s} {'torch':>12s} {'speed-up':>9s} {'target':>7s}  notes"
    )
    for g in groups:
        ours = best.get((g, "simbench"))
        theirs = best.get((g, "torch"))
        if ours is None:
            continue
        t, info = ours
        ratio = theirs[0] / t if theirs else None
        note = ""
        if g.startswith(("glm-full", "glm-grad")) and bw and "bytes" in info:
            rate = info["bytes"] / t
            note = f"X read at {rate / 1e9:.1f} GB/s = {rate / bw:.0%} of bandwidth"
            if g == "glm-full-p50":
                note += f" (target {BANDWIDTH_TARGET:.0%})"
        target = TARGETS.get(g)
        lines.append(
            f"{g:18s} {t * 1e3:10.2f}ms "
            + (f"{theirs[0] * 1e3:10.2f}ms {ratio:8.1f}x" if theirs else f"{'-':>12s} {'-':>9s}")
            + (f" {target:6.0f}x" if target else f" {'':>7s}")
            + f"  {note}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv:
        print(report(*[Path(a) for a in argv]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench_network.json"
        run_benchmarks(out)
        print(report(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

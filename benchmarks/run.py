"""`make bench`: every benchmark, results to benchmarks/results/, table in benchmarks/README.md.

python benchmarks/run.py              # scale 1 figures (several runs each, medians)
python benchmarks/run.py --scale 10   # add the scale-10 figures (slow)
python benchmarks/run.py --only landing
python benchmarks/run.py --only scale30 --scale 30   # opt-in: end to end at scale 10, or 30
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, script, args at scale 1, args at scale 10); scale-1 args None: opt-in, run only when
# named with --only (at scale 10, or at --scale when that is 30)
BENCHMARKS = [
    (
        "landing",
        "bench_landing.py",
        ["--scale", "1", "--runs", "3"],
        ["--scale", "10", "--runs", "1"],
    ),
    ("warehouse", "bench_warehouse.py", ["--scale", "1"], ["--scale", "10"]),
    ("churn", "bench_churn.py", ["--scale", "1"], ["--scale", "10"]),
    ("segments", "bench_segments.py", ["--scale", "1"], ["--scale", "10"]),
    (
        "nextday",
        "bench_nextday.py",
        ["--scale", "1", "--days", "3"],
        ["--scale", "10", "--days", "2"],
    ),
    ("connectors", "bench_connectors.py", [], None),
    ("activation", "bench_activation.py", [], None),
    ("scale30", "bench_scale30.py", None, ["--scale", "10"]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="1, or 10 to add scale-10 runs")
    parser.add_argument("--only", action="append", help="run only these benchmarks")
    args = parser.parse_args()
    failed = []
    for name, script, small, large in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            print(f"[{name}] {script} not present, skipped", file=sys.stderr)
            continue
        if small is None:  # opt-in
            if not args.only:
                continue
            runs = [["--scale", "30"] if args.scale >= 30 else large]
        else:
            runs = [small] + ([large] if args.scale >= 10 and large is not None else [])
        for extra in runs:
            print(f"[{name}] {script} {' '.join(extra)}", file=sys.stderr)
            if subprocess.call([sys.executable, "-W", "ignore", str(path), *extra]) != 0:
                failed.append(f"{name} {' '.join(extra)}")
    print(f"results in {HERE / 'results'}, summary in {HERE / 'README.md'}", file=sys.stderr)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

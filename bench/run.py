"""Runs every benchmark module (bench/bench_*.py) in turn; each prints its own ratio table."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    only = sys.argv[1:]
    failed = []
    for path in sorted(HERE.glob("bench_*.py")) + sorted(HERE.glob("*_bench.py")):
        name = path.stem
        if only and name not in only:
            continue
        print(f"\n### {name}", flush=True)
        try:
            rc = importlib.import_module(name).main()
        except Exception:
            traceback.print_exc()
            rc = 1
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

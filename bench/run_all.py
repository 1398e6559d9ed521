"""Run every benchmark; each writes its own bench/results/*.md.

    .venv/bin/python -m bench.run_all      (or: make bench)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))


def main() -> int:
    failed = []
    for name in BENCHES:
        print(f"== bench.{name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time and peak memory of generating (and writing) the synthetic world at several sizes.

Run: .venv/bin/python benchmarks/bench_world.py [sizes...]   (each size in a fresh process)
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, resource, sys, tempfile, time
from cxresearch.synth import make_world, write_world
n = int(sys.argv[1])
t0 = time.perf_counter(); world = make_world(n_customers=n, seed=1); t1 = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    write_world(world, d); t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n": n, "generate_s": t1 - t0, "write_csv_s": t2 - t1, "peak_mb": peak,
                  "transactions": len(world["transactions"])}))
"""


def main(sizes: list[int]) -> None:
    print("| customers | generate (s) | write CSV (s) | peak memory (MB) | transaction rows |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['generate_s']:.1f} | {r['write_csv_s']:.1f} | {r['peak_mb']:,.0f} | {r['transactions']:,} |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [5_000, 100_000, 1_000_000])

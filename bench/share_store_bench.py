"""Share store speed and memory, SQLite against PostgreSQL, beside the gzip work every save and load does.

    .venv/bin/python bench/share_store_bench.py [--shares 200] [--threads 8]

The shares are the sample logs (sample_logs/*.log, one per share, in turn). PostgreSQL is a throwaway
server started like the tests' (tests/postgres_server.py: Debian's binaries, a temporary folder, a free
loopback port), so both back-ends write to the same disk. Figures: milliseconds per save and per load
(median, p95) one at a time, then saves per second from --threads threads over two stores (two replicas)
at once, each against the same-run baseline: gzip-compressing (save) or -decompressing (load) the same
files in the same process, the part of the work that does not depend on the database. Last, the peak
of Python's allocations (tracemalloc) while saving and loading one 64 MiB share of random bytes, which
compress to their own size: the ratio to the share's size shows whether compressed files pile up.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from share.postgres import PostgresStore  # noqa: E402
from share.store import SharedRun, ShareStore, SQLiteStore  # noqa: E402
from tests.postgres_server import PostgresServer, find_bindir  # noqa: E402

MIB = 1024**2


def sample_runs() -> list[SharedRun]:
    paths = sorted((REPO / "sample_logs").glob("*.log"))
    return [SharedRun(p.name, [(p.name, p.read_bytes())]) for p in paths]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(values) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms"


def one_at_a_time(store: ShareStore, runs: list[SharedRun], shares: int) -> None:
    picks = [runs[i % len(runs)] for i in range(shares)]
    gzip_save = [timed(lambda r=r: gzip.compress(r.files[0][1], compresslevel=6)) for r in picks]
    saves, ids = [], []
    for run in picks:
        start = time.perf_counter()
        ids.append(store.save([run], {}).id)
        saves.append(time.perf_counter() - start)
    blobs = [gzip.compress(r.files[0][1], compresslevel=6) for r in picks]
    gzip_load = [timed(lambda b=b: gzip.decompress(b)) for b in blobs]
    loads = [timed(lambda i=i: store.load(i)) for i in ids]
    ratio_save = statistics.median(saves) / statistics.median(gzip_save)
    ratio_load = statistics.median(loads) / statistics.median(gzip_load)
    print(f"  save  {ms(saves)}   gzip alone {ms(gzip_save)}   x{ratio_save:5.1f} the gzip")
    print(f"  load  {ms(loads)}   gunzip alone {ms(gzip_load)}   x{ratio_load:5.1f} the gunzip")


def concurrent(stores: list[ShareStore], runs: list[SharedRun], shares: int, threads: int) -> None:
    barrier = threading.Barrier(threads)

    def save(i: int) -> None:
        if i < threads:
            barrier.wait()
        stores[i % len(stores)].save([runs[i % len(runs)]], {})

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(save, range(shares)))
    wall = time.perf_counter() - start
    gzip_wall = timed(lambda: [gzip.compress(runs[i % len(runs)].files[0][1], 6) for i in range(shares)])
    print(
        f"  {shares} saves from {threads} threads over {len(stores)} stores: {shares / wall:6.1f} saves/s"
        f"   gzip alone, one thread: {shares / gzip_wall:6.1f}/s"
    )


def memory(store: ShareStore) -> None:
    files = [(f"{i}.bin", os.urandom(8 * MIB)) for i in range(8)]
    size = sum(len(d) for _, d in files)
    tracemalloc.start()
    saved = store.save([SharedRun("big", files)], {})
    save_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    store.load(saved.id)
    load_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"  64 MiB share: save peak {save_peak / MIB:5.1f} MiB ({save_peak / size:.2f} x share),"
        f" load peak {load_peak / MIB:5.1f} MiB ({load_peak / size:.2f} x share, the share itself is 1.00)"
    )


def run_backend(name: str, make: Callable[[], ShareStore], args: argparse.Namespace) -> None:
    runs = sample_runs()
    stores = [make(), make()]
    print(f"{name}:")
    one_at_a_time(stores[0], runs, args.shares)
    concurrent(stores, runs, args.shares, args.threads)
    memory(stores[0])
    for store in stores:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    runs = sample_runs()
    average_kb = sum(len(r.files[0][1]) for r in runs) / len(runs) / 1000
    print(f"{len(runs)} sample logs, {average_kb:.0f} kB on average")
    with tempfile.TemporaryDirectory() as tmp:
        run_backend("SQLite", lambda: SQLiteStore(Path(tmp) / "shares.sqlite3", max_bytes=128 * MIB), args)
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL's binaries are not installed (./run test installs them): SQLite only")
    server = PostgresServer(bindir)
    try:
        server.start()
        url = server.schema_url()
        run_backend("PostgreSQL", lambda: PostgresStore(url, max_bytes=128 * MIB), args)
    finally:
        server.close()


if __name__ == "__main__":
    main()

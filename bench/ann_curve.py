"""ANN growth curve: pgvector HNSW over halfvec at growing N, fitted and extrapolated.

    .venv/bin/python -m bench.ann --curve 100000,250000,500000,1000000,2000000
    .venv/bin/python -m bench.ann --curve quick        # 20k, 40k, 80k: a smoke run in minutes
    .venv/bin/python -m bench.ann --curve report --report a.jsonl,b.jsonl   # tables and fits

For each N the table is rebuilt from scratch: vectors of ``bench.ann``'s "topics" shape (about
1,000 per topic, 20 per sub-topic at every N, so the density stays that of the 1M figure in
docs/PERFORMANCE.md) are generated a block at a time and streamed in with binary COPY, so
neither the vectors nor the exact answers are ever all in memory: the exact float64 top 10 of
every query is merged block by block. Then one HNSW build (halfvec_cosine_ops, as the app's
index), its time and size, and for each ef_search the p50/p95 latency and recall@10 against
the exact top 10; the reference in the same run is an exact halfvec scan in PostgreSQL.

Each N's figures are appended as a JSON line to ``--out`` as soon as they exist (a long run
that is stopped keeps what it measured), then fitted as power laws (log-log least squares) and
extrapolated to 10M and 100M. Before each N the run checks that the table, the index and the
build memory fit in what the machine has free, and stops at the first N that does not.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import stack

QUICK_SIZES = (20_000, 40_000, 80_000)
BLOCK = 50_000
TOPIC_SIZE = 1_000
EXTRAPOLATE_TO = (10_000_000, 100_000_000)
# Per vector, measured: a halfvec(512) row is 1,172 bytes of table, the m=16 index 1,366.
ROW_BYTES, GRAPH_BYTES_PER_M = 1_200, 86
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def topical_blocks(
    rng: np.random.Generator, n: int, dim: int, topics: int, seed: int, block: int = BLOCK
) -> Iterator[np.ndarray]:
    """``bench.ann.topical_unit_vectors``, a block of float32 unit vectors at a time."""
    directions = np.random.default_rng(seed)

    def unit(count: int) -> np.ndarray:
        values = directions.standard_normal((count, dim), dtype=np.float32)
        return values / np.linalg.norm(values, axis=1, keepdims=True)

    common, topic_directions, subtopic_directions = unit(1)[0], unit(topics), unit(topics * 50)
    for start in range(0, n, block):
        count = min(block, n - start)
        topic = rng.integers(0, topics, count)
        subtopic = topic * 50 + rng.integers(0, 50, count)
        noise = rng.standard_normal((count, dim), dtype=np.float32) / np.sqrt(dim)
        values = (0.7 * common + 0.5 * topic_directions[topic]
                  + 0.5 * subtopic_directions[subtopic] + 0.5 * noise)  # fmt: skip
        yield values / np.linalg.norm(values, axis=1, keepdims=True)


class RunningTop:
    """The exact top ``k`` ids of each query over vectors seen a block at a time (float64)."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.queries = queries.astype(np.float64)
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf)
        self.ids = np.full((len(queries), k), -1, dtype=np.int64)

    def add(self, block: np.ndarray, first_id: int) -> None:
        scores = np.concatenate([self.scores, self.queries @ block.astype(np.float64).T], axis=1)
        ids = np.concatenate(
            [
                self.ids,
                np.broadcast_to(
                    np.arange(first_id, first_id + len(block)), scores[:, self.k :].shape
                ),
            ],
            axis=1,
        )
        keep = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(scores, keep, axis=1)
        self.ids = np.take_along_axis(ids, keep, axis=1)

    def top(self) -> np.ndarray:
        order = np.argsort(-self.scores, axis=1, kind="stable")
        return np.take_along_axis(self.ids, order, axis=1)


def halfvec_copy_rows(first_id: int, block: np.ndarray) -> bytes:
    """One block as rows of PostgreSQL's binary COPY format: (bigint id, halfvec), big-endian,
    without the file header and trailer (``_COPY_HEADER`` / ``_COPY_TRAILER``)."""
    count, dim = block.shape
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">u2"),
            ("unused", ">u2"),
            ("values", ">f2", (dim,)),
        ]
    )
    rows = np.empty(count, dtype=row)
    rows["fields"], rows["id_len"], rows["vec_len"] = 2, 8, 4 + 2 * dim
    rows["id"] = np.arange(first_id, first_id + count)
    rows["dim"], rows["unused"] = dim, 0
    rows["values"] = block
    return rows.tobytes()


@dataclass(frozen=True)
class Fit:
    """``value ≈ scale * n ** slope``, fitted on log-log axes."""

    slope: float
    scale: float

    def at(self, n: float) -> float:
        return self.scale * n**self.slope


def power_fit(sizes: list[int], values: list[float]) -> Fit:
    """Least squares on log(value) against log(n); needs two points or more, all positive."""
    if len(sizes) < 2 or min(values) <= 0:
        raise ValueError("a power fit needs two or more positive points")
    slope, intercept = np.polyfit(np.log(sizes), np.log(values), 1)
    return Fit(slope=float(slope), scale=float(np.exp(intercept)))


def log_linear_fit(sizes: list[int], values: list[float]):
    """(change per tenfold n, the fitted function) for ``value ≈ a + b * log10(n)``."""
    if len(sizes) < 2:
        raise ValueError("a fit needs two or more points")
    slope, intercept = np.polyfit(np.log10(sizes), values, 1)
    return float(slope), lambda n: float(intercept + slope * np.log10(n))


class BackendCpu:
    """CPU seconds a PostgreSQL backend and the parallel workers it starts spend inside the
    ``with`` block, sampled from /proc (the embedded server runs on this machine). On a shared
    machine wall time says how busy the others were; CPU time is what the build costs."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()

    @staticmethod
    def _cpu(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        pids = [self.pid]
        marker = f"parallel worker for PID {self.pid}".encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                        if marker in cmdline.read():
                            pids.append(int(entry))
                except OSError:
                    pass
        return pids

    def sample(self) -> None:
        for pid in self._pids():
            try:
                cpu = self._cpu(pid)
            except OSError:
                continue  # a worker that just exited keeps its last sample
            self.first.setdefault(pid, 0.0 if pid != self.pid else cpu)
            self.last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> BackendCpu:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def build_memory(n: int, m: int) -> int:
    """maintenance_work_mem that holds the whole graph (a build that spills is far slower):
    the graph in memory is larger than the index on disk; pgvector says when it spills."""
    return n * GRAPH_BYTES_PER_M * m * 3 // 2 + 256 * 2**20


def measure_size(cursor, n: int, args, queries: np.ndarray, out: Path) -> dict | None:
    m, ef_construction = args.m, args.ef_construction
    work_mem = build_memory(n, m)
    need = n * (ROW_BYTES + GRAPH_BYTES_PER_M * m) + work_mem + args.headroom_gib * 2**30
    free = available_bytes()
    if need > free:
        print(f"stop before {n:,}: needs about {need / 2**30:.1f} GiB with "
              f"{args.headroom_gib} GiB headroom, {free / 2**30:.1f} GiB available")  # fmt: skip
        return None
    rng = np.random.default_rng(n)
    topics = max(n // TOPIC_SIZE, 10)
    truth = RunningTop(queries)
    cursor.execute("DROP TABLE IF EXISTS bench_curve")
    cursor.execute(f"CREATE TABLE bench_curve (id bigint, h halfvec({args.dim}))")
    started = time.perf_counter()
    with cursor.copy("COPY bench_curve (id, h) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER)
        first = 0
        for block in topical_blocks(rng, n, args.dim, topics, seed=7):
            truth.add(block, first)
            copy.write(halfvec_copy_rows(first, block))
            first += len(block)
        copy.write(_COPY_TRAILER)
    cursor.execute("VACUUM ANALYZE bench_curve")
    load_s = time.perf_counter() - started
    cursor.execute("SELECT pg_table_size('bench_curve')")
    table_bytes = cursor.fetchone()[0]
    exact = truth.top()
    sql = f"SELECT id FROM bench_curve ORDER BY h <=> %s::halfvec({args.dim}) LIMIT 10"

    from bench.ann import recall_at_10, timed_queries

    count = args.exact_queries
    cursor.execute("SET enable_indexscan = off")
    exact_latencies, exact_results = timed_queries(cursor, sql, queries[:count])
    cursor.execute("SET enable_indexscan = on")
    exact_recall = recall_at_10(exact_results, exact[:count])

    cursor.execute(f"SET maintenance_work_mem = '{work_mem // 2**20}MB'")
    load_before = os.getloadavg()[0]
    cursor.execute("SELECT pg_backend_pid()")
    notices: list[str] = []
    cursor.connection.add_notice_handler(lambda notice: notices.append(notice.message_primary))
    started = time.perf_counter()
    with BackendCpu(cursor.fetchone()[0]) as build_cpu:
        cursor.execute(
            "CREATE INDEX bench_curve_hnsw ON bench_curve USING hnsw (h halfvec_cosine_ops) "
            f"WITH (m = {m}, ef_construction = {ef_construction})"
        )
    build_s = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    cursor.execute("SELECT pg_relation_size('bench_curve_hnsw')")
    index_bytes = cursor.fetchone()[0]
    result = {
        "n": n, "dim": args.dim, "m": m, "ef_construction": ef_construction,
        "load_s": round(load_s, 1), "table_bytes": table_bytes, "build_s": round(build_s, 1),
        "build_cpu_s": round(build_cpu.seconds, 1), "build_notices": notices,
        "index_bytes": index_bytes, "maintenance_work_mem_mb": work_mem // 2**20,
        "loadavg_build": [round(load_before, 2), round(load_after, 2)],
        "exact_scan": {"queries": count, "p50_ms": stack.percentile(exact_latencies, 50),
                       "p95_ms": stack.percentile(exact_latencies, 95), "recall": exact_recall},
        "hnsw": [],
    }  # fmt: skip
    for ef_search in args.ef_search_values:
        cursor.execute(f"SET hnsw.ef_search = {ef_search}")
        timed_queries(cursor, sql, queries[:10])  # warm the index pages
        latencies, results = timed_queries(cursor, sql, queries)
        result["hnsw"].append({
            "ef_search": ef_search, "p50_ms": stack.percentile(latencies, 50),
            "p95_ms": stack.percentile(latencies, 95),
            "recall": recall_at_10(results, exact),
        })  # fmt: skip
    result["loadavg_end"] = round(os.getloadavg()[0], 2)
    cursor.execute("DROP TABLE bench_curve")
    with out.open("a") as file:
        file.write(json.dumps(result) + "\n")
    return result


def report(results: list[dict]) -> None:
    """Markdown tables of the measured points, then the power fits and their extrapolation."""
    print("\n| N | load s | table MB | build s | build CPU s | index MB | "
          "exact scan p50 / p95 ms | load avg during build |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        e = r["exact_scan"]
        print(f"| {r['n']:,} | {r['load_s']:.0f} | {r['table_bytes'] / 2**20:.0f} | "
              f"{r['build_s']:.0f} | {r.get('build_cpu_s', '')} | "
              f"{r['index_bytes'] / 2**20:.0f} | "
              f"{e['p50_ms']:.0f} / {e['p95_ms']:.0f} | "
              f"{r['loadavg_build'][0]:.1f} → {r['loadavg_build'][1]:.1f} |")  # fmt: skip
    ef_values = [h["ef_search"] for h in results[0]["hnsw"]]
    print("\n| N | " + " | ".join(f"ef_search {ef}: p50 / p95 ms, recall@10" for ef in ef_values)
          + " |")  # fmt: skip
    print("|---|" + "---|" * len(ef_values))
    for r in results:
        cells = [f"{h['p50_ms']:.2f} / {h['p95_ms']:.2f}, {h['recall']:.3f}" for h in r["hnsw"]]
        print(f"| {r['n']:,} | " + " | ".join(cells) + " |")
    if len(results) < 2:
        return
    sizes = [r["n"] for r in results]
    series = {
        "build s": [r["build_s"] for r in results],
        "index MB": [r["index_bytes"] / 2**20 for r in results],
        "table MB": [r["table_bytes"] / 2**20 for r in results],
        "exact scan p50 ms": [r["exact_scan"]["p50_ms"] for r in results],
    }
    if all("build_cpu_s" in r for r in results):
        series["build CPU s"] = [r["build_cpu_s"] for r in results]
    for i, ef in enumerate(ef_values):
        series[f"ef_search {ef} p95 ms"] = [r["hnsw"][i]["p95_ms"] for r in results]
    header = " | ".join(f"at {n / 1e6:.0f}M" for n in EXTRAPOLATE_TO)
    print(f"\n| quantity | log-log slope | {header} |")
    print("|---|---|" + "---|" * len(EXTRAPOLATE_TO))
    for name, values in series.items():
        fit = power_fit(sizes, values)
        cells = " | ".join(f"{fit.at(n):,.3g}" for n in EXTRAPOLATE_TO)
        print(f"| {name} | {fit.slope:.2f} | {cells} |")
    # Recall is bounded, so no power law: fitted as a straight line in log10(N), the recall
    # lost per tenfold growth.
    print("\n| recall@10 | per tenfold N | " + header + " |")
    print("|---|---|" + "---|" * len(EXTRAPOLATE_TO))
    for i, ef in enumerate(ef_values):
        per_decade, at = log_linear_fit(sizes, [r["hnsw"][i]["recall"] for r in results])
        cells = " | ".join(f"{min(1.0, max(0.0, at(n))):.3f}" for n in EXTRAPOLATE_TO)
        print(f"| ef_search {ef} | {per_decade:+.3f} | {cells} |")


def read_results(paths: list[Path]) -> list[dict]:
    """The points in JSON-lines files, the last one of each N, in order of N."""
    points: dict[int, dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                point = json.loads(line)
                points[point["n"]] = point
    return [points[n] for n in sorted(points)]


def main(args) -> None:
    if args.report:
        report(read_results([Path(p) for p in args.report.split(",")]))
        return
    sizes = QUICK_SIZES if args.curve == "quick" else tuple(int(s) for s in args.curve.split(","))
    args.ef_search_values = [int(v) for v in args.ef_search.split(",")]
    m, ef_construction = (int(part) for part in args.settings.split(",")[0].split(":"))
    args.m, args.ef_construction = m, ef_construction
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stack.start(model="MediaSearch-Demo", pretrained="demo")
    from django.db import connection
    from pgvector.psycopg import register_vector

    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    register_vector(raw)
    cursor = raw.cursor()
    cursor.execute(f"SET max_parallel_maintenance_workers = {args.parallel_workers}")
    results = []
    for n in sizes:
        # Held-out queries from the same topics as this N's vectors (the directions are seeded).
        topics = max(n // TOPIC_SIZE, 10)
        query_rng = np.random.default_rng(10**9 + n)
        queries = np.concatenate(
            list(topical_blocks(query_rng, args.queries, args.dim, topics, seed=7))
        )
        result = measure_size(cursor, n, args, queries, out)
        if result is None:
            break
        best = max(result["hnsw"], key=lambda h: h["recall"])
        print(f"{n:,}: load {result['load_s']:.0f} s, build {result['build_s']:.0f} s, index "
              f"{result['index_bytes'] / 2**20:.0f} MB, best recall {best['recall']:.3f} "
              f"(ef_search {best['ef_search']}, p95 {best['p95_ms']:.1f} ms)",
              flush=True)  # fmt: skip
        results.append(result)
    if results:
        report(results)

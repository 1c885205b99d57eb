"""``dnnreg serve`` under load: requests per second and p50/p99 latency for 1-row and
100-row requests, against the same model called in-process (the NumPy runtime on a
DataFrame of the same rows), in one run.

The model has the default architecture (8 members of 3 x 256 with the piecewise-linear
embedding, California housing's 8 features) trained for 3 epochs only: serving cost
depends on the architecture, not on how long it trained. One server process (1 worker,
the NumPy engine) on a loopback port; the clients run on the same 2 cores, so the
numbers include their cost too. Latency: one client, sequential requests on a kept-alive
connection. Throughput: 4 concurrent clients.

Run: ``.venv/bin/python bench/serve.py [--requests 300]``. Results: results/serve.{json,md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import write
from dnnreg import DNNRegressor, load_numpy, save
from dnnreg.tables.datasets import load_california_housing

CLIENTS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnnreg", "serve", str(path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def _client(port: int, body: bytes, n: int) -> list[float]:
    """``n`` sequential requests on one kept-alive connection; each one's seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def _summary(times: list[float], wall: float) -> dict:
    ms = 1000 * np.asarray(times)
    return {
        "requests": len(times),
        "requests_per_s": len(times) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def run(n_requests: int) -> dict:
    X, y = load_california_housing(return_X_y=True)
    model = DNNRegressor(max_iter=3, random_state=0).fit(X.iloc[:4000], y.iloc[:4000])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        save(model, Path(tmp) / "model")
        runtime = load_numpy(Path(tmp) / "model")
        port = _free_port()
        proc = _start(Path(tmp) / "model", port)
        try:
            for rows in (1, 100):
                frame = X.iloc[:rows]
                body = json.dumps({"rows": json.loads(frame.to_json(orient="records"))}).encode()
                in_process = []
                for _ in range(n_requests):
                    start = time.perf_counter()
                    runtime.predict(frame)
                    in_process.append(time.perf_counter() - start)
                start = time.perf_counter()
                sequential = _client(port, body, n_requests)
                seq_wall = time.perf_counter() - start
                start = time.perf_counter()
                with ThreadPoolExecutor(CLIENTS) as pool:
                    jobs = [pool.submit(_client, port, body, n_requests) for _ in range(CLIENTS)]
                    parts = [job.result() for job in jobs]
                conc_wall = time.perf_counter() - start
                results[rows] = {
                    "in_process": _summary(in_process, sum(in_process)),
                    "served, 1 client": _summary(sequential, seq_wall),
                    f"served, {CLIENTS} clients": _summary(sum(parts, []), conc_wall),
                }
                print(rows, results[rows], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return results


def table_md(results: dict, command: str) -> str:
    lines = [
        "| rows per request | how | requests/s | rows/s | p50 ms | p99 ms | p50 vs in-process |",
        "|---|---|---|---|---|---|---|",
    ]
    for rows, by_how in results.items():
        base = by_how["in_process"]["p50_ms"]
        for how, r in by_how.items():
            rate = r["requests_per_s"]
            lines.append(
                f"| {rows} | {how} | {rate:.0f} | {rate * int(rows):.0f} | {r['p50_ms']:.2f}"
                f" | {r['p99_ms']:.2f} | {r['p50_ms'] / base:.1f}x |"
            )
    lines += ["", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    command = "python bench/serve.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = run(args.requests)
    write("serve", {"command": command, "results": results}, table_md(results, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A load test of ``rol-hashing serve`` (issue 24): a bounded number of concurrent clients
against 127.0.0.1 for a bounded time.

Starts ``rol-hashing serve RUN`` as its own process, waits for ``/api/health``, then
``--clients`` threads each send searches back to back for ``--seconds``: three in four by
a random gallery id, one in four as an upload of a gallery image. Records requests per
second, p50/p95/p99 latency, failed requests and the server's resident memory (at the
start of the load, its peak, at the end), and appends a row to ``--results``.

    python -m benchmarks.serve_load --run runs/demo/seed0/runs/generated-rol-48b
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _multipart(fields: dict[str, str], file_field: str, name: str, data: bytes):
    boundary = "----rolhashing" + os.urandom(8).hex()
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    )
    out.write(data + b"\r\n" + f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _upload_bytes(run: Path, gallery_id: str) -> bytes:
    """A gallery image as a file's bytes (the file itself, or a PNG of an array row)."""
    from PIL import Image

    from rol_hashing.training.layout import open_hashing_run

    record = open_hashing_run(run).load_data()[1]
    i = record.index_of([gallery_id])[0]
    if record.paths is not None:
        return Path(record.paths[i]).read_bytes()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(record.images[i])).save(buffer, format="PNG")
    return buffer.getvalue()


def load_test(run: Path, clients: int, seconds: float, port: int, top_k: int = 10) -> dict:
    """Runs the server and the clients; returns the measurements."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rol_hashing", "serve", str(run), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        health = None
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"serve {run} exited with code {server.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/health")
                health = json.loads(conn.getresponse().read())
                break
            except OSError:
                time.sleep(1)
        if health is None:
            raise SystemExit("the server did not answer /api/health")
        (info,) = health["runs"].values()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        ids = _gallery_ids(run)
        upload = _upload_bytes(run, ids[0])
        # warm-up: one of each kind, so that the first model call is not measured
        for body, kind in (
            _id_body(ids[0], top_k),
            _multipart({"top_k": str(top_k)}, "image", "q.png", upload),
        ):
            conn.request("POST", "/api/search", body=body, headers={"Content-Type": kind})
            conn.getresponse().read()
        rss = {"start": _rss_mib(server.pid), "peak": _rss_mib(server.pid)}
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while time.perf_counter() < stop:
                if rng.random() < 0.25:
                    body, kind = _multipart({"top_k": str(top_k)}, "image", "q.png", upload)
                else:
                    body, kind = _id_body(rng.choice(ids), top_k)
                start = time.perf_counter()
                try:
                    c.request("POST", "/api/search", body=body, headers={"Content-Type": kind})
                    response = c.getresponse()
                    data = response.read()
                    ok = response.status == 200 and len(json.loads(data)["results"]) == 1
                except (OSError, ValueError, KeyError) as err:
                    ok, data = False, str(err).encode()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    if not ok:
                        failures.append(data[:200].decode(errors="replace"))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            rss["peak"] = max(rss["peak"], _rss_mib(server.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - began
        rss["end"] = _rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    lat = np.asarray(latencies) * 1000
    return {
        "run": run.name,
        "gallery": info["gallery"],
        "bits": info["bits"],
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "rss_start_mib": round(rss["start"]),
        "rss_peak_mib": round(rss["peak"]),
        "rss_end_mib": round(rss["end"]),
    }


def _id_body(gallery_id: str, top_k: int) -> tuple[bytes, str]:
    body = urllib.parse.urlencode({"id": gallery_id, "top_k": top_k}).encode()
    return body, "application/x-www-form-urlencoded"


def _gallery_ids(run: Path) -> list[str]:
    with np.load(run / "index_items.npz") as items:
        return items["ids"].tolist()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--results", type=Path, default=Path("benchmarks/results.md"))
    args = p.parse_args(argv)
    out = load_test(args.run, args.clients, args.seconds, args.port)
    print(json.dumps(out))
    header = (
        "\n## serve load test (`python -m benchmarks.serve_load`)\n\n"
        "| date | run | gallery | clients | s | requests | failed | req/s | p50 ms | p95 ms "
        "| p99 ms | RSS start / peak / end MiB |\n" + "|---" * 12 + "|\n"
    )
    text = args.results.read_text() if args.results.is_file() else ""
    if "## serve load test" not in text:
        text += header
    row = (
        f"| {time.strftime('%Y-%m-%d')} | {out['run']} | {out['gallery']} | {out['clients']} | "
        f"{out['seconds']} | {out['requests']} | {out['failed']} | {out['rps']} | {out['p50_ms']} "
        f"| {out['p95_ms']} | {out['p99_ms']} | {out['rss_start_mib']} / {out['rss_peak_mib']} / "
        f"{out['rss_end_mib']} |\n"
    )
    start = text.index("## serve load test")
    table_end = text.find("\n\n", text.index("|---", start))
    text = (
        text + row
        if table_end == -1
        else text[:table_end] + "\n" + row.rstrip("\n") + text[table_end:]
    )
    args.results.write_text(text)
    return 0 if out["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

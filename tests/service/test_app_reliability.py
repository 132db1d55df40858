"""Reliability, tested on a real server: concurrent uploads get distinct consecutive versions,
a SIGKILL loses no acknowledged version and leaves no half-written one, and SIGTERM lets the
request in flight finish before the process exits."""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import graphkit
from graphkit.service.store import Store
from tests.service.server_fixtures import JSON_TYPE, LiveServer, canonical, variant

THREADS = 8
UPLOADS_PER_THREAD = 5


def test_concurrent_uploads_get_distinct_consecutive_versions(tmp_path: Path) -> None:
    server = LiveServer(tmp_path).start()
    try:
        barrier = threading.Barrier(THREADS)
        results: dict[int, bytes] = {}
        statuses: list[int] = []
        lock = threading.Lock()

        def upload(thread: int) -> None:
            with server.client() as http:
                barrier.wait()
                for i in range(UPLOADS_PER_THREAD):
                    data = variant(thread * 1000 + i)
                    response = http.post("/graphs/shared/versions", content=data,
                                         headers=JSON_TYPE)
                    with lock:
                        statuses.append(response.status_code)
                        if response.status_code == 201:
                            results[response.json()["version"]] = data

        workers = [threading.Thread(target=upload, args=(t,)) for t in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        total = THREADS * UPLOADS_PER_THREAD
        assert statuses == [201] * total
        assert sorted(results) == list(range(1, total + 1))
        with server.client() as http:
            listed = http.get("/graphs/shared", params={"page_size": 1000}).json()
            assert [v["version"] for v in listed["versions"]] == list(range(1, total + 1))
            for version, data in results.items():
                stored = http.get(f"/graphs/shared/versions/{version}")
                assert stored.content == canonical(data)
    finally:
        server.stop()


def test_sigkill_during_uploads_keeps_every_acknowledged_version_and_no_torn_one(
        tmp_path: Path) -> None:
    server = LiveServer(tmp_path).start()
    acknowledged: dict[int, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def upload_forever(thread: int) -> None:
        with server.client() as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                data = variant(thread * 100_000 + i)
                try:
                    response = http.post("/graphs/crash/versions", content=data,
                                         headers=JSON_TYPE)
                except httpx.TransportError:
                    return  # the server died under this request: not acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged[response.json()["version"]] = data

    workers = [threading.Thread(target=upload_forever, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()  # while the uploads are still going
    stop.set()
    for worker in workers:
        worker.join(30)
    assert len(acknowledged) >= 20

    server.start()  # the same database
    try:
        with server.client() as http:
            for version, data in acknowledged.items():
                stored = http.get(f"/graphs/crash/versions/{version}")
                assert stored.status_code == 200, (version, stored.text)
                assert stored.content == canonical(data)
            listed = http.get("/graphs/crash", params={"page_size": 1000}).json()["versions"]
            assert {v["version"] for v in listed} >= set(acknowledged)
            for entry in listed:  # nothing half-written: every stored version is whole
                body = http.get(f"/graphs/crash/versions/{entry['version']}").content
                assert hashlib.sha256(body).hexdigest() == entry["sha256"]
                assert len(body) == entry["size"]
                graphkit.validate(graphkit.loads(body))
            numbers = sorted(v["version"] for v in listed)
            assert numbers == list(range(1, len(numbers) + 1))
            # and the server takes uploads again, numbering on
            after = http.post("/graphs/crash/versions", content=variant(-1), headers=JSON_TYPE)
            assert after.json()["version"] == numbers[-1] + 1
    finally:
        server.stop()


@pytest.fixture
def slow_body() -> Iterator[tuple[threading.Event, threading.Event, bytes]]:
    started, signalled = threading.Event(), threading.Event()
    yield started, signalled, variant(42) + b" " * 200_000


def test_sigterm_finishes_the_request_in_flight_then_exits(
        tmp_path: Path, slow_body: tuple[threading.Event, threading.Event, bytes]) -> None:
    started, signalled, body = slow_body
    server = LiveServer(tmp_path).start()

    def trickle() -> Iterator[bytes]:
        """The body in pieces: the first, then (after SIGTERM reached the server) the rest."""
        yield body[:1000]
        started.set()
        assert signalled.wait(20)
        for offset in range(1000, len(body), 50_000):
            time.sleep(0.1)
            yield body[offset:offset + 50_000]

    outcome: dict[str, object] = {}

    def upload() -> None:
        with server.client() as http:
            try:
                response = http.post("/graphs/graceful/versions", content=trickle(),
                                     headers={**JSON_TYPE, "Content-Length": str(len(body))})
                outcome["status"] = response.status_code
                outcome["version"] = response.json().get("version")
            except httpx.HTTPError as exc:
                outcome["error"] = repr(exc)

    client = threading.Thread(target=upload)
    client.start()
    assert started.wait(20)
    time.sleep(0.2)  # the request is in the server's hands
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert server.process.poll() is None  # still running: it waits for the request
    signalled.set()
    client.join(30)
    assert outcome.get("status") == 201, outcome
    # uvicorn re-raises the signal once shut down, so the exit status says SIGTERM ended it
    assert server.process.wait(30) in (0, -signal.SIGTERM)
    output = server.output()
    assert "Shutting down" in output and "Finished server process" in output
    with Store(server.db) as store:
        info, content = store.get("graceful")
    assert info.version == outcome["version"]
    assert content == canonical(body)

"""Many writers of one name at once, from threads and from separate processes, on SQLite and
PostgreSQL: every upload gets its own number, the numbers are exactly 1..N, and every one is
stored. And an acknowledged version survives SIGKILL of the process that wrote it."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from pathlib import Path

from graphkit.service.store import Store

NAME = "contested"
WRITERS_TIMEOUT = 180.0
"""Seconds the spawned writers get: they start Python and import sqlalchemy on a busy CI box."""


def content(writer: int, n: int) -> bytes:
    return f'{{"writer": {writer}, "upload": {n}}}'.encode()


def upload(store: Store, writer: int, count: int) -> list[int]:
    numbers = []
    for n in range(count):
        data = content(writer, n)
        info, created = store.add_version(NAME, data, hashlib.sha256(data).hexdigest(), nodes=1)
        assert created
        numbers.append(info.version)
    return numbers


def check_all_stored(store: Store, writers: int, count: int, numbers: list[int]) -> None:
    total = writers * count
    assert sorted(numbers) == list(range(1, total + 1))
    listed, token = store.list_versions(NAME, limit=1000)
    assert token is None
    assert [info.version for info in listed] == list(range(1, total + 1))
    stored = {store.get(NAME, info.version)[1] for info in listed}
    assert stored == {content(w, n) for w in range(writers) for n in range(count)}
    for info in listed:
        assert hashlib.sha256(store.get(NAME, info.version)[1]).hexdigest() == info.sha256


def test_threads_uploading_one_name_get_versions_1_to_40(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        start = threading.Barrier(8)

        def writer(index: int) -> list[int]:
            start.wait()
            return upload(store, index, 5)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(writer, range(8)))
        check_all_stored(store, 8, 5, [n for numbers in results for n in numbers])


def process_writer(url: str, index: int, count: int, start: Barrier,
                   results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One 'server worker': its own Store and connections, starting on a brand-new database."""
    try:
        with Store(url) as store:
            start.wait()
            store.check_schema()  # all at once: the schema is created exactly once
            results.put(upload(store, index, count))
    except BaseException:
        results.put(traceback.format_exc())  # the parent's assertion shows it
        raise


def test_processes_uploading_one_name_get_distinct_consecutive_versions(store_url: str) -> None:
    writers, count = 4, 5
    with Store(store_url) as store:
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(writers)
        results = context.Queue()
        processes = [context.Process(target=process_writer,
                                     args=(store_url, index, count, start, results))
                     for index in range(writers)]
        for process in processes:
            process.start()
        numbers: list[int] = []
        deadline = time.monotonic() + WRITERS_TIMEOUT
        for _ in processes:
            while True:
                try:
                    outcome = results.get(timeout=1)
                    break
                except queue.Empty:
                    dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                    assert not dead, f"writer processes died without a word: exit codes {dead}"
                    assert time.monotonic() < deadline, "writers did not finish in time"
            assert not isinstance(outcome, str), f"a writer failed:\n{outcome}"
            numbers += outcome
        for process in processes:
            process.join(timeout=WRITERS_TIMEOUT)
            assert process.exitcode == 0
        store.check_schema()
        check_all_stored(store, writers, count, numbers)


KILLED_WRITER = """
import hashlib, sys
from graphkit.service.store import Store
store = Store(sys.argv[1])
n = 0
while True:
    data = ('{"killed": %d, "pad": "%s"}' % (n, "x" * 20000)).encode()
    info, _ = store.add_version("killed", data, hashlib.sha256(data).hexdigest(), nodes=1)
    print(info.version, info.sha256, flush=True)
    n += 1
"""


def test_acknowledged_versions_survive_sigkill_and_nothing_half_written(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, store_url],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    acknowledged: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while len(acknowledged) < 15 and time.monotonic() < deadline:
        version, sha = writer.stdout.readline().split()
        acknowledged[int(version)] = sha
    os.kill(writer.pid, signal.SIGKILL)  # mid-upload: it never stops between uploads
    writer.wait()
    assert len(acknowledged) >= 15
    with Store(store_url) as store:
        store.check_schema()
        listed = store.list_versions("killed", limit=1000)[0]
        numbers = [info.version for info in listed]
        assert numbers == list(range(1, len(numbers) + 1))  # no holes, no half version
        assert set(acknowledged) <= set(numbers)
        for info in listed:
            data = store.get("killed", info.version)[1]
            assert hashlib.sha256(data).hexdigest() == info.sha256 == acknowledged.get(
                info.version, info.sha256)
        # the store keeps working after the crash
        data = b'{"after": "kill"}'
        info, _ = store.add_version("killed", data, hashlib.sha256(data).hexdigest(), nodes=1)
        assert info.version == len(numbers) + 1


def test_workers_opening_a_new_sqlite_file_together_all_get_wal(tmp_path: Path) -> None:
    """Switching a new file to WAL can fail at once with 'database is locked' (SQLite does not
    apply the busy timeout there) when workers open it together; the store retries."""
    for round_ in range(40):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        start = threading.Barrier(6)

        def open_store(_: int, url: str = url, start: threading.Barrier = start) -> str:
            store = Store(url)
            try:
                start.wait()
                with store.engine.connect() as conn:
                    return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
            finally:
                store.close()

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(open_store, range(6))) == ["wal"] * 6

"""Databases for the service tests: a SQLite file per test, and a REAL PostgreSQL server.

The PostgreSQL server (initdb + pg_ctl from PATH or /usr/local/bin, PostgreSQL refuses to run as
root) is started once per session on a Unix socket in a private temporary folder, no TCP port;
each test gets a database of its own. When the tests run as root (CI), initdb, pg_ctl and the
server run as the unprivileged user `nobody` (present on every Debian/Ubuntu machine, no
useradd needed) via subprocess's `user=`; the folder is handed to that user. If the server
cannot be started, the PostgreSQL tests FAIL with the reason: the issue requires them to run.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
               "/usr/lib/postgresql/17/bin")
PG_PORT = 5432  # only names the socket file .s.PGSQL.5432 in our private folder
PG_USER = "nobody"


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    pytest.fail(f"PostgreSQL's {name} is not installed (looked on PATH and in {PG_BIN_DIRS}); "
                "the store tests need a real PostgreSQL server", pytrace=False)


class PostgresServer:
    """A throwaway PostgreSQL cluster on a Unix socket; `database()` makes a fresh database."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="graphkit-pg-"))
        self.data = self.base / "data"
        self.socket = self.base / "sock"
        self.socket.mkdir()
        self._counter = itertools.count(1)
        self._user: int | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(PG_USER)
            except KeyError:
                pytest.fail(f"running as root and there is no user {PG_USER!r} to run "
                            "PostgreSQL as (it refuses to run as root)", pytrace=False)
            self._user = entry.pw_uid
            for path in (self.base, self.socket):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        # The client (us) must reach the socket; the data folder stays private (initdb: 0700).
        self.base.chmod(0o755)
        self.socket.chmod(0o755)
        self.log = self.base / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), user=self._user, cwd=self.base, text=True,
                              capture_output=True, timeout=120,
                              env={**os.environ, "LC_ALL": "C", "LANG": "C"})

    def start(self) -> None:
        steps = [
            (_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "--no-sync", "-E", "UTF8"),
            (_pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "-o", f"-k {self.socket} -p {PG_PORT} -c listen_addresses='' -c fsync=off "
                   "-c max_connections=200", "start"),
        ]
        for step in steps:
            result = self._run(*step)
            if result.returncode != 0:
                log = self.log.read_text() if self.log.exists() else ""
                pytest.fail(f"could not start PostgreSQL ({Path(step[0]).name} exited "
                            f"{result.returncode}): {result.stderr.strip()} {log[-2000:]}",
                            pytrace=False)

    def stop(self) -> None:
        if self.data.exists():
            self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket}&port={PG_PORT}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket), port=PG_PORT, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def database(self) -> str:
        name = f"graphkit_test_{os.getpid()}_{next(self._counter)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, stopped (and its files removed) at the end."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (psycopg 3 URL), dropped after the test."""
    name = postgres_server.database()
    yield postgres_server.url(name)
    postgres_server.drop(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of the test's own (not yet created)."""
    return f"sqlite:///{tmp_path / 'graphkit.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on both backends the issue requires."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param]
    return request.getfixturevalue(fixture)

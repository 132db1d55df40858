"""The registry's store: named graphs with immutable, server-numbered versions, in SQL.

SQLite by default (a file `graphkit.db` in the working folder), PostgreSQL by URL; SQLAlchemy 2
Core underneath, the schema owned by Alembic (`graphkit.service.migrations`, `upgrade()`).

Numbering. Each name has a row in `graphs` whose `next_version` counter is read and bumped in
the same transaction that inserts the version, under a lock that serialises writers of that
name, so concurrent uploads (threads, processes, several server workers) get distinct
consecutive versions. The counter outlives deletes: numbers are never reused, even after
`delete_graph`. Identical content (same sha256) under a name returns the existing version; the
unique (graph, sha256) constraint backs that up if two writers ever raced past the check.

Locking. SQLite: every write transaction starts with `BEGIN IMMEDIATE`, which takes the
database's write lock up front (a deferred `BEGIN` would take a read snapshot first and could
fail with SQLITE_BUSY_SNAPSHOT on upgrade, which no busy timeout retries). pysqlite's own
transaction handling would emit a plain `BEGIN` on its own schedule, so it is switched off
(`isolation_level = None`) and SQLAlchemy's "begin" event emits ours: the documented recipe.
WAL mode lets readers run while a writer writes; `busy_timeout` makes a blocked writer wait
instead of failing. PostgreSQL: the graph row is inserted with ON CONFLICT DO NOTHING and then
locked with SELECT ... FOR UPDATE; READ COMMITTED re-reads it after the lock wait, so the
counter and the sha256 check see every committed version.

Durability. `add_version` returns only after COMMIT. SQLite runs with `synchronous=FULL`: in
WAL mode that fsyncs the WAL at every commit, so an acknowledged version survives a power loss
or an OS crash, not only a crash of the server. (With NORMAL a commit is written to the WAL
through the OS page cache, which already survives a SIGKILL of the process, because the data
is in the kernel, not the process; only a power loss or kernel crash could drop the last
commits. Uploads are rare and small, so the fsync per commit is cheap insurance.) A transaction
killed before its commit leaves nothing behind: SQLite rolls the uncommitted WAL frames back on
the next open, PostgreSQL never makes them visible.

Schema. `check_schema()` compares the database's Alembic revision with the code's head. A
brand-new database (none of the store's tables) is created on the spot, as MLflow does for a
fresh tracking database, so `graphkit serve` works out of the box; an existing database at an
older (or unknown) revision raises SchemaOutOfDate naming `graphkit db upgrade --db URL`, since
migrating someone's data must be a decision, not a side effect of starting a server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from graphkit.errors import GraphkitError
from graphkit.service import migrations, tables
from graphkit.service.tables import graphs, versions

DEFAULT_DB_FILE = "graphkit.db"
"""The SQLite file used when no URL is given, in the working folder."""

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for the write lock before failing."""

MAX_PAGE = 1000
"""Largest page a listing returns, whatever limit is asked for."""

MAX_VERSION = 2**31 - 1
"""Versions are 32-bit integers in the database; larger numbers cannot exist."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")

_WRITE = "graphkit_write"
"""Execution option marking a connection whose transactions must take the write lock."""

_PG_MIGRATION_LOCK = 0x67726B6974  # "grkit": pg_advisory_xact_lock key serialising upgrades


class StoreError(GraphkitError):
    """A store operation failed on bad input or an unusable database; one line for the CLI."""


class NotFound(StoreError):
    """No such graph, or no such version of it."""


class SchemaOutOfDate(StoreError):
    """The database's schema is not the one this graphkit expects; the message names the fix."""


@dataclass(frozen=True)
class VersionInfo:
    """One immutable version of a graph: what listings and downloads describe."""

    name: str
    version: int
    sha256: str
    size: int
    created: datetime
    description: str | None
    tags: dict[str, str]
    nodes: int


@dataclass(frozen=True)
class GraphInfo:
    """A named graph with at least one version."""

    name: str
    latest: int
    versions: int
    created: datetime
    updated: datetime


def validate_name(name: object) -> str:
    """A graph name: 1-128 characters of [A-Za-z0-9._-], not `.` or `..` (they vanish in URLs)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in {".", ".."}:
        raise StoreError(
            f"invalid graph name {name!r}: use 1-128 characters of letters, digits, '.', '_' "
            "and '-' (not '.' or '..')"
        )
    return name


def database_url(url: str | None = None) -> URL:
    """The SQLAlchemy URL for a --db value: None is ./graphkit.db; postgres means psycopg 3."""
    if url is None:
        return make_url(f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}")
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise StoreError(f"invalid database URL {url!r}: {error}") from None
    backend = parsed.get_backend_name()
    if backend in {"postgres", "postgresql"}:
        if parsed.drivername in {"postgres", "postgresql"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise StoreError(f"unsupported database URL {mask(parsed)!r}: use sqlite:///FILE or "
                     "postgresql://USER@HOST/DB")


def mask(url: URL) -> str:
    """The URL as text with any password hidden, safe for logs and error messages."""
    return url.render_as_string(hide_password=True)


def create_engine(url: str | None = None) -> Engine:
    """An engine set up for the store's locking and durability (see the module docstring)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in {"", ":memory:"} or database.startswith("file:"):
            raise StoreError("the store needs a SQLite file (sqlite:///FILE), not an in-memory "
                             "database, so every worker sees the same data")
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        _sqlite_locking(engine)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_locking(engine: Engine) -> None:
    """SQLAlchemy's recipe for explicit SQLite transactions, with BEGIN IMMEDIATE for writers."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting), retrying while other openers hold locks.

    Changing the journal mode needs an exclusive lock and SQLite may answer SQLITE_BUSY at
    once, without consulting the busy timeout, when several processes open a new file together
    (server workers starting on a fresh database); so retry until the timeout runs out.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"SQLite refused WAL mode (journal mode is {mode}); the "
                                     "store needs a file on a local disk")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _encode_token(key: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(key), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, kind: str) -> Any:
    """The key a page token carries; StoreError for anything this store did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
        if isinstance(key, dict) and set(key) == {kind}:
            return key[kind]
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise StoreError(f"invalid page token {token[:40]!r}")


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"invalid page size {limit!r}: use a positive integer")
    return min(limit, MAX_PAGE)


def _tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in tags.items()
    ):
        raise StoreError("tags must map strings to strings")
    if any("\x00" in key or "\x00" in value for key, value in tags.items()):
        raise StoreError("tags must not contain NUL characters")
    return dict(tags)


def _version_number(version: object) -> int:
    """A version number to look up; StoreError if it is not an integer at all."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(f"invalid version {version!r}: use a positive integer")
    return version


def _possible(version: int) -> bool:
    """Whether a version with this number could exist (anything else is simply not found)."""
    return 1 <= version <= MAX_VERSION


_VERSION_COLUMNS = (versions.c.graph, versions.c.version, versions.c.sha256, versions.c.size,
                    versions.c.created, versions.c.description, versions.c.tags,
                    versions.c.nodes)


def _version_info(row: Any) -> VersionInfo:
    return VersionInfo(
        name=row.graph, version=row.version, sha256=row.sha256, size=row.size,
        created=_aware(row.created), description=row.description, tags=dict(row.tags or {}),
        nodes=row.nodes,
    )


class Store:
    """Named graphs with numbered versions in one SQL database; safe across threads and processes.

    One Store per process is enough (it holds a connection pool); every method is one short
    transaction. Call `check_schema()` once before use, as `graphkit serve` does at start.
    """

    def __init__(self, url: str | None = None) -> None:
        self._engine = create_engine(url)
        self._writer = self._engine.execution_options(**{_WRITE: True})
        self.url: str = mask(self._engine.url)
        self._postgres = self._engine.dialect.name == "postgresql"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for health checks and tests."""
        return self._engine

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database failures (unreachable server, locked file, bad credentials) as StoreError."""
        try:
            yield
        except exc.DBAPIError as error:
            detail = " ".join(str(error.orig).split()) if error.orig is not None else str(error)
            raise StoreError(f"database {self.url}: {detail}") from error

    # -- schema ---------------------------------------------------------------------------

    def check_schema(self) -> None:
        """Create a brand-new database; raise SchemaOutOfDate unless an existing one is at head."""
        with self._errors():
            current, present = migrations.current_revision(self._engine)
            head = migrations.head_revision()
            if current == head:
                return
            if not present:
                migrations.upgrade_engine(self._engine)
                return
        fix = f"run: graphkit db upgrade --db {self.url}"
        if current is not None and current not in migrations.known_revisions():
            raise SchemaOutOfDate(
                f"database {self.url} is at schema revision {current}, which this graphkit does "
                f"not know (it expects {head}); it was upgraded by a newer graphkit: use that "
                f"version, or {fix} with it"
            )
        raise SchemaOutOfDate(
            f"database {self.url} has schema revision {current or 'none'}, this graphkit needs "
            f"{head}: {fix}"
        )

    # -- writes ---------------------------------------------------------------------------

    def add_version(
        self, name: str, canonical: bytes, sha256: str, nodes: int,
        description: str | None = None, tags: Mapping[str, str] | None = None,
    ) -> tuple[VersionInfo, bool]:
        """Store a new version (True), or return the existing one with the same content (False)."""
        validate_name(name)
        if not isinstance(canonical, bytes | bytearray | memoryview):
            raise StoreError("canonical content must be bytes")
        canonical = bytes(canonical)
        if not isinstance(sha256, str) or not SHA256_PATTERN.fullmatch(sha256):
            raise StoreError(f"invalid sha256 {sha256!r}: use 64 lowercase hex digits")
        if hashlib.sha256(canonical).hexdigest() != sha256:
            raise StoreError("sha256 does not match the content")
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 0:
            raise StoreError(f"invalid node count {nodes!r}")
        if description is not None and (not isinstance(description, str)
                                        or "\x00" in description):
            raise StoreError("description must be a string without NUL characters")
        tag_map = _tags(tags)
        with self._errors():
            try:
                return self._add(name, canonical, sha256, nodes, description, tag_map)
            except exc.IntegrityError:
                # Another writer stored the same content between our check and our insert
                # (cannot happen under the row lock, but the constraint is the last word).
                existing = self._by_sha(name, sha256)
                if existing is None:
                    raise
                return existing, False

    def _add(self, name: str, canonical: bytes, sha256: str, nodes: int,
             description: str | None, tags: dict[str, str]) -> tuple[VersionInfo, bool]:
        now = _now()
        insert = (postgresql.insert if self._postgres else sqlite.insert)(graphs)
        with self._writer.begin() as conn:
            conn.execute(insert.values(name=name, created=now, updated=now, next_version=1)
                         .on_conflict_do_nothing(index_elements=[graphs.c.name]))
            lock = sa.select(graphs.c.next_version).where(graphs.c.name == name)
            if self._postgres:
                lock = lock.with_for_update()
            number = conn.execute(lock).scalar_one()
            existing = conn.execute(
                sa.select(*_VERSION_COLUMNS)
                .where(versions.c.graph == name, versions.c.sha256 == sha256)
            ).first()
            if existing is not None:
                return _version_info(existing), False
            live = conn.execute(
                sa.select(sa.func.count()).select_from(versions).where(versions.c.graph == name)
            ).scalar_one()
            row = {"graph": name, "version": number, "sha256": sha256, "content": canonical,
                   "size": len(canonical), "nodes": nodes, "description": description,
                   "tags": tags, "created": now}
            conn.execute(versions.insert().values(**row))
            changes: dict[str, Any] = {"next_version": number + 1, "updated": now}
            if live == 0:
                changes["created"] = now  # a name reused after delete_graph starts afresh
            conn.execute(graphs.update().where(graphs.c.name == name).values(**changes))
        info = VersionInfo(name=name, version=number, sha256=sha256, size=len(canonical),
                           created=now, description=description, tags=tags, nodes=nodes)
        return info, True

    def _by_sha(self, name: str, sha256: str) -> VersionInfo | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(*_VERSION_COLUMNS)
                .where(versions.c.graph == name, versions.c.sha256 == sha256)
            ).first()
        return None if row is None else _version_info(row)

    def delete_version(self, name: str, version: int) -> None:
        """Delete one version; its number stays a hole (the next upload gets a new number)."""
        validate_name(name)
        if not _possible(_version_number(version)):
            raise NotFound(f"graph {name!r} has no version {version}")
        with self._errors(), self._writer.begin() as conn:
            deleted = conn.execute(
                versions.delete().where(versions.c.graph == name, versions.c.version == version)
            ).rowcount
            if not deleted:
                raise NotFound(f"graph {name!r} has no version {version}")
            conn.execute(graphs.update().where(graphs.c.name == name).values(updated=_now()))

    def delete_graph(self, name: str) -> None:
        """Delete every version of a graph; the name's counter stays, so numbers never repeat."""
        validate_name(name)
        with self._errors(), self._writer.begin() as conn:
            deleted = conn.execute(versions.delete().where(versions.c.graph == name)).rowcount
            if not deleted:
                raise NotFound(f"no graph named {name!r}")
            conn.execute(graphs.update().where(graphs.c.name == name).values(updated=_now()))

    # -- reads ----------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> tuple[VersionInfo, bytes]:
        """A version and its canonical JSON bytes; `None` means the latest."""
        validate_name(name)
        query = sa.select(*_VERSION_COLUMNS, versions.c.content).where(versions.c.graph == name)
        if version is None:
            query = query.order_by(versions.c.version.desc()).limit(1)
        elif not _possible(_version_number(version)):
            raise NotFound(f"graph {name!r} has no version {version}")
        else:
            query = query.where(versions.c.version == version)
        with self._errors(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            if version is None:
                raise NotFound(f"no graph named {name!r}")
            raise NotFound(f"graph {name!r} has no version {version}")
        return _version_info(row), bytes(row.content)

    def list_graphs(self, limit: int = 50, page_token: str | None = None
                    ) -> tuple[list[GraphInfo], str | None]:
        """Graphs with at least one version, by name; the token resumes after the last one."""
        size = _limit(limit)
        query = (
            sa.select(graphs.c.name, graphs.c.created, graphs.c.updated,
                      sa.func.max(versions.c.version).label("latest"),
                      sa.func.count(versions.c.version).label("count"))
            .join(versions, versions.c.graph == graphs.c.name)
            .group_by(graphs.c.name, graphs.c.created, graphs.c.updated)
            .order_by(graphs.c.name)
            .limit(size + 1)
        )
        if page_token is not None:
            after = _decode_token(page_token, "g")
            if not isinstance(after, str):
                raise StoreError(f"invalid page token {page_token[:40]!r}")
            query = query.where(graphs.c.name > after)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [GraphInfo(name=row.name, latest=row.latest, versions=row.count,
                           created=_aware(row.created), updated=_aware(row.updated))
                 for row in rows[:size]]
        token = _encode_token({"g": items[-1].name}) if len(rows) > size else None
        return items, token

    def list_versions(self, name: str, limit: int = 50, page_token: str | None = None
                      ) -> tuple[list[VersionInfo], str | None]:
        """A graph's versions, oldest first; NotFound if it has none."""
        validate_name(name)
        size = _limit(limit)
        query = (sa.select(*_VERSION_COLUMNS).where(versions.c.graph == name)
                 .order_by(versions.c.version).limit(size + 1))
        if page_token is not None:
            after = _decode_token(page_token, "v")
            if isinstance(after, bool) or not isinstance(after, int) or not _possible(after):
                raise StoreError(f"invalid page token {page_token[:40]!r}")
            query = query.where(versions.c.version > after)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows and page_token is None:
                raise NotFound(f"no graph named {name!r}")
        items = [_version_info(row) for row in rows[:size]]
        token = _encode_token({"v": items[-1].version}) if len(rows) > size else None
        return items, token

    def close(self) -> None:
        """Close the pool's connections (the Store may not be used afterwards)."""
        self._engine.dispose()


def upgrade(url: str | None = None) -> str:
    """Bring the database at `url` to the newest schema (creating it if new); the revision."""
    engine = create_engine(url)
    try:
        try:
            migrations.upgrade_engine(engine)
            current, _ = migrations.current_revision(engine)
        except exc.DBAPIError as error:
            detail = " ".join(str(error.orig).split()) if error.orig is not None else str(error)
            raise StoreError(f"database {mask(engine.url)}: {detail}") from error
        except CommandError as error:  # e.g. a revision from a newer graphkit
            raise StoreError(f"database {mask(engine.url)}: cannot upgrade: {error}; was it "
                             "upgraded by a newer graphkit?") from error
    finally:
        engine.dispose()
    return current or ""


__all__ = [
    "GraphInfo", "NotFound", "SchemaOutOfDate", "Store", "StoreError", "VersionInfo",
    "create_engine", "database_url", "tables", "upgrade", "validate_name",
]

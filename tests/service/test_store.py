"""The store's behaviour, run against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphkit.cli.main import cli
from graphkit.service import migrations
from graphkit.service.store import (
    GraphInfo,
    NotFound,
    SchemaOutOfDate,
    Store,
    StoreError,
    VersionInfo,
    upgrade,
)
from graphkit.service.tables import VERSION_TABLE


def blob(n: int | str) -> tuple[bytes, str]:
    """Distinct canonical content and its sha256."""
    content = f'{{"graph": "{n}"}}'.encode()
    return content, hashlib.sha256(content).hexdigest()


def add(store: Store, name: str, n: int | str, **extra: object) -> tuple[VersionInfo, bool]:
    content, sha = blob(n)
    return store.add_version(name, content, sha, nodes=3, **extra)  # type: ignore[arg-type]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        opened.check_schema()
        yield opened


def test_versions_are_numbered_one_two_three_and_read_back(store: Store) -> None:
    before = datetime.now(UTC)
    for n in range(1, 4):
        info, created = add(store, "neuron", n)
        assert (info.version, created) == (n, True)
    info, content = store.get("neuron", 2)
    assert content == blob(2)[0]
    assert (info.name, info.version, info.sha256, info.size, info.nodes) == (
        "neuron", 2, blob(2)[1], len(blob(2)[0]), 3)
    assert info.created.tzinfo is not None and info.created >= before
    latest, content = store.get("neuron")
    assert latest.version == 3 and content == blob(3)[0]


def test_identical_content_returns_the_existing_version(store: Store) -> None:
    first, _ = add(store, "neuron", "a")
    add(store, "neuron", "b")
    again, created = add(store, "neuron", "a", description="ignored")
    assert created is False
    assert again == first
    assert [v.version for v in store.list_versions("neuron")[0]] == [1, 2]
    # the same content under another name is a different graph
    other, created = add(store, "other", "a")
    assert (other.version, created) == (1, True)


def test_missing_graphs_and_versions_are_not_found(store: Store) -> None:
    add(store, "neuron", 1)
    for call in (lambda: store.get("nothing"), lambda: store.get("nothing", 1),
                 lambda: store.get("neuron", 2), lambda: store.get("neuron", 0),
                 lambda: store.get("neuron", -1), lambda: store.get("neuron", 2**40),
                 lambda: store.delete_version("neuron", 2**63),
                 lambda: store.list_versions("nothing"),
                 lambda: store.delete_version("neuron", 7),
                 lambda: store.delete_graph("nothing")):
        with pytest.raises(NotFound):
            call()
    assert issubclass(NotFound, StoreError)


def test_graph_listing_pages_through_everything_once(store: Store) -> None:
    names = [f"g{n}" for n in range(7)]
    for name in reversed(names):
        add(store, name, name)
    add(store, "g3", "second")
    pages: list[list[GraphInfo]] = []
    token: str | None = None
    while True:
        page, token = store.list_graphs(limit=3, page_token=token)
        pages.append(page)
        if token is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [info for page in pages for info in page]
    assert [info.name for info in listed] == names
    g3 = next(info for info in listed if info.name == "g3")
    assert (g3.latest, g3.versions) == (2, 2)
    assert g3.updated >= g3.created
    assert store.list_graphs() == (listed, None)


def test_version_listing_pages_and_rejects_bad_tokens(store: Store) -> None:
    for n in range(1, 8):
        add(store, "neuron", n)
    seen: list[int] = []
    page, token = store.list_versions("neuron", limit=3)
    seen += [v.version for v in page]
    while token is not None:
        page, token = store.list_versions("neuron", limit=3, page_token=token)
        seen += [v.version for v in page]
    assert seen == list(range(1, 8))
    graph_token = store.list_graphs(limit=1)[1]
    add(store, "z", 1)
    graph_token = store.list_graphs(limit=1)[1]
    assert graph_token is not None
    for bad in ("garbage!", "", graph_token):
        with pytest.raises(StoreError, match="page token"):
            store.list_versions("neuron", page_token=bad)
    for limit in (0, -1):
        with pytest.raises(StoreError, match="page size"):
            store.list_graphs(limit=limit)


def test_deleted_version_numbers_are_never_reused(store: Store) -> None:
    for n in range(1, 4):
        add(store, "neuron", n)
    store.delete_version("neuron", 3)
    store.delete_version("neuron", 2)
    with pytest.raises(NotFound):
        store.get("neuron", 2)
    assert store.get("neuron")[0].version == 1
    info, created = add(store, "neuron", 4)
    assert (info.version, created) == (4, True)
    # content of a deleted version is new content again, with a new number
    assert add(store, "neuron", 2) == (store.get("neuron", 5)[0], True)
    assert [v.version for v in store.list_versions("neuron")[0]] == [1, 4, 5]
    with pytest.raises(NotFound):
        store.delete_version("neuron", 2)


def test_deleted_graph_is_gone_and_its_numbers_stay_used(store: Store) -> None:
    add(store, "neuron", 1)
    add(store, "neuron", 2)
    add(store, "other", 1)
    store.delete_graph("neuron")
    with pytest.raises(NotFound):
        store.get("neuron")
    with pytest.raises(NotFound):
        store.list_versions("neuron")
    assert [g.name for g in store.list_graphs()[0]] == ["other"]
    with pytest.raises(NotFound):
        store.delete_graph("neuron")
    info, created = add(store, "neuron", 1)
    assert (info.version, created) == (3, True)
    assert store.list_graphs()[0][0] == GraphInfo(
        name="neuron", latest=3, versions=1, created=info.created,
        updated=store.list_graphs()[0][0].updated)


def test_description_and_tags_round_trip(store: Store) -> None:
    tags = {"team": "vision", "stage": "prod", "ünïcode": "✓"}
    info, _ = add(store, "neuron", 1, description="sigmoid neuron, lecture 4 ✓", tags=tags)
    assert (info.description, info.tags) == ("sigmoid neuron, lecture 4 ✓", tags)
    stored = store.get("neuron", 1)[0]
    assert stored == info
    assert store.list_versions("neuron")[0] == [info]
    plain, _ = add(store, "neuron", 2)
    assert (plain.description, plain.tags) == (None, {})


@pytest.mark.parametrize("name", [
    "", "a/b", "a b", "a" * 129, ".", "..", "naïve", "x\n", "a?b", "%2F",
])
def test_bad_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(StoreError, match="invalid graph name"):
        add(store, name, 1)
    with pytest.raises(StoreError, match="invalid graph name"):
        store.get(name)


def test_longest_and_punctuated_names_work(store: Store) -> None:
    for name in ("a" * 128, "my-model_v2.onnx", "-", "...", "_"):
        info, _ = add(store, name, name)
        assert store.get(name)[0] == info


def test_bad_content_arguments_are_refused(store: Store) -> None:
    content, sha = blob(1)
    with pytest.raises(StoreError, match="does not match"):
        store.add_version("neuron", content, blob(2)[1], nodes=1)
    with pytest.raises(StoreError, match="sha256"):
        store.add_version("neuron", content, sha.upper(), nodes=1)
    with pytest.raises(StoreError, match="tags"):
        store.add_version("neuron", content, sha, nodes=1, tags={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(StoreError, match="NUL"):
        store.add_version("neuron", content, sha, nodes=1, description="a\x00b")
    with pytest.raises(StoreError, match="NUL"):
        store.add_version("neuron", content, sha, nodes=1, tags={"a": "\x00"})
    with pytest.raises(StoreError, match="invalid version"):
        store.get("neuron", "1")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="node count"):
        store.add_version("neuron", content, sha, nodes=-1)
    with pytest.raises(NotFound):
        store.get("neuron")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=140) | st.from_regex(r"[A-Za-z0-9._-]{1,130}", fullmatch=True))
def test_fuzzed_names_round_trip_or_raise_store_error(store: Store, name: str) -> None:
    try:
        info, _ = add(store, name, "fuzz")
    except StoreError:
        return
    assert store.get(name) == (info, blob("fuzz")[0])
    assert name in {g.name for g in store.list_graphs(limit=1000)[0]}


def test_data_survives_reopening(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        add(store, "neuron", 1, tags={"k": "v"})
    with Store(store_url) as store:
        store.check_schema()
        assert store.get("neuron")[0].tags == {"k": "v"}


def test_password_is_masked(store_url: str) -> None:
    store = Store("postgresql://graphkit:s3cret@db.example.com/graphs")
    assert "s3cret" not in store.url and "db.example.com" in store.url
    assert "s3cret" not in repr(store)
    store.close()


def test_unusable_databases_are_one_line_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unable to open"):
        Store("sqlite:////nonexistent-folder/graphkit.db").check_schema()
    with pytest.raises(StoreError, match="unsupported database URL 'mysql://u:\\*\\*\\*@h/d'"):
        Store("mysql://u:pw@h/d")
    with pytest.raises(StoreError, match="in-memory"):
        Store("sqlite://")


def test_default_database_is_graphkit_db_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        store.check_schema()
        add(store, "neuron", 1)
        assert store.url.endswith("/graphkit.db")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# -- schema and migrations --------------------------------------------------------------------


def test_a_new_database_is_created_at_head(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        assert migrations.current_revision(store.engine) == (migrations.head_revision(), True)
        store.check_schema()  # idempotent


def run_alembic(store: Store, action: str) -> None:
    with store.engine.begin() as conn:
        cfg = migrations.config()
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, "base")


def test_out_of_date_schema_names_the_command_that_fixes_it(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        add(store, "neuron", 1)
        run_alembic(store, "stamp")  # the tables are there, the revision is not
        with pytest.raises(SchemaOutOfDate) as raised:
            store.check_schema()
        message = str(raised.value)
        assert f"graphkit db upgrade --db {store.url}" in message
        assert "none" in message


def test_db_upgrade_command_brings_an_old_database_to_head(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        run_alembic(store, "downgrade")  # back to an empty schema, the version table remains
        with pytest.raises(SchemaOutOfDate, match="graphkit db upgrade"):
            store.check_schema()
        result = CliRunner().invoke(cli, ["db", "upgrade", "--db", store_url])
        assert result.exit_code == 0, result.output
        assert f"revision {migrations.head_revision()}" in result.output
        store.check_schema()
        add(store, "neuron", 1)
        again = CliRunner().invoke(cli, ["db", "upgrade", "--db", store_url])
        assert again.exit_code == 0 and store.get("neuron")[0].version == 1


def test_database_from_a_newer_graphkit_is_refused(store_url: str) -> None:
    with Store(store_url) as store:
        store.check_schema()
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dbeef'"))
        with pytest.raises(SchemaOutOfDate, match="newer graphkit"):
            store.check_schema()
    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", store_url])
    assert result.exit_code == 1
    assert result.output.startswith("error: database ") and "f00dbeef" in result.output
    assert result.output.count("\n") == 1


def test_upgrade_returns_the_head_revision(store_url: str) -> None:
    assert upgrade(store_url) == migrations.head_revision()
    assert upgrade(store_url) == migrations.head_revision()


def test_db_help_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["db", "--help"])
    examples = re.findall(r"^\s+(graphkit db .*)$", result.output, re.M)
    assert len(examples) == 2
    for example in examples:
        outcome = CliRunner().invoke(cli, shlex.split(example)[1:])
        assert outcome.exit_code == 0, outcome.output
        assert "schema at revision" in outcome.output
    assert (tmp_path / "graphkit.db").exists() and (tmp_path / "registry.db").exists()


def test_db_upgrade_errors_are_one_line() -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", "mysql://u:pw@h/d"])
    assert result.exit_code == 1
    assert result.output.startswith("error: unsupported database URL")
    assert "pw" not in result.output and result.output.count("\n") == 1


def test_db_command_without_the_serve_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in list(sys.modules):
        if module == "sqlalchemy" or module.startswith(("sqlalchemy.", "graphkit.service")):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # import fails as if not installed
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output == ("error: graphkit db needs the serve extra: pip install "
                             "'graphkit-backprop[serve]'\n")

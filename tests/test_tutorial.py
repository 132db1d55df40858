"""docs/tutorial.md runs as written, and its pictures are the ones committed in docs/images/.

The page is a walkthrough, run in order in a folder holding a link to examples/ (as if from the
project root), so that it writes its pictures and data there and not into the repository:

- ```console blocks: each `$ COMMAND` line runs and must exit 0: `graphkit ...` in-process
  through click's CliRunner, `python SCRIPT ARGS` in-process with runpy. The lines shown under
  a command, up to the next `$`, must be its stdout line for line; a `...` line stands for any
  lines, and run times are ignored.
- `<!-- run: python -->` before a ```python block: the snippets run in order, in one
  namespace (they assert their own results). Every python block of the page is marked, so
  tests/test_docs.py, which runs unmarked blocks from the project root, leaves them alone.
- `<!-- file: PATH -->` before a ```json block: the block is the file PATH of the project.

The pictures the page shows (`![...](images/NAME.svg)`) are written by its own commands; the
test compares each with the committed docs/images/NAME.svg by the text and colour of every
SVG text element (Graphviz versions differ in layout coordinates, not in labels). After
changing what the drawings show, run the page's commands from the project root to update
them. Every number in the text must appear in one of the page's blocks, which the walkthrough
checks. Also: docs/index.md maps every doc, and README.md links it.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import io
import json
import re
import runpy
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner

from graphkit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
PAGE = DOCS / "tutorial.md"
INDEX = DOCS / "index.md"
IMAGES = DOCS / "images"

BLOCK = re.compile(r"(?:<!-- (run|file): ([^\n]*?) -->\n)?```(\w*)\n(.*?)```", re.S)


class Step(NamedTuple):
    kind: str
    """"command", "python" or "file"."""
    text: str
    """The command line, the snippet, or the file's content."""
    shown: list[str]
    """For a command, the output lines shown under it; for a file, its path."""


def steps() -> list[Step]:
    found: list[Step] = []
    text = PAGE.read_text()
    for match in BLOCK.finditer(text):
        marker, argument, language, body = match.groups()
        if language == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    found.append(Step("command", line[2:], []))
                else:
                    assert found and found[-1].kind == "command", f"output before a command: {line}"
                    found[-1].shown.append(line)
        elif language == "python":
            assert marker == "run", f"a python block of {PAGE.name} without <!-- run: python -->"
            line = text.count("\n", 0, match.start(4))   # the snippet's first line, 0-based
            found.append(Step("python", "\n" * line + body, []))   # tracebacks: page lines
        elif marker == "file":
            found.append(Step("file", body, [argument]))
    return found


def normalised(line: str) -> str:
    return re.sub(r" in \d+(\.\d+)? s\b", " in T s", line).rstrip()


def same_line(shown: str, actual: str) -> bool:
    """Equal, or the same JSON up to float rounding (the last digit of a sum may differ)."""
    if shown == actual:
        return True
    try:
        return bool(close(json.loads(actual), json.loads(shown)))
    except ValueError:
        return False


def close(actual: object, expected: object) -> bool:
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(close(actual[k], expected[k]) for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(close(a, e) for a, e in zip(actual, expected, strict=True)))
    if isinstance(expected, float) and isinstance(actual, int | float):
        return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)
    return actual == expected


def matches(shown: list[str], actual: list[str]) -> bool:
    """`actual` is `shown`, where a `...` line stands for any run of lines."""
    if not shown:
        return not actual
    if shown[0].strip() == "...":
        return any(matches(shown[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and same_line(shown[0], actual[0]) and matches(shown[1:], actual[1:])


def run_command(command: str) -> str:
    args = shlex.split(command)
    if args[0] == "graphkit":
        result = CliRunner().invoke(cli, args[1:], prog_name="graphkit")
        assert result.exit_code == 0, (command, result.stdout, result.stderr)
        return result.stdout
    assert args[0] == "python" and args[1].endswith(".py"), f"not a command to run: {command}"
    output, argv = io.StringIO(), sys.argv
    sys.argv = args[1:]
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_path(args[1], run_name="__main__")
    finally:
        sys.argv = argv
    return output.getvalue()


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder the whole page ran in, in order: its docs/images/ holds the new pictures."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed: the tutorial draws SVG pictures")
    folder = tmp_path_factory.mktemp("tutorial")
    (folder / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    (folder / "docs" / "images").mkdir(parents=True)
    namespace: dict[str, object] = {"__name__": "tutorial"}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.syspath_prepend(str(EXAMPLES))  # as running a script puts its folder first
        for step in steps():
            if step.kind == "python":
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(step.text, str(PAGE), "exec"), namespace)  # noqa: S102
            elif step.kind == "command":
                actual = [normalised(line) for line in run_command(step.text).splitlines()]
                if step.shown:
                    shown = [normalised(line) for line in step.shown]
                    assert matches(shown, actual), "\n".join([
                        f"$ {step.text}: the output differs from the page's (- page, + real)",
                        *difflib.unified_diff(shown, actual, lineterm="", n=1)][:40])
        yield folder


def test_the_page_runs_as_written(walked: Path) -> None:
    kinds = collections.Counter(step.kind for step in steps())
    assert kinds["command"] >= 10 and kinds["python"] >= 8 and kinds["file"] >= 4
    assert (walked / "digits" / "trained.json").is_file()


def test_the_files_shown_are_the_project_files() -> None:
    shown = [step for step in steps() if step.kind == "file"]
    assert shown
    for step in shown:
        path = ROOT / step.shown[0]
        assert json.loads(step.text) == json.loads(path.read_text()), f"{path} differs"


def pictures(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(images/([^)]+)\)", text)


def labels(svg: Path) -> collections.Counter[tuple[str, str]]:
    """The text and colour of every text element of an SVG drawn by Graphviz."""
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    for element in ET.parse(svg).iter():
        if element.tag.rpartition("}")[2] == "text":
            found["".join(element.itertext()).strip(), element.get("fill", "")] += 1
    return found


def test_the_pictures_are_drawn_by_the_page_and_committed(walked: Path) -> None:
    shown = pictures(PAGE.read_text())
    assert len(shown) >= 7 and all(name.endswith(".svg") for name in shown)
    drawn = sorted(p.name for p in (walked / "docs" / "images").iterdir())
    assert drawn == sorted(shown), "the page shows pictures it does not draw, or draws more"
    for name in shown:
        committed = IMAGES / name
        assert committed.is_file(), f"docs/images/{name} is missing: run the page's commands"
        new = labels(walked / "docs" / "images" / name)
        assert new, name
        assert new == labels(committed), (
            f"docs/images/{name} is stale: run the page's commands from the project root")


def test_every_committed_picture_is_shown_by_a_page() -> None:
    shown = {name for page in DOCS.glob("*.md") for name in pictures(page.read_text())}
    assert {p.name for p in IMAGES.iterdir()} <= shown


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[,_]\d{3})*(?:\.\d+)?(%?)(?![\w])")


def numbers(text: str) -> dict[str, set[float]]:
    """Each number written in `text`, with the values it may stand for (95% is 95 or 0.95)."""
    found = {}
    for match in NUMBER.finditer(text):
        value = float(re.sub(r"[,_%]", "", match[0]))
        found[match[0]] = {value, value / 100} if match[1] else {value}
    return found


def test_every_number_in_the_text_is_in_a_block_the_test_runs() -> None:
    text = re.sub(r"<!--.*?-->", "", PAGE.read_text(), flags=re.S)
    blocks = set().union(*numbers("\n".join(body for *_, body in BLOCK.findall(text))).values())
    prose = numbers(re.sub(r"\]\([^)]*\)", "]", BLOCK.sub("", text)))
    missing = sorted(written for written, values in prose.items() if not values & blocks)
    assert not missing, f"numbers in the text of {PAGE.name} that no block shows: {missing}"
    assert {"-12", "-4", "3", "0.73", "-0.20", "0.116", "4096"} <= prose.keys()


def test_the_index_maps_every_doc() -> None:
    text = INDEX.read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    for target in links:
        if "://" not in target:
            assert (DOCS / target).exists(), f"docs/index.md links {target}, which does not exist"
    for page in DOCS.glob("*.md"):
        if page != INDEX:
            assert page.name in links, f"docs/index.md does not list {page.name}"
    for group in ("backprop", "plugin", "ONNX"):
        assert re.search(rf"^## .*{group}", text, re.M | re.I), group


def test_the_readme_links_the_index_first() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1]
    first = re.search(r"^- \[([^\]]+)\]", section, re.M)
    assert first is not None and first[1] == "docs/index.md"

"""docs/plugins.md's walkthrough runs as written, and plugins/graphkit-hello-gate is its package.

The walkthrough is the page's section "## Your first gate in five minutes" (up to the next
`## ` heading). Its conventions:

- `<!-- file: PATH -->` on the line before a fenced block: the block is written to PATH,
  relative to the current folder.
- ```sh blocks: each `$ COMMAND` line runs in bash in the current folder (`$ cd DIR` moves it)
  and must exit 0. The lines under it, up to the next `$`, are its output as shown: each must
  appear, in order, among the real stdout's lines (whitespace aside; a line `...` stands for
  lines left out, and a line ending in `...` for one that goes on; run times and the ONNX
  opset may differ).
- `<!-- run: python -->` before a ```python block: the snippet runs in the current folder and
  must exit 0 (it asserts its own results).

All of it runs offline in tmp_path, in a throwaway virtualenv (`python -m venv --without-pip`)
whose site-packages holds a .pth that adds this project's venv's site-packages: graphkit, pip,
setuptools, pytest and onnxruntime come from there, while `pip install -e .` really installs
into the throwaway venv (editable, with entry points) and leaves the project's venv as it was.
`pip install` gets `--no-build-isolation --no-index` (the build uses the installed setuptools,
nothing is downloaded); `pip`, `graphkit` and `pytest` are scripts running the throwaway venv's
python. GRAPHKIT_LOAD_PLUGINS names only the walkthrough's own plugins, so the output does not
depend on which other plugins the project's venv has installed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest

from graphkit.scaffold import plugin_files

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "plugins.md"
HELLO = ROOT / "plugins" / "graphkit-hello-gate"
HEADING = "## Your first gate in five minutes"
OFFLINE_PIP = ["--no-build-isolation", "--no-index"]
TIMEOUT = 300
SCRIPTS = {"pip": "-m pip", "graphkit": "-P -m graphkit.cli.main", "pytest": "-P -m pytest"}
"""The commands the page runs, as `python ARGS` of the throwaway venv (-P: like a console
script, the current folder is not on sys.path)."""


@dataclass
class Step:
    """One thing the walkthrough does: write a file, run a command, or run a Python snippet."""

    kind: str
    """"file", "command" or "python"."""
    text: str
    """The file's path, the command, or the snippet."""
    line: int
    """Where it is on the page (1-based), for failure messages."""
    body: str = ""
    """A file's contents."""
    shown: list[str] = field(default_factory=list)
    """A command's output as the page shows it."""


def parse(text: str) -> tuple[list[Step], list[Step]]:
    """The steps of the walkthrough section, and any marked steps outside it (there should be
    none: everything the page marks to run is run)."""
    inside: list[Step] = []
    outside: list[Step] = []
    lines = text.splitlines()
    in_section = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            in_section = line == HEADING
        steps = inside if in_section else outside
        marker = re.fullmatch(r"<!-- (file|run): (.+?) -->", line)
        if marker or line.startswith("```"):
            fence = lines[index + 1 if marker else index]
            assert fence.startswith("```"), f"{PAGE.name}:{index + 1}: marker without a block"
            start = index + (2 if marker else 1)
            end = start
            while not lines[end].startswith("```"):
                end += 1
            block = lines[start:end]
            if marker and marker[1] == "file":
                steps.append(Step("file", marker[2], index + 1, "\n".join(block) + "\n"))
            elif marker:
                assert marker[2] == "python", f"{PAGE.name}:{index + 1}: run what?"
                steps.append(Step("python", "\n".join(block) + "\n", index + 1))
            elif fence.strip() == "```sh":
                for offset, command in enumerate(block):
                    if command.startswith("$ "):
                        steps.append(Step("command", command[2:], start + offset + 1))
                    elif steps and steps[-1].kind == "command" and steps[-1].line > start:
                        steps[-1].shown.append(command)
            index = end + 1
            continue
        index += 1
    return inside, outside


def walkthrough() -> list[Step]:
    return parse(PAGE.read_text())[0]


def normal(line: str) -> str:
    """A line as compared: whitespace collapsed, run times and the opset left out."""
    line = re.sub(r"\bin \d+(\.\d+)?s\b", "in Ns", line)
    line = re.sub(r"\(opset \d+,", "(opset N,", line)
    return " ".join(line.split())


def missing_output(shown: list[str], stdout: str) -> str | None:
    """The first shown line that does not appear (in order) in stdout, or None."""
    actual = iter(normal(line) for line in stdout.splitlines())
    for line in shown:
        wanted = normal(line)
        if wanted in ("", "...", "…"):
            continue
        cut = re.fullmatch(r"(.*?) ?(\.\.\.|…)", wanted)
        if cut:  # an abridged line: the real one starts so
            if not any(got.startswith(cut[1]) for got in actual):
                return line
        elif not any(got == wanted for got in actual):
            return line
    return None


def make_venv(folder: Path) -> Path:
    """A throwaway venv at `folder` that sees this project's venv; returns its bin folder."""
    setuptools = tuple(int(part) for part in re.findall(r"\d+", version("setuptools"))[:2])
    if setuptools < (70, 1):  # older ones need the wheel package to build editable wheels
        pytest.fail(f"setuptools {version('setuptools')} cannot build plugins offline: "
                    "pip install -e '.[test]' (it brings setuptools>=70.1)")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=TIMEOUT)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=TIMEOUT,
    ).stdout.strip()
    outer = sysconfig.get_path("purelib")
    Path(purelib, "zz_project_venv.pth").write_text(
        f"import site; site.addsitedir({outer!r})\n")
    for name, args in SCRIPTS.items():
        script = folder / "bin" / name
        script.write_text(f'#!/bin/sh\nexec "{python}" {args} "$@"\n')
        script.chmod(0o755)
    return folder / "bin"


def venv_env(bin_folder: Path, plugins: list[str]) -> dict[str, str]:
    """The environment of the walkthrough's commands: the throwaway venv first on PATH, only
    `plugins` loaded, pip without configuration files, tables at their piped width."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GRAPHKIT_", "PIP_", "PYTHON", "PYTEST_"))
           and key not in ("COLUMNS", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_folder}{os.pathsep}{env.get('PATH', '')}",
               VIRTUAL_ENV=str(bin_folder.parent), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK="1", GRAPHKIT_LOAD_PLUGINS=",".join(plugins))
    return env


def entry_points(steps: list[Step]) -> list[str]:
    """The graphkit entry-point names of the pyproject.toml files the walkthrough writes."""
    names = []
    for step in steps:
        if step.kind == "file" and Path(step.text).name == "pyproject.toml":
            section = re.search(r"^\[project\.entry-points\.graphkit\]\n(.*?)(?:^\[|\Z)",
                                step.body, re.M | re.S)
            names += re.findall(r"^([\w.-]+)\s*=", section[1] if section else "", re.M)
    return names


def run_step(step: Step, cwd: Path, env: dict[str, str]) -> Path:
    """Do one step in `cwd`; returns the folder the next step runs in."""
    where = f"{PAGE.name}:{step.line}"
    if step.kind == "file":
        target = cwd / step.text
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(step.body)
        return cwd
    if step.kind == "python":
        run = subprocess.run([str(Path(env["VIRTUAL_ENV"], "bin", "python")), "-c", step.text],
                             cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        assert run.returncode == 0, f"{where}: snippet failed\n{run.stdout}{run.stderr}"
        return cwd
    words = shlex.split(step.text, comments=True)
    if words[0] == "cd":
        assert len(words) == 2 and (cwd / words[1]).is_dir(), f"{where}: {step.text}"
        return (cwd / words[1]).resolve()
    command = step.text
    if words[:2] == ["pip", "install"]:
        command = shlex.join([*words, *OFFLINE_PIP])
    run = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert run.returncode == 0, (
        f"{where}: `{step.text}` exited {run.returncode}\n{run.stdout}{run.stderr}")
    missing = missing_output(step.shown, run.stdout)
    assert missing is None, (
        f"{where}: `{step.text}` did not print the line shown on the page:\n  {missing}\n"
        f"it printed:\n{textwrap.indent(run.stdout, '  ')}")
    return cwd


# -- the walkthrough -----------------------------------------------------------------------


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = walkthrough()
    bin_folder = make_venv(tmp_path / "venv")
    env = venv_env(bin_folder, entry_points(steps))
    cwd = tmp_path / "work"
    cwd.mkdir()
    for step in steps:
        cwd = run_step(step, cwd, env)


def test_the_walkthrough_has_every_stage() -> None:
    steps = walkthrough()
    commands = [step.text for step in steps if step.kind == "command"]
    for start in ("mkdir", "pip install -e .", "graphkit ops", "graphkit execute",
                  "graphkit check-plugin", "pytest", "graphkit export", "graphkit new-plugin"):
        assert any(command.startswith(start) for command in commands), start
    assert any("--grad" in command for command in commands)
    assert [step for step in steps if step.kind == "python"], "no snippet runs the ONNX model"
    assert [step for step in steps if step.kind == "command" and step.shown]


def test_nothing_marked_to_run_is_outside_the_walkthrough() -> None:
    assert parse(PAGE.read_text())[1] == []


def test_the_output_comparison_catches_a_difference() -> None:
    stdout = "outputs\n y   (3,)   float64   [1, 2]\nwrote a.onnx (opset 21, 1 node)\n"
    assert missing_output([" y (3,) float64 [1, 2]", "...", "wrote a.onnx (opset 17, 1 node)"],
                          stdout) is None
    assert missing_output(["y (3,) float64 [1, 3]"], stdout) == "y (3,) float64 [1, 3]"
    assert missing_output(["wrote a.onnx (opset 21, 1 node)", "outputs"], stdout) == "outputs"
    assert missing_output(["outputs", "y (3,) float64 ...", "wrote a.onnx ..."], stdout) is None
    assert missing_output(["y (3,) float32 ..."], stdout) == "y (3,) float32 ..."


# -- the page, the package and new-plugin agree --------------------------------------------


def page_files() -> dict[str, str]:
    """The files the walkthrough writes inside graphkit-hello-gate/, by path in that folder."""
    files: dict[str, str] = {}
    cwd = Path(".")
    for step in walkthrough():
        if step.kind == "command" and step.text.startswith("cd "):
            cwd = cwd / step.text[3:].strip()
        elif step.kind == "file":
            path = Path(os.path.normpath(cwd / step.text))
            if path.parts[0] == HELLO.name:
                files[Path(*path.parts[1:]).as_posix()] = step.body
    return files


IGNORED = {"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", "build", "dist"}


def package_files(folder: Path) -> dict[str, str]:
    """A package folder's files by relative path, without build and test by-products."""
    return {path.relative_to(folder).as_posix(): path.read_text()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix != ".onnx"
            and not any(part in IGNORED or part.endswith(".egg-info")
                        for part in path.relative_to(folder).parts)}


def test_the_page_shows_the_hello_gate_package() -> None:
    shown = page_files()
    package = package_files(HELLO)
    assert set(package) - set(shown) == {"README.md"}
    for path, text in shown.items():
        assert text == package.get(path), f"docs/plugins.md and {HELLO.name}/{path} differ"


def test_new_plugin_writes_the_hello_gate_package() -> None:
    assert plugin_files("graphkit-hello-gate", "hello") == package_files(HELLO)


# -- a generated package's own tests pass as generated --------------------------------------


def test_a_generated_plugin_installs_and_its_tests_pass(tmp_path: Path) -> None:
    bin_folder = make_venv(tmp_path / "venv")
    env = venv_env(bin_folder, ["graphkit_gen_gates"])
    steps = [
        "graphkit new-plugin graphkit-gen-gates --domain gen.gates",
        "cd graphkit-gen-gates",
        "pip install -e .",
        "graphkit ops",
        "pytest -q -p no:cacheprovider",
        "graphkit execute swish.json -i x=[1,2,3] --grad",
        "graphkit export swish.json -o swish.onnx",
    ]
    shown = {"graphkit ops": ["gen.gates::Swish gen.gates 1 1 1 graphkit_gen_gates "
                              "x * sigmoid(beta x)"],
             "pytest -q -p no:cacheprovider": ["2 passed in 1s"]}
    cwd = tmp_path
    for line, command in enumerate(steps, 1):
        cwd = run_step(Step("command", command, line, shown=shown.get(command, [])), cwd, env)
    assert (cwd / "swish.onnx").is_file()


@pytest.mark.parametrize("name", ["graphkit-gen-gates", "Gates_2"])
def test_generated_code_is_ruff_clean(name: str, tmp_path: Path) -> None:
    for path, text in plugin_files(name).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    run = subprocess.run([str(ruff), "check", "--no-cache", "--select", "E,F,W,I,UP,B",
                          "--line-length", "88", "."], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr

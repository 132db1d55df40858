"""`graphkit train`: the trained file, the summary, progress without spam, Ctrl-C (exit 130,
parameters kept), reproducibility, one-line errors and usage errors."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run
from rich.console import Console

import graphkit
from graphkit.cli import train as train_cli
from graphkit.train import StepInfo, TrainingInterrupted, fit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NET = str(EXAMPLES / "two_layer_net.json")
NET_DATA = str(EXAMPLES / "two_layer_net.inputs.json")




@pytest.fixture
def data(tmp_path: Path) -> str:
    """A small separable 3-class problem for two_layer_net.json (X: (N, 4), y: (N,))."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=120)
    X = rng.normal(size=(120, 4)) * 0.5  # noqa: N806
    X[np.arange(120), y] += 2.0
    path = tmp_path / "train.npz"
    np.savez(path, X=X, y=y)
    return str(path)


def test_train_writes_a_trained_graph_and_a_summary(tmp_path: Path, data: str) -> None:
    out = tmp_path / "trained.json"
    result = run("train", NET, "--data", data, "--loss", "loss", "-o", str(out),
                 "--epochs", "5", "--batch-size", "16")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "trained two_layer_net: 5 epochs, 40 steps of batch 16 on 120 samples "
        "(sgd lr 0.01 momentum 0.9, seed 0) in ")
    assert lines[1].startswith("loss ") and lines[1].endswith("(epoch 5)")
    assert lines[2] == f"wrote {out}"
    original, trained = graphkit.load(NET), graphkit.load(out)
    graphkit.validate(trained)
    for name in ("W1", "b1", "W2", "b2"):
        assert trained.constant(name) != original.constant(name)
    assert trained.model_copy(update={"constants": original.constants}) == original
    arrays = dict(np.load(data))
    before = graphkit.execute(original, arrays).outputs["loss"]
    after = graphkit.execute(trained, arrays).outputs["loss"]
    assert after < 0.5 * before


def test_progress_in_a_pipe_is_one_line_per_epoch(tmp_path: Path, data: str) -> None:
    result = run("train", NET, "--data", data, "--loss", "loss", "-o",
                 str(tmp_path / "t.json"), "--epochs", "4", "--batch-size", "8")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 4  # 60 steps, 4 lines
    assert [line.split(":")[0] for line in lines] == [f"epoch {e}/4" for e in (1, 2, 3, 4)]
    assert all(line.split(": loss ")[1] for line in lines)
    quiet = run("train", NET, "--data", data, "--loss", "loss", "-o",
                str(tmp_path / "t.json"), "--epochs", "4", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_json_summary(tmp_path: Path, data: str) -> None:
    out, plot = tmp_path / "t.json", tmp_path / "curve.png"
    result = run("train", NET, "--data", data, "--loss", "loss", "-o", str(out),
                 "--optimizer", "adam", "--lr", "0.01", "--epochs", "3", "--plot", str(plot),
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["output"] == str(out) and document["plot"] == str(plot)
    assert (document["epochs"], document["steps"], document["samples"]) == (3, 12, 120)
    assert document["interrupted"] is False
    assert document["loss"] == document["epoch_losses"][-1] < document["epoch_losses"][0]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_same_seed_writes_the_same_file(tmp_path: Path, data: str) -> None:
    def train(name: str, seed: str) -> bytes:
        out = tmp_path / name
        result = run("train", NET, "--data", data, "--loss", "loss", "-o", str(out),
                     "--epochs", "2", "--seed", seed, "-q")
        assert result.exit_code == 0, result.stderr
        return out.read_bytes()

    assert train("a.json", "3") == train("b.json", "3")
    assert train("c.json", "4") != train("a.json", "3")


def test_the_cli_trains_like_fit(tmp_path: Path, data: str) -> None:
    out = tmp_path / "t.json"
    run("train", NET, "--data", data, "--loss", "loss", "-o", str(out), "--optimizer",
        "adam", "--epochs", "2", "--batch-size", "7", "--seed", "9", "-q")
    expected, _ = fit(graphkit.load(NET), data, loss="loss", optimizer=graphkit.Adam(),
                      epochs=2, batch_size=7, seed=9)
    assert out.read_text() == graphkit.dumps(expected)


def test_ctrl_c_saves_the_last_completed_step_and_exits_130(
    tmp_path: Path, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = train_cli._Shown.step

    def interrupt_at_7(self: train_cli._Shown, info: StepInfo) -> None:
        original(self, info)
        if info.global_step == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_cli._Shown, "step", interrupt_at_7)
    out, plot = tmp_path / "t.json", tmp_path / "curve.png"
    result = run("train", NET, "--data", data, "--loss", "loss", "-o", str(out),
                 "--epochs", "5", "--batch-size", "32", "--plot", str(plot))
    assert result.exit_code == 130, (result.stdout, result.stderr)
    assert result.stdout == ""
    progress, note = result.stderr.splitlines()  # 4 steps per epoch: one epoch line
    assert progress.startswith("epoch 1/5: loss ")
    assert note == (f"interrupted after 7 steps (1 of 5 epochs done): wrote the parameters of "
                    f"step 7 to {out}")
    monkeypatch.undo()

    def stop(info: StepInfo) -> None:
        if info.global_step == 7:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as caught:
        fit(graphkit.load(NET), data, loss="loss", epochs=5, batch_size=32, callback=stop)
    assert out.read_text() == graphkit.dumps(caught.value.graph)
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_ctrl_c_before_the_first_step_writes_nothing(
    tmp_path: Path, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise TrainingInterrupted(graphkit.load(NET), train_cli.History(4, 120))

    monkeypatch.setattr(train_cli, "fit", interrupt)
    out = tmp_path / "t.json"
    result = run("train", NET, "--data", data, "--loss", "loss", "-o", str(out), "--json")
    assert result.exit_code == 130
    assert json.loads(result.stdout)["output"] is None
    assert not out.exists()


def graphkit_command() -> list[str]:
    installed = Path(sys.executable).with_name("graphkit")
    if installed.is_file() and os.access(installed, os.X_OK):
        return [str(installed)]
    return [sys.executable, "-m", "graphkit.cli.main"]


def test_a_real_sigint_in_a_subprocess(tmp_path: Path, data: str) -> None:
    """The console script, interrupted after its first progress line: exit 130, the file
    written and loadable, one note on stderr and no traceback."""
    out = tmp_path / "t.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [*graphkit_command(), "train", NET, "--data", data, "--loss", "loss", "-o", str(out),
         "--epochs", "100000", "--batch-size", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
        # a shell that ignores SIGINT (nohup, some CI) passes that on: give Python its own
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("epoch 1/100000: loss "), first
        process.send_signal(signal.SIGINT)
        stdout, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, (stdout, rest)
    assert "Traceback" not in rest
    note = rest.splitlines()[-1]
    assert note.startswith("interrupted after ") and note.endswith(f"to {out}"), rest
    steps = int(note.split("interrupted after ")[1].split(" ")[0])
    assert steps >= 15  # at least the first epoch
    trained = graphkit.load(out)
    assert trained.constant("W1") != graphkit.load(NET).constant("W1")


# -- errors --------------------------------------------------------------------------------


def test_errors_are_one_line_naming_what_is_at_fault(tmp_path: Path, data: str) -> None:
    out = str(tmp_path / "t.json")
    assert_error(run("train", NET, "--data", str(tmp_path / "missing.npz"), "--loss", "loss",
                     "-o", out), f"{tmp_path / 'missing.npz'}: no such file")
    assert_error(run("train", NET, "--data", data, "--loss", "scores", "-o", out),
                 f"{NET}: graph 'two_layer_net' has no output 'scores' to use as the loss")
    np.savez(tmp_path / "labels.npz", X=np.ones((3, 4)), labels=np.zeros(3))
    assert_error(run("train", NET, "--data", str(tmp_path / "labels.npz"), "--loss", "loss",
                     "-o", out), f"{tmp_path / 'labels.npz'}: no array for graph input 'y'")
    np.savez(tmp_path / "wide.npz", X=np.ones((3, 5)), y=np.zeros(3))
    assert_error(run("train", NET, "--data", str(tmp_path / "wide.npz"), "--loss", "loss",
                     "-o", out), "array 'X' has shape (3, 5), the graph input needs (N, 4)")
    (tmp_path / "text.npz").write_text("hello")
    assert_error(run("train", NET, "--data", str(tmp_path / "text.npz"), "--loss", "loss",
                     "-o", out), "text.npz: not an .npz archive")
    assert_error(run("train", str(tmp_path / "none.json"), "--data", data, "--loss", "loss",
                     "-o", out), "none.json: no such file")
    assert not Path(out).exists()


def test_the_output_folder_is_checked_before_training(
    tmp_path: Path, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_cli, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    missing = tmp_path / "no" / "t.json"
    assert_error(run("train", NET, "--data", data, "--loss", "loss", "-o", str(missing)),
                 f"cannot write {missing}: folder {missing.parent} does not exist")
    (tmp_path / "dir.json").mkdir()
    assert_error(run("train", NET, "--data", data, "--loss", "loss", "-o",
                     str(tmp_path / "dir.json")), "it is a folder")


def test_missing_matplotlib_is_named_before_training(
    tmp_path: Path, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_cli, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    line = assert_error(run("train", NET, "--data", data, "--loss", "loss", "-o",
                            str(tmp_path / "t.json"), "--plot", str(tmp_path / "c.png")))
    assert line == ("error: writing a loss curve needs matplotlib: "
                    "pip install 'graphkit-backprop[plot]'")


@pytest.mark.parametrize("extra", [
    ["-o", "t.txt"],
    ["-o", "t.json", "--plot", "curve.svg"],
    ["-o", "t.json", "--optimizer", "adam", "--momentum", "0.5"],
    ["-o", "t.json", "--epochs", "0"],
    ["-o", "t.json", "--batch-size", "0"],
    ["-o", "t.json", "--lr", "0"],
    ["-o", "t.json", "--momentum", "1"],
    ["-o", "t.json", "--optimizer", "rmsprop"],
    [],
])
def test_usage_errors_exit_2(extra: list[str], data: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("train", NET, "--data", data, "--loss", "loss", *extra)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("t.*"))


def test_help_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    result = run("train", "--help")
    assert result.exit_code == 0
    text = result.stdout
    block = text.split("Examples:\n")[1]
    examples = [line.strip() for line in block.splitlines() if line.strip().startswith("graphkit")]
    assert len(examples) == 2
    for example in examples:
        outcome = run(*shlex.split(example)[1:])
        assert outcome.exit_code == 0, (example, outcome.stderr)
    trained = graphkit.load(tmp_path / "trained.json")
    assert trained.constant("W1") != graphkit.load(NET).constant("W1")
    arrays = {k: np.asarray(v) for k, v in json.loads(Path(NET_DATA).read_text()).items()}
    assert graphkit.execute(trained, arrays).outputs["loss"] < graphkit.execute(
        graphkit.load(NET), arrays).outputs["loss"]


def test_in_a_terminal_progress_is_a_bar_with_the_running_loss() -> None:
    shown = train_cli._Shown(2, mode="bar")
    screen = io.StringIO()
    shown.console = Console(file=screen, force_terminal=True, width=100)
    for step in range(1, 11):
        epoch, within = (step - 1) // 5 + 1, (step - 1) % 5 + 1
        shown.step(StepInfo(epoch, 2, within, 5, step, 1.0 / step, 0.123456))
    shown.close()
    last = screen.getvalue().replace("\r", "\n").splitlines()[-2:]
    text = " ".join(last)
    assert "epoch 2/2" in text and "10/10" in text and "loss 0.1235" in text

"""graphkit.train: fit learns, is reproducible, keeps the last completed step on Ctrl-C, and
every bad graph, data array or data file is a GraphkitError naming what is at fault."""

from __future__ import annotations

import importlib
import io
import os
import re
import signal
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphkit
from graphkit.errors import ExecutionError, FormatError, GraphkitError, InputError
from graphkit.optim import SGD, Adam, Optimizer
from graphkit.train import (
    History,
    Objective,
    StepInfo,
    TrainingInterrupted,
    fit,
    load_data,
    minibatches,
    parameters,
    plot_history,
    prepare_data,
    with_parameters,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def linear_regression(dtype: str = "float64") -> graphkit.Graph:
    """pred = X w + b, loss = mean squared error; w and b start at zero."""
    g = graphkit.GraphBuilder("linreg", dtype=dtype)
    X = g.input("X", shape=["N", 3])  # noqa: N806
    t = g.input("t", shape=["N"])
    w = g.parameter("w", np.zeros(3, dtype=dtype))
    b = g.parameter("b", np.zeros((), dtype=dtype))
    pred = g.output(X @ w + b, "pred")
    g.output(((pred - t) ** 2).mean(), "loss")
    return g.build()


@pytest.fixture
def regression_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 3))  # noqa: N806
    t = X @ np.array([1.5, -2.0, 0.5]) + 0.25 + 0.01 * rng.normal(size=50)
    return {"X": X, "t": t}


# -- fit -----------------------------------------------------------------------------------


def test_fit_finds_the_least_squares_solution(regression_data: dict[str, np.ndarray]) -> None:
    graph = linear_regression()
    trained, history = fit(graph, regression_data, loss="loss", optimizer=SGD(lr=0.05),
                           epochs=60, batch_size=8)
    X, t = regression_data["X"], regression_data["t"]  # noqa: N806
    solution, *_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], t, rcond=None)
    learned = np.r_[trained.constant("w").to_numpy(), trained.constant("b").to_numpy()]
    np.testing.assert_allclose(learned, solution, atol=0.02)
    assert history.epoch_losses[-1] < 1e-3 < history.epoch_losses[0]
    assert graph.constant("w").to_numpy().tolist() == [0.0, 0.0, 0.0]  # the input graph is kept


def test_only_trainable_constants_change_and_the_graph_stays_the_same_otherwise() -> None:
    g = graphkit.GraphBuilder("scaled")
    x = g.input("x", shape=["N"])
    w = g.parameter("w", 1.0)
    fixed = g.constant("k", 3.0)
    g.output(((x * w * fixed) ** 2).mean(), "loss")
    graph = g.build()
    trained, _ = fit(graph, {"x": np.arange(4.0)}, loss="loss", epochs=2, batch_size=2)
    assert trained.constant("k") == graph.constant("k")
    assert trained.constant("w").trainable and trained.constant("w") != graph.constant("w")
    same = trained.model_copy(update={"constants": graph.constants})
    assert same == graph


def test_history_and_callback_count_every_step(regression_data: dict[str, np.ndarray]) -> None:
    seen: list[StepInfo] = []
    _, history = fit(linear_regression(), regression_data, loss="loss", epochs=3,
                     batch_size=16, callback=seen.append)
    assert history.steps_per_epoch == 4 and history.samples == 50  # 16 + 16 + 16 + 2
    assert history.steps == len(seen) == 12 and history.epochs == 3
    assert [s.global_step for s in seen] == list(range(1, 13))
    assert [(s.epoch, s.step) for s in seen[:5]] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1)]
    assert [s.loss for s in seen] == history.losses
    ends = [s for s in seen if s.epoch_done]
    assert [s.running_loss for s in ends] == history.epoch_losses
    sizes = [16, 16, 16, 2]  # the epoch loss is the mean per sample, not per batch
    first = sum(n * s.loss for n, s in zip(sizes, seen[:4], strict=True)) / 50
    assert history.epoch_losses[0] == pytest.approx(first)


def test_the_same_seed_gives_the_same_graph_bit_for_bit(
    regression_data: dict[str, np.ndarray],
) -> None:
    def run(seed: int) -> str:
        trained, _ = fit(linear_regression(), regression_data, loss="loss",
                         optimizer=Adam(lr=0.01), epochs=3, batch_size=7, seed=seed)
        return graphkit.dumps(trained)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_fit_is_the_loop_of_its_parts(regression_data: dict[str, np.ndarray]) -> None:
    """fit == Objective + minibatches + optimizer.step + with_parameters, step for step."""
    graph = linear_regression()
    trained, history = fit(graph, regression_data, loss="loss", optimizer=Adam(lr=0.01),
                           epochs=2, batch_size=16, seed=5)
    objective, params, optimizer = Objective(graph, "loss"), parameters(graph), Adam(lr=0.01)
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(2):
        for batch in minibatches(regression_data, 16, rng):
            loss, grads = objective(params, batch)
            optimizer.step(params, grads)
            losses.append(loss)
    assert losses == history.losses
    assert graphkit.dumps(with_parameters(graph, params)) == graphkit.dumps(trained)


def test_float32_graphs_train_in_float32(regression_data: dict[str, np.ndarray]) -> None:
    trained, history = fit(linear_regression("float32"), regression_data, loss="loss",
                           optimizer=Adam(lr=0.05), epochs=30, batch_size=10)
    assert trained.constant("w").dtype == "float32"
    assert history.epoch_losses[-1] < 0.05 * history.epoch_losses[0]


def test_zero_epochs_returns_the_graph_unchanged(regression_data: dict[str, np.ndarray]) -> None:
    graph = linear_regression()
    trained, history = fit(graph, regression_data, loss="loss", epochs=0)
    assert trained == graph and history.steps == 0


def test_minibatches_cover_every_sample_once_per_epoch_last_batch_partial() -> None:
    data = {"a": np.arange(10), "b": np.arange(10) * 10}
    rng = np.random.default_rng(0)
    epochs = [list(minibatches(data, 4, rng)) for _ in range(2)]
    for batches in epochs:
        assert [len(b["a"]) for b in batches] == [4, 4, 2]
        assert sorted(np.concatenate([b["a"] for b in batches]).tolist()) == list(range(10))
        for batch in batches:  # rows stay together
            np.testing.assert_array_equal(batch["b"], batch["a"] * 10)
    first, second = (np.concatenate([b["a"] for b in bs]) for bs in epochs)
    assert first.tolist() != second.tolist()  # shuffled anew each epoch


# -- Ctrl-C --------------------------------------------------------------------------------


def test_interrupt_keeps_the_parameters_of_the_last_completed_step(
    regression_data: dict[str, np.ndarray],
) -> None:
    def stop_at_5(info: StepInfo) -> None:
        if info.global_step == 5:
            raise KeyboardInterrupt

    graph = linear_regression()
    with pytest.raises(TrainingInterrupted) as caught:
        fit(graph, regression_data, loss="loss", epochs=10, batch_size=16, seed=1,
            callback=stop_at_5)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert caught.value.history.steps == 5 and caught.value.history.epochs == 1
    objective, params, optimizer = Objective(graph, "loss"), parameters(graph), SGD()
    rng = np.random.default_rng(1)
    batches = [b for _ in range(2) for b in minibatches(regression_data, 16, rng)]
    for batch in batches[:5]:
        optimizer.step(params, objective(params, batch)[1])
    assert graphkit.dumps(caught.value.graph) == graphkit.dumps(with_parameters(graph, params))


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="needs Python's own SIGINT handler on the main thread")
def test_a_real_sigint_during_an_update_waits_for_the_update_to_finish(
    regression_data: dict[str, np.ndarray],
) -> None:
    """SIGINT arrives between the updates of w and b: both still get their update."""

    class Interrupting(Optimizer):
        name = "interrupting"
        lr = 0.1

        def __init__(self) -> None:
            self.updates = 0

        def _update(self, name: str, x: np.ndarray, dx: np.ndarray) -> None:
            x -= self.lr * dx
            self.updates += 1
            if self.updates == 3:  # step 2, after w, before b
                os.kill(os.getpid(), signal.SIGINT)

    graph = linear_regression()
    with pytest.raises(TrainingInterrupted) as caught:
        fit(graph, regression_data, loss="loss", optimizer=Interrupting(), epochs=5,
            batch_size=10)
    assert caught.value.history.steps == 1  # step 2's bookkeeping did not happen...
    objective, params = Objective(graph, "loss"), parameters(graph)
    rng = np.random.default_rng(0)
    batches = list(minibatches(regression_data, 10, rng))
    for batch in batches[:2]:  # ...but its update is whole: w and b both moved
        for name, dx in objective(params, batch)[1].items():
            params[name] -= 0.1 * dx
    assert graphkit.dumps(caught.value.graph) == graphkit.dumps(with_parameters(graph, params))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


# -- bad graphs ----------------------------------------------------------------------------


def test_the_loss_must_be_a_scalar_output(regression_data: dict[str, np.ndarray]) -> None:
    graph = linear_regression()
    with pytest.raises(InputError) as caught:
        fit(graph, regression_data, loss="cost")
    assert "no output 'cost' to use as the loss (outputs: pred, loss)" in str(caught.value)
    with pytest.raises(InputError) as caught:
        fit(graph, regression_data, loss="pred")
    assert "loss 'pred' has shape (N,), but training needs a scalar loss" in str(caught.value)


def test_a_loss_found_non_scalar_only_at_run_time_is_refused() -> None:
    g = graphkit.GraphBuilder("vague")
    x = g.input("x")  # no shape: nothing to infer
    w = g.parameter("w", 1.0)
    g.output(x * w, "loss")
    with pytest.raises(InputError, match=r"loss 'loss' has shape \(4, 2\)"):
        fit(g.build(), {"x": np.ones((4, 2))}, loss="loss")


def test_graphs_without_trainable_float_constants_are_refused() -> None:
    g = graphkit.GraphBuilder("fixed")
    x = g.input("x", shape=["N"])
    g.output((x * g.constant("k", 2.0)).sum(), "loss")
    with pytest.raises(InputError, match="graph 'fixed' has no trainable constants"):
        fit(g.build(), {"x": np.ones(3)}, loss="loss")
    g = graphkit.GraphBuilder("counts")
    x = g.input("x", shape=["N"])
    g.output((x * g.parameter("w", 1.0)).sum(), "loss")
    g.parameter("n", np.array([1, 2]))
    with pytest.raises(InputError, match="constant 'n' is trainable but int64"):
        fit(g.build(), {"x": np.ones(3)}, loss="loss")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_divergence_is_an_error_before_the_bad_step(
    regression_data: dict[str, np.ndarray],
) -> None:
    with pytest.raises(ExecutionError, match="loss 'loss' became (inf|nan) at epoch .*diverged"):
        fit(linear_regression(), {k: v * 1e3 for k, v in regression_data.items()},
            loss="loss", optimizer=SGD(lr=10.0), epochs=50)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"epochs": -1}, "epochs must be a whole number >= 0"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"batch_size": 2.5}, "batch_size must be a whole number >= 1"),
])
def test_bad_loop_settings(kwargs: dict, fragment: str,
                           regression_data: dict[str, np.ndarray]) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        fit(linear_regression(), regression_data, loss="loss", **kwargs)


def test_with_parameters_checks_names_and_shapes() -> None:
    graph = linear_regression()
    with pytest.raises(InputError, match="no trainable constant 'v'"):
        with_parameters(graph, {"v": np.zeros(3)})
    with pytest.raises(InputError, match=r"parameter 'w' has shape \(2,\)"):
        with_parameters(graph, {"w": np.zeros(2)})
    params = parameters(graph)
    params["w"] += 1.0  # copies: the graph is not touched
    assert graph.constant("w").to_numpy().tolist() == [0.0, 0.0, 0.0]
    assert with_parameters(graph, params).constant("w").to_numpy().tolist() == [1.0, 1.0, 1.0]


# -- data ----------------------------------------------------------------------------------


def classifier() -> graphkit.Graph:
    g = graphkit.GraphBuilder("clf")
    X = g.input("X", shape=["N", 4])  # noqa: N806
    y = g.input("y", shape=["N"], dtype="int64")
    W = g.parameter("W", np.zeros((4, 3)))  # noqa: N806
    g.output(g.softmax_cross_entropy(X @ W, y), "loss")
    return g.build()


@pytest.mark.parametrize(("data", "fragment"), [
    ({"X": np.ones((5, 4))}, "src.npz: no array for graph input 'y' of graph 'clf' (arrays: X)"),
    ({"X": np.ones((5, 4)), "y": np.zeros(5), "w": np.ones(5)},
     "src.npz: array 'w' matches no input of graph 'clf' (inputs: X, y)"),
    ({"X": np.ones((5, 3)), "y": np.zeros(5)},
     "src.npz: array 'X' has shape (5, 3), the graph input needs (N, 4)"),
    ({"X": np.ones(4), "y": np.zeros(5)},
     "src.npz: array 'X' has shape (4,), the graph input needs (N, 4)"),
    ({"X": np.ones((5, 4)), "y": np.zeros(6)},
     "src.npz: array 'y' has 6 samples (first axis), array 'X' has 5"),
    ({"X": np.ones((5, 4)), "y": np.full(5, 0.5)},
     "src.npz: array 'y' holds non-integer values, the graph input is int64"),
    ({"X": np.ones((5, 4)), "y": np.array(["a"] * 5)}, "src.npz: array 'y' has dtype <U1"),
    ({"X": np.float64(1.0), "y": np.zeros(5)}, "src.npz: array 'X' is a single number"),
    ({"X": np.full((5, 4), np.nan), "y": np.zeros(5)},
     "src.npz: array 'X' holds NaN or infinite values"),
    ({"X": np.ones((0, 4)), "y": np.zeros(0)}, "src.npz: the arrays hold no samples"),
])
def test_data_that_does_not_fit_the_graph_is_named(data: dict, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        prepare_data(classifier(), data, "src.npz")
    assert fragment in str(caught.value)


def test_a_fixed_first_dimension_cannot_take_minibatches() -> None:
    g = graphkit.GraphBuilder("fixed_batch")
    X = g.input("X", shape=[5, 4])  # noqa: N806
    g.output((X @ g.parameter("w", np.zeros(4))).mean(), "loss")
    with pytest.raises(InputError, match="first dimension is not symbolic"):
        prepare_data(g.build(), {"X": np.ones((5, 4))}, "d.npz")


def test_prepare_data_converts_to_the_declared_dtypes() -> None:
    arrays, count = prepare_data(classifier(), {"X": np.ones((3, 4), dtype=np.int32),
                                                "y": np.array([0.0, 1.0, 2.0])})
    assert count == 3 and arrays["X"].dtype == np.float64 and arrays["y"].dtype == np.int64


def npz_bytes(**arrays: object) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # object arrays are pickled: the loader must refuse them
    return buffer.getvalue()


ARRAYS = st.sampled_from([
    np.ones((6, 4)), np.ones((6, 3)), np.arange(6), np.arange(7), np.full(6, 0.5),
    np.ones((6, 4), dtype=np.float32), np.array(["a"] * 6), np.zeros(6, dtype=complex),
    np.array([None] * 6, dtype=object), np.float64(2.0), np.ones((0, 4)), np.array([True] * 6),
])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.dictionaries(st.sampled_from(["X", "y", "extra"]), ARRAYS, max_size=3))
def test_malformed_npz_files_give_a_clear_error_never_a_traceback(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(npz_bytes(**arrays))
    try:
        trained, history = fit(classifier(), path, loss="loss", epochs=1, batch_size=4)
    except GraphkitError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message
        named = re.findall(r"'(X|y|extra)'", message) or re.findall(r"arrays: ", message)
        assert named or "holds no arrays" in message, message
    else:  # only a well-formed archive trains
        assert set(arrays) == {"X", "y"} and history.steps == 2
        assert arrays["X"].shape in ((6, 4),) and len(arrays["y"]) == 6


@pytest.mark.parametrize(("content", "fragment"), [
    (b"", "not an .npz archive"),
    (b"not a zip file at all", "not an .npz archive"),
    (npz_bytes(X=np.ones((6, 4)))[:40], "not an .npz archive"),
    (npz_bytes(y=np.array([None] * 6, dtype=object)), "array 'y' holds Python objects"),
    (npz_bytes(), "holds no arrays"),
])
def test_files_that_are_not_npz_archives(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(FormatError) as caught:
        load_data(path)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


@given(st.binary(max_size=300))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
def test_random_bytes_are_refused_with_the_file_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "random.npz"
    path.write_bytes(content)
    with pytest.raises(FormatError) as caught:
        load_data(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_other_data_file_problems(tmp_path: Path) -> None:
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    cases = {
        tmp_path / "missing.npz": "no such file",
        tmp_path: "unknown data file type",
        tmp_path / "single.npz": "a single .npy array?",
        tmp_path / "data.csv": "unknown data file type .csv; use .npz (or .json)",
    }
    (tmp_path / "folder.npz").mkdir()
    cases[tmp_path / "folder.npz"] = "is a folder"
    for path, fragment in cases.items():
        with pytest.raises(FormatError) as caught:
            load_data(path)
        assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


def test_zip_archives_with_a_broken_member(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", b"\x93NUMPY garbage")
    with pytest.raises(FormatError, match=r"broken.npz: .*'X'"):
        load_data(path)


def test_json_data_files(tmp_path: Path) -> None:
    good = tmp_path / "d.json"
    good.write_text('{"X": [[1, 2, 3, 4], [0, 0, 0, 1]], "y": [1, 2]}')
    arrays = load_data(good)
    assert arrays["X"].shape == (2, 4) and arrays["y"].tolist() == [1, 2]
    for text, fragment in [("[1, 2]", "expected a JSON object"), ("{", "invalid JSON"),
                           ('{"X": [[1, 2], [3]]}', "array 'X' is not rectangular"),
                           ('{"X": [1, null]}', "array 'X' must hold only numbers"),
                           ('{"X": ["a"]}', "array 'X' has dtype <U1")]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(FormatError) as caught:
            load_data(bad)
        assert str(caught.value).startswith(f"{bad}: ") and fragment in str(caught.value)


# -- the loss curve ------------------------------------------------------------------------


def test_plot_history_writes_a_png(tmp_path: Path) -> None:
    history = History(steps_per_epoch=2, samples=4, losses=[1.0, 0.5, 0.4, 0.2],
                      epoch_losses=[0.75, 0.3])
    plot_history(history, tmp_path / "curve.png", title="t")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_without_matplotlib_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails, find_spec says None
    with pytest.raises(GraphkitError) as caught:
        plot_history(History(steps_per_epoch=1, samples=1, losses=[1.0]), tmp_path / "c.png")
    assert str(caught.value) == (
        "writing a loss curve needs matplotlib: pip install 'graphkit-backprop[plot]'"
    )
    assert not (tmp_path / "c.png").exists()


# -- the example ---------------------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch):
    """examples/train_two_layer.py as a module (it imports digits_npz from its own folder)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in ("train_two_layer", "digits_npz"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("train_two_layer")


def test_the_example_reaches_95_percent_on_held_out_digits(example) -> None:
    train, test = example.digits()
    assert len(train["y"]) + len(test["y"]) == 1797
    assert not set(map(bytes, train["X"])) & set(map(bytes, test["X"][:50]))
    trained = example.train(example.two_layer_net(), train)
    assert example.accuracy(trained, test) >= 0.95


def test_the_shipped_json_is_the_examples_net(example) -> None:
    assert graphkit.load(EXAMPLES / "digits" / "two_layer_digits.json") == example.two_layer_net()


def test_the_examples_training_loop_is_at_most_20_lines() -> None:
    text = (EXAMPLES / "train_two_layer.py").read_text()
    loop = text.split("# -- the training loop")[1].split("# -- end of the training loop")[0]
    code = [line for line in loop.splitlines()[1:]
            if line.strip() and not line.strip().startswith("#")]
    assert 5 <= len(code) <= 20, code


def test_data_a_step_refuses_is_named_with_the_step(tmp_path: Path) -> None:
    """Labels out of the classifier's range pass the data checks (right shape and dtype) and
    fail in the loss's forward rule: the error names the file, the step and the arrays."""
    path = tmp_path / "data.npz"
    path.write_bytes(npz_bytes(X=np.ones((6, 4)), y=np.arange(6)))
    with pytest.raises(ExecutionError) as info:
        fit(classifier(), path, loss="loss", epochs=1, batch_size=4)
    message = str(info.value)
    assert message.startswith(f"{path}: epoch 1, step ") and "'X', 'y'" in message
    assert "labels must lie in [0, 3)" in message and "\n" not in message

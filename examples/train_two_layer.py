"""The lecture's 2-layer net, f = W2 max(0, W1 x + b1) + b2 with a softmax cross-entropy loss,
trained on scikit-learn's handwritten digits (8x8 images, 10 classes; nothing is downloaded).

    pip install 'graphkit-backprop[examples]'     # scikit-learn
    python examples/train_two_layer.py

prints the loss of each epoch and the accuracy on 359 held-out digits (about 98%). The net is
built with GraphBuilder by `two_layer_net()`; examples/digits/two_layer_digits.json is that same
graph (`python examples/train_two_layer.py --write-graph` writes it again), which `graphkit
train` trains from the shell on the files examples/digits_npz.py writes (see docs/training.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from digits_npz import digits  # examples/digits_npz.py, beside this file

import graphkit
from graphkit.optim import Adam
from graphkit.train import Objective, minibatches, parameters, with_parameters


def two_layer_net(hidden: int = 100, seed: int = 0) -> graphkit.Graph:
    """64 pixels -> `hidden` ReLU units -> 10 class scores; outputs `scores` and `loss`."""
    rng = np.random.default_rng(seed)
    g = graphkit.GraphBuilder("two_layer_digits")
    g.metadata["description"] = (
        "the lecture's 2-layer net for 8x8 digits: loss = softmax cross-entropy of "
        "scores = W2 max(0, W1 x + b1) + b2"
    )
    X = g.input("X", shape=["N", 64])  # noqa: N806 - the lecture's names
    y = g.input("y", shape=["N"], dtype="int64")
    W1 = g.parameter("W1", rng.normal(0.0, np.sqrt(2 / 64), (64, hidden)))  # noqa: N806 - He
    b1 = g.parameter("b1", np.zeros(hidden))
    W2 = g.parameter("W2", rng.normal(0.0, np.sqrt(1 / hidden), (hidden, 10)))  # noqa: N806
    b2 = g.parameter("b2", np.zeros(10))
    scores = g.output((X @ W1 + b1).relu() @ W2 + b2, "scores")
    g.output(g.softmax_cross_entropy(scores, y), "loss")
    return g.build()


def train(net: graphkit.Graph, data: dict[str, np.ndarray], epochs: int = 20,
          batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
          verbose: bool = False) -> graphkit.Graph:
    """Minibatch Adam on the net's parameters; returns the net with the trained values."""
    # -- the training loop (graphkit code, 20 lines at most) --
    objective = Objective(net, loss="loss")  # validated and compiled once
    params = parameters(net)                 # W1, b1, W2, b2 as numpy arrays
    optimizer = Adam(lr=lr)
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        total = 0.0
        for batch in minibatches(data, batch_size, rng):
            loss, grads = objective(params, batch)  # forward and backward
            optimizer.step(params, grads)           # updates params in place
            total += loss * len(batch["y"])
        if verbose:
            print(f"epoch {epoch:2d}: loss {total / len(data['y']):.4f}")
    return with_parameters(net, params)
    # -- end of the training loop --


def accuracy(net: graphkit.Graph, data: dict[str, np.ndarray]) -> float:
    """The fraction of images whose highest score is their digit."""
    scores = graphkit.execute(net, data).outputs["scores"]
    return float(np.mean(scores.argmax(axis=1) == data["y"]))


GRAPH_FILE = Path(__file__).parent / "digits" / "two_layer_digits.json"


def main() -> None:
    if "--write-graph" in sys.argv[1:]:
        graphkit.save(two_layer_net(), GRAPH_FILE)
        print(f"wrote {GRAPH_FILE}")
        return
    train_data, test_data = digits()
    started = time.perf_counter()
    trained = train(two_layer_net(), train_data, verbose=True)
    seconds = time.perf_counter() - started
    print(f"trained on {len(train_data['y'])} digits in {seconds:.2f} s")
    print(f"held-out accuracy: {accuracy(trained, test_data):.1%} of {len(test_data['y'])}")


if __name__ == "__main__":
    main()

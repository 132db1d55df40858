"""Drawings say what the lecture's pictures say: the library (`graphkit.render`, `to_dot`).

What a drawing shows is checked in what Graphviz itself makes of the DOT: its SVG, parsed as
XML, where each text has its colour (`fill`) and its place (`y`). Tests that need Graphviz's
`dot` are skipped without it (CI installs it); the DOT-only ones run everywhere.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import graphkit
from graphkit.draw import GRADIENT_COLOR, VALUE_COLOR, DrawError, every_value
from graphkit.draw.dot import CONSTANT_FILL, NAME_COLOR, WIRE_COLOR
from graphkit.draw.labels import markup, number, value_text

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def load_example(name: str) -> tuple[graphkit.Graph, dict]:
    graph = graphkit.load(EXAMPLES / f"{name}.json")
    return graph, json.loads((EXAMPLES / f"{name}.inputs.json").read_text())


# -- reading a drawing back ------------------------------------------------------------------


@dataclass
class Text:
    text: str
    color: str
    y: float


@dataclass
class Node:
    id: str
    texts: list[Text] = field(default_factory=list)
    shapes: list[ET.Element] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(t.text for t in self.texts)


@dataclass
class Wire:
    """One wire as drawn: from a node to a node, with the texts above and below its line."""

    source: Node
    target: Node
    texts: list[Text]
    line_y: float | None

    def colored(self, color: str) -> list[str]:
        return [t.text for t in self.texts if t.color == color]

    @property
    def value(self) -> str | None:
        found = self.colored(VALUE_COLOR)
        return found[0] if found else None

    @property
    def gradient(self) -> str | None:
        found = self.colored(GRADIENT_COLOR)
        return found[0] if found else None


@dataclass
class Picture:
    nodes: dict[str, Node]
    wires: list[Wire]

    def node(self, label: str) -> Node:
        found = [n for n in self.nodes.values() if n.label == label and not n.id.startswith("w")]
        assert len(found) == 1, (label, [n.label for n in self.nodes.values()])
        return found[0]

    def wires_from(self, label: str) -> list[Wire]:
        return [w for w in self.wires if w.source is self.node(label)]

    def wire(self, source: str, target: str) -> Wire:
        found = [w for w in self.wires_from(source) if w.target.label == target]
        assert len(found) == 1, (source, target)
        return found[0]


def svg_of(dot: str) -> ET.Element:
    done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    return ET.fromstring(done.stdout)


def read(dot: str) -> Picture:
    """The nodes and wires Graphviz drew: a wire through a label node `wN` is put together
    from its two edges, `source -> wN` and `wN -> target`."""
    svg = svg_of(dot)
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    for group in svg.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if group.get("class") == "node":
            node = Node(title.text)
            for text in group.iter(f"{SVG}text"):
                node.texts.append(Text(text.text or "", text.get("fill", "black"),
                                       float(text.get("y"))))
            node.shapes = [e for e in group if e.tag in (f"{SVG}polygon", f"{SVG}ellipse",
                                                         f"{SVG}path")]
            nodes[node.id] = node
        elif group.get("class") == "edge":
            tail, head = title.text.split("->")
            edges.append((tail.split(":")[0], head.split(":")[0]))
    wires = []
    for tail, head in edges:
        if tail.startswith("w"):
            continue
        if head.startswith("w"):
            label = nodes[head]
            (target,) = [h for t, h in edges if t == head]
            lines = [s for s in label.shapes if s.get("fill") == WIRE_COLOR]
            line_y = float(lines[0].get("points").split()[0].split(",")[1]) if lines else None
            wires.append(Wire(nodes[tail], nodes[target], label.texts, line_y))
        else:
            wires.append(Wire(nodes[tail], nodes[head], [], None))
    return Picture(nodes, wires)


# -- the lecture's pictures --------------------------------------------------------------------


@needs_dot
def test_sigmoid_neuron_reads_like_the_slide() -> None:
    """Every wire of the lecture's neuron has its value in green and its gradient in red."""
    graph, inputs = load_example("sigmoid_neuron")
    picture = read(graphkit.render(graph, inputs, grad=True).dot)
    expected = {  # (from, to): (value, gradient), as on the slide
        ("w0", "Mul"): ("2", "-0.20"), ("x0", "Mul"): ("-1", "0.39"),
        ("w1", "Mul"): ("-3", "-0.39"), ("x1", "Mul"): ("-2", "-0.59"),
        ("w2", "Add"): ("-3", "0.20"), ("minus_one", "Mul"): ("-1", "-0.20"),
        ("Exp", "Add"): ("0.37", "-0.53"), ("one", "Add"): ("1", "-0.53"),
        ("Add", "Reciprocal"): ("1.37", "-0.53"), ("Reciprocal", "f"): ("0.73", "1"),
    }
    for (source, target), (value, gradient) in expected.items():
        found = [w for w in picture.wires
                 if w.source.label == source and w.target.label == target]
        assert found, (source, target)
        assert any((w.value, w.gradient) == (value, gradient) for w in found), (source, target)
    named = {w.colored(NAME_COLOR)[0]: (w.value, w.gradient)
             for w in picture.wires if w.colored(NAME_COLOR)}
    assert named == {"a": ("-2", "0.20"), "b": ("6", "0.20"), "c": ("4", "0.20"),
                     "d": ("1", "0.20"), "e": ("-1", "-0.20"), "h": ("0.37", "-0.53"),
                     "k": ("1.37", "-0.53")}
    assert len(picture.wires) == sum(len(n.inputs) for n in graph.nodes) + 1  # and the output
    assert all(w.value and w.gradient for w in picture.wires)


@needs_dot
def test_values_are_above_the_wire_and_gradients_below() -> None:
    graph, inputs = load_example("sigmoid_neuron")
    for wire in read(graphkit.render(graph, inputs, grad=True).dot).wires:
        assert wire.line_y is not None
        (value,) = [t for t in wire.texts if t.color == VALUE_COLOR]
        (gradient,) = [t for t in wire.texts if t.color == GRADIENT_COLOR]
        assert value.y < wire.line_y < gradient.y  # SVG's y grows downwards


@needs_dot
def test_every_gate_is_labelled_with_its_op() -> None:
    graph, inputs = load_example("sigmoid_neuron")
    picture = read(graphkit.render(graph, inputs, grad=True).dot)
    gates = sorted(n.label for n in picture.nodes.values() if n.id.startswith("n"))
    assert gates == sorted(str(node.op) for node in graph.nodes)


@needs_dot
def test_add_mul_gradients_on_every_wire() -> None:
    """(x + y) * z at -2, 5, -4: the distributor and the switcher of the lecture."""
    graph, inputs = load_example("add_mul")
    picture = read(graphkit.render(graph, inputs, grad=True).dot)
    assert (picture.wire("x", "Add").value, picture.wire("x", "Add").gradient) == ("-2", "-4")
    assert (picture.wire("y", "Add").value, picture.wire("y", "Add").gradient) == ("5", "-4")
    assert (picture.wire("z", "Mul").value, picture.wire("z", "Mul").gradient) == ("-4", "3")
    q = picture.wire("Add", "Mul")
    assert (q.colored(NAME_COLOR), q.value, q.gradient) == (["q"], "3", "-4")
    assert (picture.wire("Mul", "f").value, picture.wire("Mul", "f").gradient) == ("-12", "1")


@needs_dot
def test_tensors_show_dtype_shape_and_elements_or_a_summary() -> None:
    graph, inputs = load_example("wx_norm")
    picture = read(graphkit.render(graph, inputs, grad=True).dot)
    assert picture.wire("W", "MatMul").value == "f64[2,2] [[0.10, 0.50], [-0.30, 0.80]]"
    assert picture.wire("x", "MatMul").value == "f64[2] [0.20, 0.40]"
    assert picture.wire("x", "MatMul").gradient == "[-0.11, 0.64]"   # 2 W^T q
    q_wires = picture.wires_from("MatMul")
    assert len(q_wires) == 2  # q * q: two wires into the same gate
    for wire in q_wires:
        assert (wire.value, wire.gradient) == ("f64[2] [0.22, 0.26]", "[0.44, 0.52]")  # 2q

    graph, inputs = load_example("two_layer_net")
    drawing = graphkit.render(graph, inputs, grad=True)
    picture = read(drawing.dot)
    X = np.asarray(inputs["X"], dtype=np.float64)
    summary = (f"f64[5,4] |x|={number(np.linalg.norm(X))} min {number(X.min())} "
               f"max {number(X.max())}")
    assert picture.wire("X", "MatMul").value == summary
    grad = drawing.result.gradients["X"]
    assert picture.wire("X", "MatMul").gradient == (
        f"|g|={number(np.linalg.norm(grad))} min {number(grad.min())} max {number(grad.max())}")
    assert picture.wire("y", "SoftmaxCrossEntropy").value == "i64[5] min 0 max 2"
    assert picture.wire("y", "SoftmaxCrossEntropy").gradient is None  # integers have none


@needs_dot
def test_fan_out_draws_one_wire_per_consumer_each_with_the_total_gradient() -> None:
    g = graphkit.GraphBuilder("fan_out")
    x = g.input("x")
    g.output(x * x + x.exp(), "f")   # x feeds Mul twice and Exp once
    graph = g.build()
    picture = read(graphkit.render(graph, {"x": 0.5}, grad=True).dot)
    wires = picture.wires_from("x")
    assert sorted(w.target.label for w in wires) == ["Exp", "Mul", "Mul"]
    total = 2 * 0.5 + math.exp(0.5)   # the adder: 1 + 1.65
    assert {(w.value, w.gradient) for w in wires} == {("0.50", number(total))}


@needs_dot
def test_inputs_constants_and_outputs_are_drawn_distinctly() -> None:
    graph, inputs = load_example("two_layer_net")
    picture = read(graphkit.render(graph, inputs).dot)
    shapes = {n.label: [s.tag.removeprefix(SVG) for s in n.shapes]
              for n in picture.nodes.values() if not n.id.startswith("w")}
    assert shapes["X"] == ["ellipse"] and shapes["y"] == ["ellipse"]
    assert shapes["loss"] == ["ellipse", "ellipse"]            # a double border
    assert shapes["MatMul"] == ["path"]                         # a rounded box
    w1 = picture.node("W1 trainable")
    assert [s.get("fill") for s in w1.shapes] == [CONSTANT_FILL]  # grey, and marked trainable
    neuron, neuron_inputs = load_example("sigmoid_neuron")
    fixed = read(graphkit.render(neuron, neuron_inputs).dot).node("minus_one")
    assert [s.get("fill") for s in fixed.shapes] == [CONSTANT_FILL]


@needs_dot
def test_a_plugins_gate_shows_its_domain() -> None:
    graph = graphkit.Graph.model_validate({
        "name": "act", "inputs": ["x"], "outputs": ["f"],
        "nodes": [{"op": "ai.graphkit.activations::Swish", "inputs": ["x"], "outputs": ["s"]},
                  {"op": "com.example::Twice@2", "inputs": ["s"], "outputs": ["t"]},
                  {"op": "Sum", "inputs": ["t"], "outputs": ["f"]}],
    })
    picture = read(graphkit.to_dot(graph))   # no plugin installed is needed to draw
    gates = {n.id: [(t.text, t.color) for t in n.texts]
             for n in picture.nodes.values() if n.id.startswith("n")}
    assert gates["n0"][0] == ("Swish", "black")
    assert gates["n0"][1][0] == "ai.graphkit.activations"
    assert [t for t, _ in gates["n1"]] == ["Twice@2", "com.example"]
    assert gates["n2"] == [("Sum", "black")]


@needs_dot
def test_structure_only_without_inputs() -> None:
    """No inputs: names, declared types and the constants' data, and no run (no plugin)."""
    graph, _ = load_example("two_layer_net")
    drawing = graphkit.render(graph)
    assert drawing.result is None
    picture = read(drawing.dot)
    assert picture.wire("X", "MatMul").colored(NAME_COLOR) == ["f64[N,4]"]
    assert picture.wire("y", "SoftmaxCrossEntropy").colored(NAME_COLOR) == ["i64[N]"]
    assert picture.wire("Relu", "MatMul").colored(NAME_COLOR) == ["h"]
    assert picture.wire("Relu", "MatMul").value is None
    b2 = picture.wire("b2 trainable", "Add")
    assert b2.value == "f64[3] [0, 0, 0]"        # a constant's data is known without a run
    assert all(w.gradient is None for w in picture.wires)


def test_structure_of_a_graph_no_registry_knows() -> None:
    """An unknown op, an undefined value: still drawn, so a broken graph can be looked at."""
    graph = graphkit.Graph.model_validate({
        "name": "broken", "inputs": ["x"], "outputs": ["f"],
        "nodes": [{"op": "Nope", "inputs": ["x", "ghost"], "outputs": ["f"]}],
    })
    dot = graphkit.to_dot(graph)
    assert "Nope" in dot and "ghost" in dot and "(undefined)" in dot
    if shutil.which("dot"):
        svg_of(dot)


def test_render_keeps_every_value_and_gradient() -> None:
    """`.result` has what `execute` gives for each value, intermediates included."""
    graph, inputs = load_example("sigmoid_neuron")
    result = graphkit.render(graph, inputs, grad=True).result
    values = [i.name for i in graph.inputs] + [c.name for c in graph.constants]
    values += [n.outputs[0] for n in graph.nodes]
    assert list(result.outputs) == ["f"] + [v for v in values if v != "f"]
    assert set(result.gradients) == set(values)
    for name in values:
        alone = graphkit.execute(graph, inputs, wrt=[name])
        assert np.isclose(result.gradients[name], alone.gradients[name]), name
    assert result.gradients["f"] == 1.0
    assert float(result.outputs["h"]) == pytest.approx(math.exp(-1))


def test_gradients_of_a_value_the_output_does_not_read_are_zero() -> None:
    g = graphkit.GraphBuilder("two")
    x = g.input("x")
    g.output(x.exp(), "a")
    g.output(-x, "b")
    graph = g.build()
    result = every_value(graph, {"x": 1.0}, grad=True, of="a")
    assert result.gradients["b"] == 0.0 and result.gradients["a"] == 1.0
    with pytest.raises(graphkit.InputError, match="2 outputs .*of="):
        graphkit.render(graph, {"x": 1.0}, grad=True)
    assert graphkit.render(graph, {"x": 1.0}).result.gradients == {}


def test_gradients_need_inputs_and_a_graph_without_inputs_runs() -> None:
    graph, _ = load_example("add_mul")
    with pytest.raises(graphkit.InputError, match="needs input values.*x, y, z"):
        graphkit.render(graph, grad=True)
    g = graphkit.GraphBuilder("const")
    g.output(g.parameter("w", 3.0) * 2.0, "f")
    drawing = graphkit.render(g.build(), grad=True)
    assert drawing.result.outputs["f"] == 6.0 and drawing.result.gradients["w"] == 2.0


def test_to_dot_labels_what_an_execute_result_holds() -> None:
    graph, inputs = load_example("add_mul")
    result = graphkit.execute(graph, inputs, wrt=["x"])
    dot = graphkit.to_dot(graph, result)
    assert f'<font color="{VALUE_COLOR}">-12</font>' in dot      # the output's value
    assert f'<font color="{GRADIENT_COLOR}">-4</font>' in dot    # x's gradient
    assert dot.count(f'<font color="{GRADIENT_COLOR}">') == 1


def test_dot_is_deterministic_and_names_never_become_ids() -> None:
    graph, inputs = load_example("sigmoid_neuron")
    first = graphkit.render(graph, inputs, grad=True).dot
    assert first == graphkit.render(graph, inputs, grad=True).dot
    ids = set(re.findall(r"^  (\w+) \[", first, re.M)) - {"graph", "node", "edge"}
    assert len(ids) == 5 + 2 + 8 + 1 + 15 and all(re.fullmatch(r"[icnow]\d+", i) for i in ids)


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "shown"), [
    (-12.0, "-12"), (3, "3"), (0.7310585786300049, "0.73"), (-0.19661193324148185, "-0.20"),
    (1.3678794411714423, "1.37"), (0.0123, "0.012"), (123.456, "123.5"), (12345.6, "1.235e+04"),
    (1e-9, "1e-09"), (-0.0, "0"), (0.0, "0"), (float("nan"), "nan"), (float("inf"), "inf"),
    (float("-inf"), "-inf"), (True, "true"), (np.float32(0.5), "0.50"), (np.int64(7), "7"),
    (2e6, "2e+06"),
])
def test_numbers_as_on_the_slides(x: float, shown: str) -> None:
    assert number(x) == shown


def test_value_summaries() -> None:
    assert value_text(np.zeros((256, 10), np.float32)) == "f32[256,10] |x|=0 min 0 max 0"
    assert value_text(np.arange(6, dtype=np.int32)) == "i32[6] min 0 max 5"
    assert value_text(np.array([True, False, True, True, False])) == "bool[5] 3 true"
    assert value_text(np.zeros((0, 3))) == "f64[0,3] empty"
    assert value_text(np.array([[1.0, 2.5]])) == "f64[1,2] [[1, 2.50]]"
    assert value_text(np.float64(0.25)) == "0.25"


# -- escaping --------------------------------------------------------------------------------


def test_markup_escapes_what_xml_and_graphviz_would_read() -> None:
    assert markup('<a & "b">') == "&lt;a &amp; &quot;b&quot;&gt;"
    assert markup("\\N") == "\\\\N"              # Graphviz would put the node's id there
    assert markup("a\x00b\nc") == "a\\\\x00b\\\\nc"  # shown as \x00 and \n


TRICKY = list('<>&"\'\\][{};=-#: NGLE\n\t\x00\x7f\u2028é→')
"""What DOT, XML or Graphviz's label escapes (`\\N` is the node's id) could read as markup."""
names = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs"]),
                min_size=1, max_size=12)   # (a file cannot hold lone surrogates)


@needs_dot
@given(st.lists(names, min_size=4, max_size=4, unique=True))
@example(['"a"', "]", "]]", "<b>&amp;\\N"])   # `]` after a tag broke Graphviz 2.43
def test_any_value_names_give_dot_that_graphviz_draws(chosen: list[str]) -> None:
    """Quotes, <, >, &, backslashes, control characters: dot accepts the DOT, and shows each
    printable name as written."""
    x, c, q, f = chosen
    graph = graphkit.Graph.model_validate({
        "name": x, "inputs": [x], "outputs": [f],
        "constants": [{"name": c, "shape": [], "data": 2.0, "trainable": True}],
        "nodes": [{"op": "Mul", "name": q, "inputs": [x, c], "outputs": [q]},
                  {"op": "Neg", "name": f, "inputs": [q], "outputs": [f]}],
    })
    result = SimpleNamespace(outputs={x: np.float64(1.5)}, gradients={q: np.float64(-1.0)})
    picture = read(graphkit.to_dot(graph, result))
    texts = {t.text for n in picture.nodes.values() for t in n.texts}
    for name in chosen:
        if name.isprintable() and name == " ".join(name.split()):  # as written
            assert name in texts, (name, texts)
    (wire,) = [w for w in picture.wires if w.colored(NAME_COLOR)]   # q, between the gates
    assert (wire.source.id, wire.target.id, wire.gradient) == ("n0", "n1", "-1")


# -- pictures and files ------------------------------------------------------------------------


@needs_dot
def test_svg_and_png_bytes(tmp_path: Path) -> None:
    graph, inputs = load_example("sigmoid_neuron")
    drawing = graphkit.render(graph, inputs, grad=True)
    svg = drawing.svg()
    root = ET.fromstring(svg)
    fills = {t.get("fill") for t in root.iter(f"{SVG}text")}
    assert {VALUE_COLOR, GRADIENT_COLOR} <= fills
    assert drawing._repr_svg_() == svg.decode()
    assert drawing.png().startswith(b"\x89PNG\r\n\x1a\n")
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".dot", b"digraph")):
        path = tmp_path / f"neuron{suffix}"
        assert drawing.save(path) == suffix[1:]
        assert path.read_bytes().startswith(magic)
    assert (tmp_path / "neuron.dot").read_text() == drawing.dot == str(drawing)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "neuron.dot", "neuron.png", "neuron.svg"]  # no temporary files left


def test_unknown_extension_is_a_draw_error(tmp_path: Path) -> None:
    drawing = graphkit.render(load_example("add_mul")[0])
    with pytest.raises(DrawError, match=r"unknown extension \.pdf; use one of \.svg, \.png"):
        drawing.save(tmp_path / "x.pdf")
    with pytest.raises(DrawError, match=r"\(none\)"):
        drawing.save(tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
    assert isinstance(DrawError("x"), graphkit.GraphkitError)


def test_without_graphviz_dot_still_works_and_pictures_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no dot on it
    graph, inputs = load_example("add_mul")
    drawing = graphkit.render(graph, inputs, grad=True)
    (tmp_path / "old.svg").write_text("old")
    with pytest.raises(DrawError, match="SVG needs Graphviz's dot.*apt-get install graphviz"):
        drawing.save(tmp_path / "old.svg")
    assert (tmp_path / "old.svg").read_text() == "old"     # left as it was
    with pytest.raises(DrawError, match="PNG needs Graphviz's dot"):
        drawing.png()
    assert drawing._repr_svg_() is None                    # the notebook shows the text
    drawing.save(tmp_path / "new.dot")
    assert (tmp_path / "new.dot").read_text() == drawing.dot


@needs_dot
def test_a_dot_failure_is_a_draw_error() -> None:
    with pytest.raises(DrawError, match="dot failed to draw SVG: .*syntax error"):
        graphkit.Drawing("digraph { a -> }").svg()

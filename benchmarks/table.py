"""The results table: one Row per target (workload, graphkit, reference, ratio, target, met)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """One measured target. `ours` and `reference` are in `unit`: "s" (seconds), "B" (bytes)
    or "" (a plain number); `ratio` defaults to ours / reference. A row whose measurement
    could not be made (`failed`, e.g. a timeout) counts as a missed target."""

    workload: str
    ours: float | None
    reference: float | None = None
    target: float | None = None
    unit: str = "s"
    ratio: float | None = None
    strict: bool = False
    """The target is `ratio < target` rather than `ratio <= target`."""
    note: str = ""
    failed: bool = False
    ratio_unit: str = ""
    """Shown after the ratio and the target when they are a quantity (e.g. "us", "layers")."""

    def __post_init__(self) -> None:
        if self.ratio is None and self.ours is not None and self.reference:
            self.ratio = self.ours / self.reference

    @property
    def met(self) -> str:
        if self.target is None:
            return "-"
        if self.failed or self.ratio is None:
            return "NO"
        ok = self.ratio < self.target if self.strict else self.ratio <= self.target
        return "yes" if ok else "NO"

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        unit = f" {self.ratio_unit}" if self.ratio_unit else ""
        return f"{'<' if self.strict else '<='}{self.target:.3g}{unit}"

    @property
    def ratio_text(self) -> str:
        if self.ratio is None:
            return "-"
        unit = f" {self.ratio_unit}" if self.ratio_unit else ""
        return f"{self.ratio:.3f}{unit}"


def show_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return show_seconds(value)
    if unit == "B":
        return show_bytes(value)
    return f"{value:.3g}"


def show_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e9:.0f} ns"


def show_bytes(count: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def render(rows: list[Row]) -> str:
    """The rows as a fixed-width text table; notes go in the last column."""
    cells = [("workload", "graphkit", "reference", "ratio", "target", "met", "notes")]
    for row in rows:
        cells.append((
            row.workload, show_value(row.ours, row.unit), show_value(row.reference, row.unit),
            row.ratio_text, row.target_text, row.met,
            row.note,
        ))
    widths = [max(len(line[i]) for line in cells) for i in range(6)]
    lines = []
    for position, line in enumerate(cells):
        text = f"{line[0]:<{widths[0]}}" + "".join(
            f"  {cell:>{width}}" for cell, width in zip(line[1:6], widths[1:], strict=True)
        )
        lines.append((text + "  " + line[6]).rstrip())
        if position == 0:
            lines.append("-" * len(text))
    return "\n".join(lines)

"""What `check_gate` found: one named `Check` per property of a gate, gathered in a `GateReport`.

Reports are plain data so a pytest failure, the `check-plugin` table and its JSON all read the
same findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from graphkit.opdef import OpDef

Status = Literal["passed", "failed", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "skipped")


@dataclass(frozen=True)
class Check:
    """One property of a gate: passed, failed, or skipped (nothing to check), and why."""

    name: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class GateReport:
    """Every check of one op; `ok` when none failed (skipped checks do not fail a gate)."""

    op: OpDef
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.status == "failed"]

    def __getitem__(self, name: str) -> Check:
        """The check called `name` (KeyError when there is none)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def summary(self) -> str:
        """A readable message: the op and every failed check, one per line."""
        if self.ok:
            return f"gate {self.op.qualname}: all {len(self.checks)} checks pass"
        lines = [f"gate {self.op.qualname}: {len(self.failed)} of {len(self.checks)} checks "
                 "failed"]
        lines += [f"  {check.name}: {check.detail}" for check in self.failed]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op.qualname,
            "ok": self.ok,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail}
                       for c in self.checks],
        }

"""The step registry and the chain runner.

Owns the explicit table of built-in steps (name -> class), how a configured chain (`[pipeline] steps`) is turned
into step objects, and `run_chain`, which runs them in order and records ONE trace entry per step (its name, hit
or miss, the decision and why) so no step writes to the trace itself. A name that is not built in may be an
import path `package.module:Class` of a step defined elsewhere (a plugin). Must not import an adapter or write.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from casebot.pipeline.acknowledge import AcknowledgeStep
from casebot.pipeline.automated_answer import AutomatedAnswer
from casebot.pipeline.base import Finding, Incoming, Step, Stop, Verdict
from casebot.pipeline.escalate import EscalationStep
from casebot.pipeline.loop_guard import LoopGuard
from casebot.pipeline.own_mail import OwnMail
from casebot.pipeline.priority import PriorityStep
from casebot.pipeline.sender_role import SenderRole
from casebot.pipeline.thread import Threading

BUILTIN: dict[str, type[Step]] = {cls.name: cls for cls in (OwnMail, LoopGuard, SenderRole, Threading, AutomatedAnswer,
                                                            EscalationStep, PriorityStep, AcknowledgeStep)}
DEFAULT_CHAIN: tuple[str, ...] = ("own_mail", "loop_guard", "sender_role", "threading", "automated_answer",
                                  "escalation", "priority", "acknowledgement")


class UnknownStep(ValueError):
    """Raised by `build_chain` for a name that is neither built in nor an importable `module:Class` step; `index`
    is its position in the configured list, so the caller can name the key (`pipeline.steps[2]`)."""

    def __init__(self, index: int, name: str, reason: str) -> None:
        super().__init__(f"unknown step {name!r}: {reason}")
        self.index, self.name = index, name


def _resolve(index: int, name: str) -> type[Step]:
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        raise UnknownStep(index, name, f"built-in steps are {', '.join(BUILTIN)}; others are 'module:Class'")
    module_name, _, attr = name.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownStep(index, name, f"cannot import it ({type(exc).__name__}: {exc})") from exc
    if not callable(found) or not isinstance(getattr(found, "name", None), str):
        raise UnknownStep(index, name, "a step is a class with a `name` and `__call__(incoming, verdict)`")
    return found  # type: ignore[no-any-return]


def build_chain(names: Sequence[str]) -> tuple[Step, ...]:
    """Step objects for the configured names, in order. Raises UnknownStep; a name given twice is refused too."""
    seen: set[str] = set()
    out: list[Step] = []
    for i, name in enumerate(names):
        if name in seen:
            raise UnknownStep(i, name, "listed twice")
        seen.add(name)
        out.append(_resolve(i, name)())
    return tuple(out)


DEFAULT_STEPS: tuple[Step, ...] = build_chain(DEFAULT_CHAIN)


def _entry(step: Step, finding: Finding) -> dict[str, Any]:
    entry: dict[str, Any] = {"step": step.name, "hit": finding.hit, "decision": finding.decision}
    if finding.why:
        entry["why"] = finding.why
    entry.update(finding.detail)
    return entry


def run_chain(incoming: Incoming, steps: Sequence[Step] = DEFAULT_STEPS) -> Verdict:
    """Run the steps in order on one message; `Stop` from a step ends the chain after recording its finding."""
    verdict = Verdict()
    for step in steps:
        try:
            finding = step(incoming, verdict)
        except Stop as stop:
            verdict.trace.append(_entry(step, stop.finding))
            break
        verdict.trace.append(_entry(step, finding))
    return verdict

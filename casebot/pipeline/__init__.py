"""The decision pipeline: named, tiny steps that decide what happens to one inbound message.

Modelled on GNU Mailman 3's rule/handler chains and structlog's processor lists: a chain is a list of step names
(`[pipeline] steps`), each step is one module with one class (`name` plus `__call__(incoming, verdict)`), fills
in its part of the typed `Verdict` and returns a `Finding`; the runner records one trace entry per step (the audit
of why casebot did what it did). Steps decide, they never do: nothing here writes to the database or sends mail.
Whatever a step must know about stored cases it asks through the `Lookup` protocol, which the store implements.
Must not import an adapter (store, imap, smtp) or read the clock.
"""

from casebot.pipeline.base import (
    Acknowledgement,
    CaseView,
    Finding,
    Incoming,
    Lookup,
    Origin,
    PipelineConfig,
    Placement,
    Step,
    Stop,
    Triage,
    Verdict,
)
from casebot.pipeline.registry import BUILTIN, DEFAULT_CHAIN, DEFAULT_STEPS, UnknownStep, build_chain, run_chain

__all__ = [
    "BUILTIN", "DEFAULT_CHAIN", "DEFAULT_STEPS", "Acknowledgement", "CaseView", "Finding", "Incoming", "Lookup",
    "Origin", "PipelineConfig", "Placement", "Step", "Stop", "Triage", "UnknownStep", "Verdict", "build_chain",
    "run_chain",
]

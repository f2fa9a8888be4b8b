"""The decision pipeline: named, tiny steps that decide what happens to one inbound message.

Modelled on GNU Mailman 3's rule/handler chains and structlog's processor lists: a chain is a tuple of step
names, each step reads the `Context` and records a decision plus a trace entry (the audit of why casebot did
what it did); raising `Stop` ends the chain. Steps decide, they never do: nothing here writes to the database or
sends mail. Whatever a step must know about stored cases it asks through the `Lookup` protocol, which the ingest
job implements with the store. Must not import an adapter (store, imap, smtp).
"""

from casebot.pipeline.base import (
    DEFAULT_CHAIN,
    STEPS,
    CaseView,
    Context,
    Lookup,
    PipelineConfig,
    Stop,
    run_chain,
)

__all__ = ["DEFAULT_CHAIN", "STEPS", "CaseView", "Context", "Lookup", "PipelineConfig", "Stop", "run_chain"]

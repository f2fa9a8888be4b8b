"""Jobs: the verbs. `ingest` (mailbox -> pipeline -> store + outbox -> mark done) and `deliver` (outbox -> sender).

A job applies decisions and moves data between adapters; it does not decide (that is the pipeline) and does not
know which library sits behind an adapter.
Must not import an adapter's library: jobs see adapters through `transport` and the store's facade.
"""

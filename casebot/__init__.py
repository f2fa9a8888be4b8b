"""casebot: an email-to-case ingestion daemon.

Every message in a support mailbox becomes a case (or is threaded into the case it answers), is acknowledged once,
and is never lost. See README.md for the module map.
Must not import anything: `casebot --version` and the package metadata read `__version__` alone.
"""

__version__ = "0.1.0"

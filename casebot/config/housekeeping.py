"""Settings of the housekeeping keys: `[retention]` (what old data goes, when) and `[privacy]` (erasure pseudonyms).

Owns these two tables' shape and defaults (part of the one schema: `schema.Settings` holds them, and
`casebot.toml.example` documents them). Must not read files or decide anything: `jobs.retention` and
`jobs.privacy` use the values, `validate` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetentionSettings:
    raw_days: int = 0  # raw mail of closed cases (and of case-less mail) older than this is emptied; 0 = keep
    attachments_days: int = 0  # attachment data likewise; 0 = keep forever
    closed_case_days: int = 0  # closed cases not updated for this long are deleted entirely; 0 = keep forever
    batch: int = 500  # at most this many rows per rule and run (a run that hits it runs again a minute later)

    @property
    def enabled(self) -> bool:
        return bool(self.raw_days or self.attachments_days or self.closed_case_days)


@dataclass(frozen=True)
class PrivacySettings:
    pseudonym_key_file: str = ""  # a secret file: erasure pseudonyms are HMAC-SHA256 with it; "" = plain SHA-256

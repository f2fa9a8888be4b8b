"""Settings of `[mailbox.oauth2]` and `[outgoing.oauth2]`: where an OAuth2 token for IMAP or SMTP comes from.

Owns the table's shape and defaults (part of the one schema: `MailboxSettings.oauth2` and `OutgoingSettings.oauth2`
hold it, and `casebot.toml.example` documents it). Must not read the client secret or the token file (the
composition root does, through `casebot.oauth_setup`), nor check values (`validate` does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OAuth2Settings:
    """`[mailbox.oauth2]` / `[outgoing.oauth2]`: where an OAuth2 token comes from (see casebot.oauth)."""

    provider: str = "microsoft"  # "microsoft", "google" or "generic"
    client_id: str = ""
    client_secret_file: str = ""  # or client_secret_env; neither for a public client
    client_secret_env: str = ""
    client_secret_expires: str = ""  # "YYYY-MM-DD": warn before the client secret dies
    secret_warn_days: int = 30
    tenant: str = ""  # microsoft only: "contoso.onmicrosoft.com" or the tenant ID
    authority: str = ""  # microsoft only; default https://login.microsoftonline.com/<tenant>
    token_url: str = ""  # generic: required; others: an override
    auth_url: str = ""  # generic: the authorization endpoint for `casebot oauth login`
    scopes: tuple[str, ...] = ()  # generic: what to ask for; others: an override
    token_file: str = ""
    ca_file: str = ""  # a private CA for the token endpoint
    refresh_margin: float = 300.0  # seconds before expiry an access token is refreshed
    redirect_port: int = 0  # loopback port of `casebot oauth login` (0: any free port)

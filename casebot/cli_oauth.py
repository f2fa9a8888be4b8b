"""Command line of `casebot oauth login|status`: printing and exit statuses only.

Owns what an admin sees while logging in (the device code sentence or the URL to open, where the token was
written) and the token overview of `status` (file, expiry, client secret), with the statuses of
`cli_parser.OAUTH_EXIT`. Must not print a token or contain OAuth logic (`casebot.oauth_setup` runs the flows).
"""

from __future__ import annotations

import argparse
import sys

from casebot import config
from casebot.cli_parser import EX_FAIL, EX_OK, EX_TEMPFAIL
from casebot.oauth import OAuthError, TokenUnavailable, read_token_file


def oauth(settings: config.Settings, args: argparse.Namespace) -> int:
    if args.oauth_command == "status":
        return _status(settings)
    from casebot.oauth_setup import login

    def show(text: str) -> None:
        print(text, flush=True)

    try:
        cfg = login(settings, args.section, show, timeout=args.timeout)
    except TokenUnavailable as exc:
        print(f"casebot oauth login: token endpoint unavailable: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except OAuthError as exc:
        print(f"casebot oauth login: {exc}", file=sys.stderr)
        return EX_FAIL
    print(f"Token written to {cfg.token_file} (mode 0600). casebot refreshes it from now on.")
    return EX_OK


def _status(settings: config.Settings) -> int:
    from casebot.clock import utcnow
    from casebot.oauth_setup import token_config

    status, shown = EX_OK, set()
    for section in ("mailbox", "outgoing"):
        cfg = token_config(settings, section)
        if cfg is None:
            print(f"{section}: password authentication")
            continue
        if cfg.section != section:
            print(f"{section}: shares the {cfg.section} token")
            continue
        shown.add(section)
        o = cfg.settings
        try:
            tokens = read_token_file(cfg.token_file)
        except OAuthError as exc:
            print(f"{section}: {o.provider}, {exc}")
            status = EX_FAIL
            continue
        now = utcnow()
        expiry = (f"access token expires {tokens.expires_at:%Y-%m-%d %H:%M} UTC"
                  + (" (expired: refreshed on next use)" if tokens.expires_at <= now else "")
                  if tokens.expires_at else "access token without expiry")
        refresh = "refresh token present" if tokens.refresh_token else "NO refresh token: run casebot oauth login"
        secret = f", client secret expires {o.client_secret_expires}" if o.client_secret_expires else ""
        print(f"{section}: {o.provider}, {cfg.token_file}: {expiry}, {refresh}{secret}")
        if not tokens.refresh_token:
            status = EX_FAIL
    return status

"""OAuth2 adapter for Google and any standard OAuth2 server: the only importer of authlib.

Owns authlib's `OAuth2Session`: the refresh_token grant against `token_url` (the client authenticates with its
secret, or as a public client without one; TLS verified, with an optional private CA), the authorization-code
URL with PKCE (S256) for the loopback login, and the code exchange. Maps authlib's errors onto
`casebot.oauth.TokenRefused` / `TokenUnavailable`. Must not read or write the token file, listen on a socket or
log a token (`casebot.oauth_setup` runs the login, `casebot.oauth` keeps the tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from casebot.oauth import TokenUnavailable, classify


def _guard(what: str, call: Callable[[], Any]) -> Mapping[str, Any]:
    try:
        result = call()
    except AuthlibBaseError as exc:  # an error response, a state mismatch
        raise classify(str(getattr(exc, "error", "") or "oauth_error"),
                       str(getattr(exc, "description", "") or "")) from exc
    except ValueError as exc:  # not JSON: a gateway's error page
        raise TokenUnavailable(f"{what}: {exc}") from exc
    except OSError as exc:  # requests' errors are OSErrors: refused, timeout, TLS, HTTP 5xx
        raise TokenUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
    return dict(result)


class AuthlibProvider:
    """Google (`https://oauth2.googleapis.com/token`) or a generic server's token endpoint."""

    def __init__(self, *, client_id: str, client_secret: str | None, token_url: str, auth_url: str,
                 scopes: tuple[str, ...], ca_file: str = "", timeout: float = 30.0,
                 extra_auth_params: Mapping[str, str] | None = None) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.token_url, self.auth_url, self.scopes = token_url, auth_url, scopes
        self.verify: str | bool = ca_file or True
        self.timeout = timeout
        self.extra_auth_params = dict(extra_auth_params or {})
        self._verifier = ""
        self._redirect_uri = ""

    def _session(self, redirect_uri: str | None = None) -> OAuth2Session:
        session = OAuth2Session(
            self.client_id, self.client_secret or None, scope=" ".join(self.scopes) or None,
            redirect_uri=redirect_uri,
            token_endpoint_auth_method="client_secret_post" if self.client_secret else "none",
            code_challenge_method="S256",
        )
        session.verify = self.verify  # and per request too: a session-wide one loses to $REQUESTS_CA_BUNDLE
        return session

    def refresh(self, refresh_token: str) -> Mapping[str, Any]:
        with self._session() as session:
            return _guard("refresh", lambda: session.refresh_token(
                self.token_url, refresh_token=refresh_token, timeout=self.timeout, verify=self.verify))

    # -- the loopback login (casebot.oauth_setup runs the listener) --

    def authorization_url(self, redirect_uri: str) -> tuple[str, str]:
        """The URL to open in a browser, and the `state` the answer must carry back."""
        if not self.auth_url:
            raise TokenUnavailable("no authorization endpoint: set auth_url")
        self._verifier, self._redirect_uri = generate_token(64), redirect_uri
        with self._session(redirect_uri) as session:
            url, state = session.create_authorization_url(self.auth_url, code_verifier=self._verifier,
                                                          **self.extra_auth_params)
        return str(url), str(state)

    def exchange(self, callback_url: str, state: str) -> Mapping[str, Any]:
        """Trade the code in the loopback callback for tokens (PKCE verifier and redirect URI as sent)."""
        with self._session(self._redirect_uri) as session:
            return _guard("code exchange", lambda: session.fetch_token(
                self.token_url, authorization_response=callback_url, code_verifier=self._verifier, state=state,
                timeout=self.timeout, verify=self.verify))

"""OAuth2 adapter for Microsoft Entra ID (Microsoft 365, Exchange Online): the only importer of msal.

Owns msal's client application for the tenant's authority (`https://login.microsoftonline.com/<tenant>`, or
`authority` for a national cloud): a `ConfidentialClientApplication` when a client secret is configured, a
`PublicClientApplication` otherwise; the refresh_token grant (`acquire_token_by_refresh_token`, so the token file
has the same format for every provider and `casebot.oauth` decides when to refresh), the device code login
(public clients) and the authorization-code login with PKCE (confidential clients, through the loopback listener
of `casebot.oauth_setup`). Maps msal's error answers onto `TokenRefused` / `TokenUnavailable`. Must not read or
write the token file, listen on a socket or log a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msal  # type: ignore[import-untyped, unused-ignore]

from casebot.oauth import OAuthError, TokenUnavailable, classify

LOGIN = "https://login.microsoftonline.com"
# One token for both: Exchange Online accepts a token carrying both scopes for IMAP and for SMTP AUTH, so
# `outgoing.oauth2 = "mailbox"` works. msal adds offline_access (for the refresh token) by itself.
DEFAULT_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send")


def _result(what: str, call: Callable[[], Any]) -> Mapping[str, Any]:
    try:
        result = call()
    except OSError as exc:  # requests' errors are OSErrors
        raise TokenUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # msal: a bad authority or a garbled discovery document
        raise TokenUnavailable(f"{what}: {exc}") from exc
    if not isinstance(result, dict):
        raise TokenUnavailable(f"{what}: no answer")
    if "error" in result:
        raise classify(str(result["error"]), str(result.get("error_description") or "").split("\r\n")[0])
    return result


def _session(ca_file: str | bool, timeout: float) -> Any:
    """A requests session that trusts `ca_file` for every request: a session-wide `verify` alone loses to
    $REQUESTS_CA_BUNDLE, which many systems set."""
    import functools

    import requests

    session = requests.Session()
    session.request = functools.partial(session.request, verify=ca_file, timeout=timeout)  # type: ignore[method-assign]
    return session


class MsalProvider:
    def __init__(self, *, client_id: str, client_secret: str | None, tenant: str, authority: str = "",
                 scopes: tuple[str, ...] = (), ca_file: str = "", timeout: float = 30.0) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.authority = authority.rstrip("/") if authority else f"{LOGIN}/{tenant}"
        self.scopes = list(scopes or DEFAULT_SCOPES)
        self.verify: str | bool = ca_file or True
        self.timeout = timeout
        self._app: Any = None
        self._flow: dict[str, Any] = {}

    @property
    def public(self) -> bool:
        return not self.client_secret

    def app(self) -> Any:
        """The msal application, built on first use (msal fetches the authority's metadata then)."""
        if self._app is None:
            known = self.authority.startswith(LOGIN + "/")
            common: dict[str, Any] = {
                "authority": self.authority, "verify": self.verify, "timeout": self.timeout,
                # A national cloud or a test authority is not in msal's list of Microsoft hosts: it is the
                # admin's own setting, so no instance discovery on login.microsoftonline.com for it.
                "validate_authority": known, "instance_discovery": None if known else False,
            }
            if self.verify is not True:
                common["http_client"] = _session(self.verify, self.timeout)
            try:
                if self.public:
                    self._app = msal.PublicClientApplication(self.client_id, **common)
                else:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id, client_credential=self.client_secret, **common)
            except OSError as exc:
                raise TokenUnavailable(f"authority {self.authority}: {type(exc).__name__}: {exc}") from exc
            except ValueError as exc:
                raise TokenUnavailable(f"authority {self.authority}: {exc}") from exc
        return self._app

    def refresh(self, refresh_token: str) -> Mapping[str, Any]:
        return _result("refresh", lambda: self.app().acquire_token_by_refresh_token(refresh_token, self.scopes))

    # -- logins --

    def device_flow(self, show: Callable[[str], None]) -> Mapping[str, Any]:
        """Device code login (public client): `show` gets msal's sentence with the URL and the code to enter."""
        app = self.app()
        flow = _result("device code", lambda: app.initiate_device_flow(scopes=self.scopes))
        if "user_code" not in flow:
            raise OAuthError(f"device code: no user code in the answer ({sorted(flow)})")
        show(str(flow.get("message") or f"Open {flow.get('verification_uri')} and enter {flow['user_code']}"))
        return _result("device code", lambda: app.acquire_token_by_device_flow(dict(flow)))

    def authorization_url(self, redirect_uri: str) -> tuple[str, str]:
        """Authorization-code login (confidential client): the URL to open and the expected `state`."""
        self._flow = dict(_result("authorization", lambda: self.app().initiate_auth_code_flow(
            self.scopes, redirect_uri=redirect_uri, response_mode="form_post")))  # the code stays out of URLs
        return str(self._flow["auth_uri"]), str(self._flow.get("state", ""))

    def exchange(self, callback_url: str, state: str) -> Mapping[str, Any]:
        from urllib.parse import parse_qsl, urlsplit

        answer = dict(parse_qsl(urlsplit(callback_url).query))
        return _result("code exchange", lambda: self.app().acquire_token_by_auth_code_flow(self._flow, answer))

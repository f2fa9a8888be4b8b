"""What an admin relies on without reading code: the systemd unit's hardening and restart policy, and TLS
verification on by default for both servers."""

from __future__ import annotations

import configparser
import ssl
from pathlib import Path

from casebot.imap import ssl_context

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "casebot.service"


def _unit() -> dict[str, list[str]]:
    """Directive -> every value it is given in [Service] (systemd allows repeats)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#") and "=" in line and section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_unit_runs_the_daemon_hardened() -> None:
    unit = _unit()
    assert unit["ExecStart"][0].endswith(" run")
    assert unit["Type"] == ["notify"]
    assert unit.get("DynamicUser") == ["yes"] or unit.get("User")
    assert unit["StateDirectory"] == ["casebot"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert any(v.startswith("imap-password:") for v in unit["LoadCredential"])


def test_unit_restarts_on_failure_but_not_on_a_configuration_error() -> None:
    unit = _unit()
    assert unit["Restart"] == ["on-failure"]
    assert "78" in unit["RestartPreventExitStatus"][0].split()


def test_unit_file_is_well_formed_ini() -> None:
    parser = configparser.RawConfigParser(strict=False)
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())


def test_tls_is_verified_by_default() -> None:
    ctx = ssl_context("")
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True

"""The shipped deployment layout (issue 8 item 6): a fixed `casebot` user and group, a group-shared state
directory, the unit running as that user with its hardening kept, and the README's MTA lines matching it.
`tests/integration/test_pipe_uid.py` runs the pipe under another uid in this layout."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"


def _lines(name: str) -> list[list[str]]:
    return [line.split() for line in (SYSTEMD / name).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _service() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for line in (SYSTEMD / "casebot.service").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and "=" in line and section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_sysusers_creates_the_casebot_user_and_group() -> None:
    [entry] = _lines("casebot.sysusers.conf")
    assert entry[:3] == ["u", "casebot", "-"]  # `u` creates the group of the same name too


def test_tmpfiles_creates_a_group_shared_state_directory() -> None:
    [entry] = _lines("casebot.tmpfiles.conf")
    assert entry[:5] == ["d", "/var/lib/casebot", "2770", "casebot", "casebot"]


def test_unit_runs_as_the_fixed_user_with_its_hardening() -> None:
    unit = _service()
    assert "DynamicUser" not in unit
    assert unit["User"] == ["casebot"] and unit["Group"] == ["casebot"]
    assert unit["StateDirectory"] == ["casebot"] and unit["StateDirectoryMode"] == ["2770"]
    assert unit["UMask"] == ["0007"]
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}.items():
        assert unit[key] == [value], key


def test_readme_gives_each_mta_the_pipe_as_the_casebot_user() -> None:
    readme = (ROOT / "README.md").read_text()
    for needle in ("user=casebot argv=/usr/local/bin/casebot", "casebot-aliases",  # Postfix pipe and | alias
                   "driver = pipe", "user = casebot", "temp_errors = 75",  # Exim
                   'mda "/usr/local/bin/casebot --config /etc/casebot/casebot.toml ingest" user casebot',  # OpenSMTPD
                   "casebot.sysusers.conf", "casebot.tmpfiles.conf"):
        assert needle in readme, needle

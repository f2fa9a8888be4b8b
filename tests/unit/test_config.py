"""Settings (casebot/config.py): schema errors name the key path, secrets, SLA settings, and the CLI exit status."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest

from casebot import cli, cli_parser, config
from casebot.config import ConfigError, from_mapping, load

MINIMAL: dict[str, object] = {"mailbox": {"username": "support@example.com"}}


def with_(**sections: dict[str, object]) -> dict[str, object]:
    """MINIMAL with some sections merged in (one level deep)."""
    data = copy.deepcopy(MINIMAL)
    for name, values in sections.items():
        current = data.setdefault(name, {})
        assert isinstance(current, dict)
        current.update(values)
    return data


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        from_mapping(data)
    return str(info.value)


def test_minimal_mapping_has_documented_defaults() -> None:
    s = from_mapping(MINIMAL)
    assert s.mailbox.host == "localhost"
    assert s.mailbox.port == 993
    assert s.mailbox.security == "tls"
    assert s.cases.reference_format == "CASE-{number:06d}"
    assert s.reference_format.format(5) == "CASE-000005"
    assert s.sla.timezone == "Europe/London"
    assert set(s.sla.targets) == {"critical", "high", "medium", "low"}
    assert s.source is None


# --- schema errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected_start", "fragments"),
    [
        (with_(mailbox={"hots": "x"}), "mailbox.hots: unknown key", ["host"]),
        ({**MINIMAL, "mailbx": {}}, "mailbx: unknown key", ["mailbox"]),
        (with_(sla={"targets": {"high": {"first": "1h", "resolution": "1d"}}}), "sla.targets.high.first: unknown key",
         []),
        (with_(sla={"targets": {"urgent": {"first_response": "1h"}}}), "sla.targets.urgent: must be one of", []),
        (with_(sla={"reminders": {"at": [1.5]}}), "sla.reminders.at[0]: a share of the target between 0 and 1", []),
        (with_(sla={"reminders": {"quiet": ["meh"]}}), "sla.reminders.quiet[0]: must be one of", []),
        (with_(plans={"gold": {"clients": ["not an address"]}}), "plans.gold.clients[0]: not an address", []),
        (with_(plans={"gold": {"clients": []}}), "plans.gold.clients: list the plan's clients", []),
        (with_(plans={"gold": {"clients": ["@x.example"], "out_of_hours": ["urgent"]}}),
         "plans.gold.out_of_hours[0]: must be one of", []),
        (with_(plans={"gold": {"clients": ["@x.example"], "targets": {"critical": {"first_response": "soon"}}}}),
         "plans.gold.targets.critical.first_response: duration 'soon'", []),
        (with_(plans={"gold": {"clients": ["@x.example"], "oncall": "nobody"}}), "plans.gold.oncall: not an email", []),
        (with_(staff={"notify": "team"}), "staff.notify: not an email address", []),
        (with_(digest={"time": "9am"}), "digest.time: expected 'HH:MM'", []),
        (with_(mailbox={"port": "x"}), "mailbox.port: expected an integer", ["a string ('x')"]),
        (with_(mailbox={"port": True}), "mailbox.port: expected an integer", ["a boolean"]),
        (with_(mailbox={"port": 99.5}), "mailbox.port: expected an integer", ["a number (99.5)"]),
        (with_(mailbox={"timeout": "30"}), "mailbox.timeout: expected a number", ["a string ('30')"]),
        (with_(mailbox={"idle": "yes"}), "mailbox.idle: expected true or false", ["a string ('yes')"]),
        (with_(mailbox={"idle": 1}), "mailbox.idle: expected true or false", ["an integer (1)"]),
        (with_(mailbox={"username": 5}), "mailbox.username: expected a string", ["an integer (5)"]),
        ({"mailbox": "imap"}, "mailbox: expected a table", ["a string ('imap')"]),
        (with_(cases={"public_domains": "gmail.com"}), "cases.public_domains: expected an array", []),
        (with_(cases={"public_domains": ["gmail.com", 1]}), "cases.public_domains[1]: expected a string", []),
        (with_(sla={"targets": []}), "sla.targets: expected a table", ["an array"]),
        (with_(sla={"targets": {"high": "1h"}}), "sla.targets.high: expected a table", []),
    ],
)
def test_schema_errors_name_the_key_path(data: dict[str, object], expected_start: str, fragments: list[str]) -> None:
    message = error_of(data)
    assert message.startswith(expected_start)
    for fragment in fragments:
        assert fragment in message


def test_integer_is_accepted_for_a_number() -> None:
    s = from_mapping(with_(mailbox={"timeout": 10}))
    assert s.mailbox.timeout == 10.0
    assert isinstance(s.mailbox.timeout, float)


@pytest.mark.parametrize(
    ("data", "expected_start"),
    [
        (with_(mailbox={"kind": "pop3"}), "mailbox.kind"),
        (with_(mailbox={"security": "ssl"}), "mailbox.security"),
        (with_(mailbox={"port": 0}), "mailbox.port: must be between 1 and 65535"),
        (with_(outgoing={"port": 70000}), "outgoing.port: must be between 1 and 65535"),
        (with_(mailbox={"timeout": 0}), "mailbox.timeout: must be greater than zero"),
        (with_(outgoing={"retry_base": -1.0}), "outgoing.retry_base: must be greater than zero"),
        ({"mailbox": {"kind": "imap"}}, "mailbox.username: required"),
        (with_(acknowledgement={"rate_limit": -1}), "acknowledgement.rate_limit"),
        (with_(outgoing={"from_address": "Support"}), "outgoing.from_address"),
        (with_(mailbox={"processed_keyword": "bad keyword"}), "mailbox.processed_keyword"),
        (with_(database={"url": "  "}), "database.url"),
        (with_(priority={"default": "urgent"}), "priority.default"),
        (with_(logging={"level": "verbose"}), "logging.level"),
    ],
)
def test_value_errors_name_the_key_path(data: dict[str, object], expected_start: str) -> None:
    assert error_of(data).startswith(expected_start)


# --- IMAP without TLS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("imap.example.com", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("0.0.0.0", False),
    ],
)
def test_imap_security_none_only_on_loopback(host: str, allowed: bool) -> None:
    data = with_(mailbox={"host": host, "security": "none", "port": 143})
    if allowed:
        assert from_mapping(data).mailbox.security == "none"
    else:
        message = error_of(data)
        assert message.startswith("mailbox.security")
        assert host in message


@pytest.mark.parametrize(
    ("outgoing", "allowed"),
    [
        ({"host": "smtp.example.com", "security": "none", "username": "u"}, False),
        ({"host": "smtp.example.com", "security": "none", "username": ""}, True),
        ({"host": "127.0.0.1", "security": "none", "username": "u"}, True),
    ],
)
def test_smtp_security_none_with_login_only_on_loopback(outgoing: dict[str, object], allowed: bool) -> None:
    data = with_(outgoing=outgoing)
    if allowed:
        from_mapping(data)
    else:
        assert error_of(data).startswith("outgoing.security")


def test_maildir_mailbox_needs_no_username() -> None:
    s = from_mapping({"mailbox": {"kind": "maildir", "security": "none", "host": "imap.example.com"}})
    assert s.mailbox.kind == "maildir"


# --- secrets ------------------------------------------------------------------------------------------------------


def test_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    secret = tmp_path / "imap-password"
    secret.write_text("s3cret pass\r\n", encoding="utf-8")
    s = from_mapping(with_(mailbox={"password_file": str(secret)}))
    assert s.secret("mailbox").resolve() == "s3cret pass"


def test_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBOT_TEST_IMAP_PASSWORD", "from-env")
    s = from_mapping(with_(mailbox={"password_env": "CASEBOT_TEST_IMAP_PASSWORD"}))
    assert s.secret("mailbox").resolve() == "from-env"


def test_password_env_unset_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASEBOT_TEST_UNSET", raising=False)
    s = from_mapping(with_(outgoing={"password_env": "CASEBOT_TEST_UNSET"}))
    with pytest.raises(ConfigError, match=r"^outgoing\.password_env: .*CASEBOT_TEST_UNSET"):
        s.secret("outgoing").resolve()


def test_inline_password_and_none() -> None:
    assert from_mapping(with_(mailbox={"password": "inline"})).secret("mailbox").resolve() == "inline"
    assert from_mapping(MINIMAL).secret("mailbox").resolve() is None


@pytest.mark.parametrize(
    "sources",
    [
        {"password": "x", "password_file": "/run/x"},
        {"password": "x", "password_env": "X"},
        {"password_file": "/run/x", "password_env": "X"},
        {"password": "x", "password_file": "/run/x", "password_env": "X"},
    ],
)
def test_two_secret_sources_is_an_error(sources: dict[str, object]) -> None:
    s = from_mapping(with_(mailbox=sources))
    with pytest.raises(ConfigError, match=r"^mailbox: set only one of"):
        s.secret("mailbox").resolve()


def test_missing_password_file_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    missing = tmp_path / "nope" / "imap-password"
    s = from_mapping(with_(mailbox={"password_file": str(missing)}))
    with pytest.raises(ConfigError) as info:
        s.secret("mailbox").resolve()
    assert str(info.value).startswith("mailbox.password_file: ")
    assert str(missing) in str(info.value)


def test_relative_password_file_in_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap-password").write_text("from-systemd\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.chdir(tmp_path)  # a file of the same name in the working directory must not be read
    (tmp_path / "imap-password").write_text("wrong\n", encoding="utf-8")
    s = from_mapping(with_(mailbox={"password_file": "imap-password"}))
    assert s.secret("mailbox").resolve() == "from-systemd"


def test_absolute_password_file_ignores_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    secret = tmp_path / "abs-password"
    secret.write_text("absolute\n", encoding="utf-8")
    assert from_mapping(with_(mailbox={"password_file": str(secret)})).secret("mailbox").resolve() == "absolute"


def test_relative_password_file_without_credentials_is_relative_to_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "imap-password").write_text("next-to-config\n", encoding="utf-8")
    cfg = etc / "casebot.toml"
    cfg.write_text('[mailbox]\nusername = "u@example.com"\npassword_file = "imap-password"\n', encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load(str(cfg)).secret("mailbox").resolve() == "next-to-config"


def test_repr_never_shows_secrets() -> None:
    s = from_mapping(with_(mailbox={"password": "hunter2-imap"}, outgoing={"password": "hunter2-smtp"}))
    assert "hunter2" not in repr(s)
    assert "hunter2" not in repr(s.secret("mailbox"))
    assert "hunter2" not in repr(s.outgoing)


# --- SLA settings -------------------------------------------------------------------------------------------------


def test_sla_targets_override_merges_with_defaults() -> None:
    s = from_mapping(with_(sla={"targets": {"high": {"first_response": "2h", "resolution": "2d"}}}))
    assert {k: (t.first_response, t.resolution) for k, t in s.sla.targets.items()} == {
        "critical": ("1h", "4h"),
        "high": ("2h", "2d"),
        "medium": ("1d", "3d"),
        "low": ("2d", "5d"),
    }
    policy = s.sla_policy()
    opened = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    deadlines = policy.deadlines("high", opened)
    assert deadlines is not None
    assert deadlines.first_response_due == dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert deadlines.resolution_due == dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
    critical = policy.deadlines("critical", opened)
    assert critical is not None and critical.first_response_due == dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)


def test_sla_settings_build_the_calendar() -> None:
    s = from_mapping(with_(sla={
        "timezone": "Europe/Berlin", "business_hours": "08:00-16:00", "workdays": ["mon", "tue"],
        "holidays": "DE", "holidays_subdivision": "", "extra_holidays": ["2026-03-03"],
    }))
    cal = s.sla_policy().calendar
    assert (cal.timezone, cal.start, cal.end) == ("Europe/Berlin", dt.time(8, 0), dt.time(16, 0))
    assert cal.workdays == (0, 1)
    assert cal.holiday_subdivision is None
    assert cal.extra_holidays == (dt.date(2026, 3, 3),)
    # Mon 2 Mar 2026 15:00 CET (14:00 UTC) + 2h: 1h Monday, Tue 3 Mar is a holiday, next workday Mon 9 Mar 08:00 CET.
    assert cal.add(dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC), dt.timedelta(hours=2)) == dt.datetime(
        2026, 3, 9, 8, 0, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("sla", "expected_start", "fragment"),
    [
        ({"business_hours": "9-17"}, "sla.business_hours", "HH:MM-HH:MM"),
        ({"business_hours": "09:00 to 17:30"}, "sla.business_hours", "HH:MM-HH:MM"),
        ({"business_hours": "25:00-26:00"}, "sla.business_hours", "hour"),
        ({"business_hours": "09:61-17:00"}, "sla.business_hours", "minute"),
        ({"business_hours": "17:30-09:00"}, "sla", "start before they end"),
        ({"workdays": ["mon", "funday"]}, "sla.workdays[1]", "funday"),
        ({"workdays": []}, "sla", "workdays"),
        ({"extra_holidays": ["25/12/2026"]}, "sla.extra_holidays[0]", "25/12/2026"),
        ({"timezone": "Mars/Olympus_Mons"}, "sla", "Mars/Olympus_Mons"),
        ({"holidays": "XX"}, "sla", "XX"),
        ({"targets": {"urgent": {"first_response": "1h", "resolution": "2h"}}}, "sla.targets.urgent", "urgent"),
        ({"targets": {"high": {"first_response": "2 weeks", "resolution": "1d"}}}, "sla", "2 weeks"),
    ],
)
def test_bad_sla_settings(sla: dict[str, object], expected_start: str, fragment: str) -> None:
    message = error_of(with_(sla=sla))
    assert message.startswith(expected_start)
    assert fragment in message


def test_bad_target_duration_names_the_key_path() -> None:
    message = error_of(with_(sla={"targets": {"high": {"first_response": "2 weeks", "resolution": "1d"}}}))
    assert message.startswith("sla.targets.high.first_response")


@pytest.mark.parametrize(
    ("fmt", "ok"),
    [
        ("PR{number:05d}", True),
        ("#{number}", True),
        ("CASE", False),
        ("CASE-{number}{number}", False),
        ("CASE {number}", False),
        ("CASE-{number:q}", False),
    ],
)
def test_reference_format(fmt: str, ok: bool) -> None:
    data = with_(cases={"reference_format": fmt})
    if ok:
        assert from_mapping(data).reference_format.template == fmt
    else:
        assert error_of(data).startswith("cases.reference_format: ")


# --- files ----------------------------------------------------------------------------------------------------------


def test_load_reads_file_and_records_source(tmp_path: Path) -> None:
    path = tmp_path / "casebot.toml"
    path.write_text('[mailbox]\nusername = "u@example.com"\nhost = "imap.example.com"\n', encoding="utf-8")
    s = load(str(path))
    assert s.mailbox.host == "imap.example.com"
    assert s.source == path.resolve()
    assert s.resolve_path("rules.toml") == path.resolve().parent / "rules.toml"
    assert s.resolve_path("/abs/rules.toml") == Path("/abs/rules.toml")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"[mailbox\nusername = 'u'\n", "not valid TOML"),
        (b"mailbox = [\n", "not valid TOML"),
        (b"[mailbox]\nusername = \"u\"\nusername = \"v\"\n", "not valid TOML"),
        (b"[mailbox]\nusername = \"\xff\xfe\"\n", "not valid TOML"),
        (b"[mailbox]\nusername = \"u\"\nhots = \"x\"\n", "mailbox.hots: unknown key"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "casebot.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load(str(tmp_path / "missing.toml"))


def test_locate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert config.locate(None) == config.DEFAULT_PATH
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path / "env.toml"))
    assert config.locate(None) == tmp_path / "env.toml"
    assert config.locate("explicit.toml") == Path("explicit.toml")


# --- CLI exit status ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('[mailbox]\nusername = "u@example.com"\nhots = "x"\n', "mailbox.hots"),
        ('[mailbox]\nusername = "u@example.com"\nport = "x"\n', "mailbox.port"),
        ("[mailbox\n", "not valid TOML"),
    ],
)
def test_cli_config_error_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    bad = tmp_path / "casebot.toml"
    bad.write_text(content, encoding="utf-8")
    status = cli.main(["--config", str(bad), "cases", "list"])
    assert status == 78 == cli_parser.EX_CONFIG
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert "configuration error" in captured.err
    assert captured.out == ""


def test_cli_missing_config_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert cli.main(["--config", str(missing), "cases", "list"]) == 78
    assert str(missing) in capsys.readouterr().err


def test_partial_target_override_keeps_the_other_default() -> None:
    policy = from_mapping(with_(sla={"targets": {"high": {"first_response": "2h"}}})).sla_policy()
    assert (policy.targets["high"].first_response.text, policy.targets["high"].resolution.text) == ("2h", "1d")
    assert policy.targets["critical"].first_response.text == "1h"


def test_plans_with_cover_and_partial_plan_targets() -> None:
    settings = from_mapping(with_(
        sla={"targets": {"critical": {"resolution": "3h"}}},
        plans={"enterprise": {"clients": ["@BigClient.example", "cto@other.example"],
                              "out_of_hours": ["critical", "high"], "oncall": "oncall@example.com",
                              "targets": {"critical": {"first_response": "30m"}}},
               "enhanced": {"clients": ["@mid.example"], "out_of_hours": ["critical"]}},
    ))
    policy = settings.sla_policy()
    assert [p.name for p in policy.plans] == ["enterprise", "enhanced"]
    plan = policy.plan_for("someone@bigclient.example")
    assert plan is not None and plan.name == "enterprise" and plan.oncall == "oncall@example.com"
    t = policy.targets_for("critical", plan)
    assert (t.first_response.text, t.resolution.text) == ("30m", "3h")  # the plan's, then [sla.targets]
    assert policy.targets_for("high", plan).first_response.text == "4h"
    assert policy.is_24x7("high", plan) and not policy.is_24x7("medium", plan)
    assert policy.plan_for("cto@other.example") is plan and policy.plan_for("ceo@other.example") is None

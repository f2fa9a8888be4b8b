"""The shipped Prometheus alert rules fire when they should, and only then: `promtool test rules` (Prometheus' own
rule evaluator, Debian package `prometheus`) on synthetic series for each alert, healthy series beside them.

That every metric the rules use exists in a real scrape of casebot is tests/integration/test_metrics.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

RULES = Path(__file__).resolve().parents[2] / "contrib" / "prometheus" / "casebot-alerts.yml"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
WHO = 'job="casebot",instance="casebot:9464"'
LABELS = {"job": "casebot", "instance": "casebot:9464"}


def rendered_annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    """The rule's summary and description, its `{{ $labels.x }}` filled in, as promtool renders them."""
    block = RULES.read_text(encoding="utf-8").split(f"- alert: {alert}\n", 1)[1].split("- alert:", 1)[0]
    found = dict(re.findall(r'^\s+(summary|description): "(.*)"$', block, re.M))
    return {k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], v) for k, v in found.items()}


def fires(alert: str, at: str, **extra: str) -> dict[str, Any]:
    severity = re.search(r"severity: (\w+)", RULES.read_text().split(f"- alert: {alert}\n", 1)[1])
    assert severity
    labels = {**LABELS, **extra, "severity": severity[1]}
    return {"eval_time": at, "alertname": alert,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": rendered_annotations(alert, labels)}]}


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


CASES: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = [
    ("mailbox failing pass after pass",
     {f"casebot_mailbox_failed_passes{{{WHO}}}": "0 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
      f"casebot_mailbox_last_success_timestamp_seconds{{{WHO}}}": "60 120 180x20"},
     [quiet("CasebotMailboxStuck", "5m"), fires("CasebotMailboxStuck", "12m")]),
    ("mailbox loop hung: no failure counted, but no good pass either",
     {f"casebot_mailbox_failed_passes{{{WHO}}}": "0x40",
      f"casebot_mailbox_last_success_timestamp_seconds{{{WHO}}}": "60 120 180x40"},
     [quiet("CasebotMailboxStuck", "16m"), fires("CasebotMailboxStuck", "26m")]),
    ("mailbox healthy",
     {f"casebot_mailbox_failed_passes{{{WHO}}}": "0x40",
      f"casebot_mailbox_last_success_timestamp_seconds{{{WHO}}}": "0+60x40"},
     [quiet("CasebotMailboxStuck", "30m")]),
    ("outbox stuck",
     {f'casebot_outbox_oldest_age_seconds{{{WHO},status="pending"}}': "0+60x40"},
     [quiet("CasebotOutboxStuck", "18m"), fires("CasebotOutboxStuck", "25m", status="pending")]),
    ("outbox draining", {f'casebot_outbox_oldest_age_seconds{{{WHO},status="pending"}}': "0 30 0 45 0x40"},
     [quiet("CasebotOutboxStuck", "30m")]),
    ("casebot down", {f"up{{{WHO}}}": "1 1 0x20"}, [quiet("CasebotDown", "4m"), fires("CasebotDown", "10m")]),
    ("casebot up", {f"up{{{WHO}}}": "1x20"}, [quiet("CasebotDown", "10m")]),
    ("quarantine growing", {f"casebot_quarantine_messages{{{WHO}}}": "0 0 0 1 2 2x10"},
     [fires("CasebotQuarantineGrowing", "10m")]),
    ("quarantine steady", {f"casebot_quarantine_messages{{{WHO}}}": "4x20"},
     [quiet("CasebotQuarantineGrowing", "10m")]),
    ("SLA breached", {f"casebot_sla_breaches_total{{{WHO}}}": "0 0 0 1x10"}, [fires("CasebotSlaBreaches", "10m")]),
    ("no SLA breach", {f"casebot_sla_breaches_total{{{WHO}}}": "0x20"}, [quiet("CasebotSlaBreaches", "10m")]),
    ("deliveries failing", {f'casebot_deliveries_total{{{WHO},result="failed"}}': "0 0 1 1x10"},
     [fires("CasebotDeliveriesFailing", "10m", result="failed")]),
    ("database down", {f"casebot_database_up{{{WHO}}}": "1 0x10"},
     [quiet("CasebotDatabaseDown", "1m"), fires("CasebotDatabaseDown", "6m")]),
    ("token expiring without a refresh",
     {f'casebot_oauth_token_expiry_timestamp_seconds{{{WHO},token="mailbox"}}': "600x30"},
     [quiet("CasebotOAuthTokenExpiring", "5m"), fires("CasebotOAuthTokenExpiring", "20m", token="mailbox")]),
    ("token refreshed in time",
     {f'casebot_oauth_token_expiry_timestamp_seconds{{{WHO},token="mailbox"}}': "3600+60x40"},
     [quiet("CasebotOAuthTokenExpiring", "30m")]),
    ("token failing", {f'casebot_oauth_token_failing{{{WHO},token="outgoing"}}': "0 1x20"},
     [quiet("CasebotOAuthTokenFailing", "3m"), fires("CasebotOAuthTokenFailing", "10m", token="outgoing")]),
]


def test_rules_file_is_valid() -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("series", "checks"), [(s, c) for _n, s, c in CASES], ids=[n for n, _s, _c in CASES])
def test_alert(tmp_path: Path, series: dict[str, str], checks: list[dict[str, Any]]) -> None:
    assert PROMTOOL is not None
    spec = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": checks,
    }]}
    test_file = tmp_path / "test.yml"
    test_file.write_text(json.dumps(spec, indent=2))  # YAML is a superset of JSON
    done = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

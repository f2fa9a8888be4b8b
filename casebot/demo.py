"""The no-server demo (`casebot demo`): a working folder with a local Maildir in and out, SQLite, sample mails.

Owns the demo profile and laying out its folder: the config, the inbox Maildir with the shipped sample mails
copied in (same names each time, so a second run finds them already stored) and where the sent mail lands.
Must not print or run the jobs: the CLI runs `poll` and `cases list` on what this prepares, as a user would.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from casebot import config
from casebot.maildir import ensure_maildir

DEMO_CONFIG = """\
# casebot demo profile: a local Maildir in, a local Maildir out, SQLite. No server needed.
[mailbox]
kind = "maildir"
path = "inbox"

[outgoing]
kind = "maildir"
path = "sent"
from_address = "Example Support <support@example.com>"

[database]
url = "sqlite:///casebot.db"

[logging]
format = "console"
level = "warning"
"""


@dataclass(frozen=True)
class Demo:
    folder: Path
    config_file: Path
    inbox: Path
    samples: int
    settings: config.Settings

    def sent(self) -> list[Path]:
        """The mails casebot wrote, oldest first."""
        return sorted((self.folder / "sent" / "new").glob("*"), key=lambda p: p.stat().st_mtime_ns)


def prepare(folder: Path) -> Demo:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "casebot.toml"
    if not cfg.exists():
        cfg.write_text(DEMO_CONFIG, encoding="utf-8")
    inbox = folder / "inbox"
    ensure_maildir(inbox)
    samples = sorted(
        (p for p in resources.files("casebot._config.samples").iterdir() if p.name.endswith(".eml")),
        key=lambda p: p.name,
    )
    for sample in samples:
        with sample.open("rb") as src, open(inbox / "new" / f"demo-{sample.name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return Demo(folder, cfg, inbox, len(samples), config.load(str(cfg)))

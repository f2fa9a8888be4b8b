"""Holiday calendars load one country's module, and give exactly what the holidays library gives.

Each check runs in a fresh interpreter: loading a calendar changes what the process has imported, which is what is
being checked.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys, datetime as dt, json
import holidays
from casebot.calendars import country_calendar
ours = country_calendar(sys.argv[1], sys.argv[2] or None)
days = [dt.date(y, 1, 1) + dt.timedelta(d) for y in range(2019, 2031) for d in range(366)]
mine = {str(d): ours.get(d) for d in days if d in ours}
countries = sorted(m for m in sys.modules if m.startswith("holidays.countries."))
lib = holidays.country_holidays(sys.argv[1], subdiv=sys.argv[2] or None)
theirs = {str(d): lib.get(d) for d in days if d in lib}
print(json.dumps({"same": mine == theirs, "count": len(mine), "loaded": countries}))
"""


def run(country: str, subdivision: str = "") -> dict[str, object]:
    import json

    out = subprocess.run([sys.executable, "-c", CHECK, country, subdivision], capture_output=True, text=True,
                         check=True)
    found: dict[str, object] = json.loads(out.stdout)
    return found


@pytest.mark.parametrize(("country", "subdivision"), [("GB", "ENG"), ("GB", "SCT"), ("DE", "BY"), ("US", "")])
def test_one_countrys_module_and_the_librarys_own_dates(country: str, subdivision: str) -> None:
    found = run(country, subdivision)
    assert found["same"] is True and int(str(found["count"])) > 50
    loaded = found["loaded"]
    assert isinstance(loaded, list) and len(loaded) == 1, loaded  # not the ~250 modules of every country


def test_an_unknown_calendar_is_named() -> None:
    from casebot.calendars import UnknownCalendar, country_calendar

    with pytest.raises(UnknownCalendar, match="'XX'"):
        country_calendar("XX")
    with pytest.raises(UnknownCalendar, match="'NOPE'"):
        country_calendar("GB", "NOPE")

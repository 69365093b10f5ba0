"""The oracle for shared/tests/chart_oracle.rs: the Swiss Ephemeris (pyswisseph, pinned in
requirements.txt, installed into .venv by scripts/setup.sh) casts the charts we cast in Rust.

stdin: JSON lines {"date": "YYYY-MM-DD", "time": "HH:MM:SS" or null, "lat": .., "lon": .., "tz": "Area/City"}.
stdout: one JSON line each: {"error": "birth.time"} for a local time the clocks skipped, else
the UTC instant used, the sidereal (Lahiri) Sun and Moon longitudes, the ayanamsa, the
ascendant (null without a time or beyond 66 degrees latitude), the sign, nakshatra and pada
indices, and, with an unknown time, whether the Moon's sign at 00:00 local differs from 23:59:59.

Local time to UTC with zoneinfo, on the tzdata package (not the system's zone files): a time in
a fold is the earlier instant (fold=0), a skipped time is an error when given, and, for the
unknown-time instants (12:00, 00:00, 23:59:59), is read with the offset before the gap (fold=0).
Ephemeris: Moshier's built-in (FLG_MOSEPH), so no ephemeris files are needed.
"""

import json
import sys
import zoneinfo
from datetime import date, datetime, time, timezone

try:
    import swisseph as swe
except ImportError as error:
    sys.exit(f"oracle.py: pyswisseph is not installed (run scripts/setup.sh): {error}")

zoneinfo.reset_tzpath(to=[])  # the pinned tzdata package only

MAX_LAGNA_LATITUDE = 66.0
FLAGS = swe.FLG_MOSEPH | swe.FLG_SIDEREAL
swe.set_sid_mode(swe.SIDM_LAHIRI)


def to_utc(local, tz, strict):
    """The UTC instant of a naive local datetime; None if strict and the time was skipped."""
    aware = local.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(timezone.utc)
    skipped = instant.astimezone(tz).replace(tzinfo=None) != local
    if skipped and strict:
        return None
    return instant


def julian_day(instant):
    hours = instant.hour + instant.minute / 60 + (instant.second + instant.microsecond / 1e6) / 3600
    return swe.julday(instant.year, instant.month, instant.day, hours, swe.GREG_CAL)


def longitude(jd, body):
    return swe.calc_ut(jd, body, FLAGS)[0][0]


def cast(row):
    tz = zoneinfo.ZoneInfo(row["tz"])
    day = date.fromisoformat(row["date"])
    known = row["time"] is not None
    at = time.fromisoformat(row["time"]) if known else time(12, 0, 0)
    instant = to_utc(datetime.combine(day, at), tz, strict=known)
    if instant is None:
        return {"error": "birth.time"}
    jd = julian_day(instant)
    sun = longitude(jd, swe.SUN)
    moon = longitude(jd, swe.MOON)
    ayanamsa = swe.get_ayanamsa_ex_ut(jd, FLAGS)[1]
    asc = None
    if known and abs(row["lat"]) <= MAX_LAGNA_LATITUDE:
        asc = swe.houses_ex(jd, row["lat"], row["lon"], b"P", FLAGS)[1][0]
    changes = False
    if not known:
        signs = set()
        for local in (time(0, 0, 0), time(23, 59, 59)):
            edge = to_utc(datetime.combine(day, local), tz, strict=False)
            signs.add(int(longitude(julian_day(edge), swe.MOON) // 30))
        changes = len(signs) > 1
    return {
        "error": None,
        "utc": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sun": sun,
        "moon": moon,
        "ayanamsa": ayanamsa,
        "asc": asc,
        "sun_sign": int(sun // 30),
        "moon_sign": int(moon // 30),
        "nakshatra": int(moon * 27 // 360),
        "pada": int(moon * 108 // 360) % 4 + 1,
        "lagna": None if asc is None else int(asc // 30),
        "moon_sign_changes_that_day": changes,
    }


def main():
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(cast(json.loads(line))), flush=False)


if __name__ == "__main__":
    main()

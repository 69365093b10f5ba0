"""Writes tests/chart/moments.csv, the birth moments shared/tests/chart_oracle.rs casts both in
Rust and with the Swiss Ephemeris (oracle.py). Deterministic (fixed seed); run it again only to
change the set: .venv/bin/python tests/chart/make_moments.py

Every moment is at least MARGIN degrees from each boundary the test judges (Sun sign; Moon sign,
nakshatra and pada; lagna), well over the test's tolerances, so a sign the test compares is never
decided by ephemeris noise. Categories:
  random         ordinary moments 1940-2030, many zones, latitudes within +-60
  kolkata_war    Asia/Kolkata while it kept +06:30 (1941-10 to 1942-05, 1942-09 to 1945-10)
  moon_boundary  the Moon MARGIN..0.2 degrees before or after a sign or nakshatra boundary
  asc_boundary   the ascendant MARGIN..0.2 degrees before or after a sign boundary
  sun_boundary   the Sun MARGIN..0.2 degrees before or after a sign boundary
  dst_gap        a local time the clocks skipped (both must refuse it)
  dst_edge       the last second before a gap, its end, and times in and around a fold
  unknown_time   no birth time: noon, and whether the Moon changes sign that local day
"""

import csv
import random
import sys
import zoneinfo
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import swisseph as swe

zoneinfo.reset_tzpath(to=[])  # the pinned tzdata package, as oracle.py

MARGIN = 0.03
NEAR = 0.2
SEED = 20240611
FLAGS = swe.FLG_MOSEPH | swe.FLG_SIDEREAL
swe.set_sid_mode(swe.SIDM_LAHIRI)
OUT = Path(__file__).with_name("moments.csv")

# zone: (latitude range, longitude range) of plausible birth places
ZONES = {
    "Asia/Kolkata": ((8.0, 32.0), (69.0, 95.0)),
    "America/New_York": ((25.0, 45.0), (-84.0, -70.0)),
    "Europe/London": ((50.0, 58.0), (-6.0, 2.0)),
    "Australia/Sydney": ((-37.0, -28.0), (145.0, 153.0)),
    "America/Sao_Paulo": ((-33.0, -5.0), (-55.0, -35.0)),
    "Asia/Kathmandu": ((26.5, 30.0), (80.0, 88.0)),
    "Pacific/Chatham": ((-44.3, -43.7), (-176.8, -176.2)),
    "Asia/Tokyo": ((31.0, 43.0), (130.0, 145.0)),
    "Europe/Berlin": ((47.5, 54.5), (6.0, 15.0)),
    "America/Los_Angeles": ((32.5, 42.0), (-124.0, -114.0)),
    "Africa/Johannesburg": ((-34.0, -22.5), (17.0, 32.0)),
    "Asia/Dubai": ((22.5, 26.0), (52.0, 56.0)),
    "Asia/Dhaka": ((21.0, 26.5), (88.0, 92.5)),
    "Asia/Colombo": ((6.0, 9.8), (79.8, 81.9)),
    "America/Anchorage": ((55.0, 60.0), (-165.0, -140.0)),
    "Europe/Moscow": ((50.0, 60.0), (30.0, 50.0)),
}
OTHER_ZONES = [z for z in ZONES if z != "Asia/Kolkata"]

rng = random.Random(SEED)


def jd_of(instant):
    hours = instant.hour + instant.minute / 60 + instant.second / 3600
    return swe.julday(instant.year, instant.month, instant.day, hours, swe.GREG_CAL)


def lon(jd, body):
    return swe.calc_ut(jd, body, FLAGS)[0][0]


def asc(jd, lat, lon_):
    return swe.houses_ex(jd, lat, lon_, b"P", FLAGS)[1][0]


def distance(x, step):
    """Degrees from x to the nearest multiple of step."""
    r = x % step
    return min(r, step - r)


def local_kind(local, tz):
    """'gap', 'fold' or 'ok' for a naive local datetime in tz."""
    a = local.replace(tzinfo=tz, fold=0)
    b = local.replace(tzinfo=tz, fold=1)
    if a.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != local:
        return "gap"
    return "fold" if a.utcoffset() != b.utcoffset() else "ok"


def to_utc(local, tz):
    return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def clear_of_boundaries(local, tz, lat, lon_, known=True):
    """Whether every judged quantity is at least MARGIN from its boundaries."""
    jd = jd_of(to_utc(local, tz))
    moon = lon(jd, swe.MOON)
    if distance(lon(jd, swe.SUN), 30) < MARGIN or distance(moon, 10 / 3) < MARGIN:
        return False
    if known:
        return distance(asc(jd, lat, lon_), 30) >= MARGIN
    for edge in (time(0, 0, 0), time(23, 59, 59)):
        jd_edge = jd_of(to_utc(datetime.combine(local.date(), edge), tz))
        if distance(lon(jd_edge, swe.MOON), 30) < MARGIN:
            return False
    return True


def place(zone):
    (la0, la1), (lo0, lo1) = ZONES[zone]
    return round(rng.uniform(la0, la1), 4), round(rng.uniform(lo0, lo1), 4)


def random_local(first, last):
    span = (last - first).total_seconds()
    return first + timedelta(seconds=int(rng.uniform(0, span)))


rows = []


def add(category, local, zone, lat, lon_, known=True):
    rows.append({
        "category": category,
        "date": local.date().isoformat(),
        "time": local.time().isoformat() if known else "",
        "lat": f"{lat:.4f}",
        "lon": f"{lon_:.4f}",
        "tz": zone,
    })


def ordinary(category, zone, first, last):
    tz = zoneinfo.ZoneInfo(zone)
    while True:
        local = random_local(first, last)
        lat, lon_ = place(zone)
        if local_kind(local, tz) == "ok" and clear_of_boundaries(local, tz, lat, lon_):
            add(category, local, zone, lat, lon_)
            return


def near(category, zone, step, body):
    """A moment with `body` ('moon', 'sun' or 'asc') MARGIN..NEAR from a multiple of `step`."""
    tz = zoneinfo.ZoneInfo(zone)
    while True:
        local = random_local(datetime(1940, 1, 1), datetime(2030, 12, 31))
        lat, lon_ = place(zone)
        value = {"moon": lambda jd: lon(jd, swe.MOON), "sun": lambda jd: lon(jd, swe.SUN),
                 "asc": lambda jd: asc(jd, lat, lon_)}[body]
        jd = jd_of(to_utc(local, tz))
        boundary = round(value(jd) / step) * step
        target = boundary + rng.choice((-1, 1)) * rng.uniform(MARGIN + 0.005, NEAR - 0.005)
        for _ in range(3):  # Newton on time, the rate from a 1-minute difference
            rate = ((value(jd + 1 / 1440) - value(jd) + 180) % 360 - 180) * 1440
            jd += ((target - value(jd) + 180) % 360 - 180) / rate
        instant = datetime(2000, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=jd - 2451545.0)
        local = instant.astimezone(tz).replace(tzinfo=None, microsecond=0)
        if not (datetime(1940, 1, 1) <= local <= datetime(2030, 12, 31, 23, 59, 59)):
            continue
        if local_kind(local, tz) != "ok" or not clear_of_boundaries(local, tz, lat, lon_):
            continue
        d = distance(value(jd_of(to_utc(local, tz))), step)
        if MARGIN <= d <= NEAR:
            add(category, local, zone, lat, lon_)
            return


def transitions(zone, year):
    """(instant, old offset, new offset) of each UTC offset change in a year."""
    tz = zoneinfo.ZoneInfo(zone)
    found = []
    t = datetime(year, 1, 1, tzinfo=timezone.utc)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    while t < end:
        nxt = t + timedelta(hours=1)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = t, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append((hi, lo.astimezone(tz).utcoffset(), hi.astimezone(tz).utcoffset()))
        t = nxt
    return found


def dst_rows(zone, years):
    """Around the first gap and the first fold of the first year whose moments are all clear."""
    tz = zoneinfo.ZoneInfo(zone)
    lat, lon_ = place(zone)
    for year in years:
        batch = []
        for instant, old, new in transitions(zone, year):
            wall_old = (instant + old).replace(tzinfo=None)  # the wall clock just before, old offset
            wall_new = (instant + new).replace(tzinfo=None)
            jump = new - old
            if jump > timedelta(0):  # spring forward: wall_old .. wall_new skipped
                batch += [("dst_edge", wall_old - timedelta(seconds=1)), ("dst_gap", wall_old + jump / 2),
                          ("dst_edge", wall_new)]
            else:  # fall back: wall_new .. wall_old happens twice
                batch += [("dst_edge", wall_new - timedelta(seconds=1)), ("dst_edge", wall_new - jump / 2),
                          ("dst_edge", wall_old)]
        kinds = [local_kind(local, tz) for _, local in batch]
        if "gap" not in kinds or "fold" not in kinds:
            continue
        if all(kind == "gap" or clear_of_boundaries(local, tz, lat, lon_) for (_, local), kind in zip(batch, kinds)):
            for category, local in batch:
                add(category, local, zone, lat, lon_)
            return
    sys.exit(f"no clear DST year for {zone}")


def unknown(zone, day, lat, lon_):
    tz = zoneinfo.ZoneInfo(zone)
    add("unknown_time", datetime.combine(day, time(12, 0, 0)), zone, lat, lon_, known=False)
    assert clear_of_boundaries(datetime.combine(day, time(12, 0, 0)), tz, lat, lon_, known=False), (zone, day)


def main():
    start, end = datetime(1940, 1, 1), datetime(2030, 12, 31, 23, 59, 59)
    for _ in range(50):
        ordinary("random", "Asia/Kolkata", start, end)
    for i in range(90):
        ordinary("random", OTHER_ZONES[i % len(OTHER_ZONES)], start, end)
    for _ in range(4):
        ordinary("kolkata_war", "Asia/Kolkata", datetime(1941, 10, 2), datetime(1942, 5, 14))
    for _ in range(10):
        ordinary("kolkata_war", "Asia/Kolkata", datetime(1942, 9, 2), datetime(1945, 10, 13))
    for i in range(46):
        zone = "Asia/Kolkata" if i % 2 == 0 else OTHER_ZONES[i % len(OTHER_ZONES)]
        near("moon_boundary", zone, 30 if i % 3 == 0 else 40 / 3, "moon")
    for i in range(16):
        near("asc_boundary", "Asia/Kolkata" if i % 2 == 0 else OTHER_ZONES[i % len(OTHER_ZONES)], 30, "asc")
    for i in range(8):
        near("sun_boundary", "Asia/Kolkata" if i % 2 == 0 else OTHER_ZONES[i % len(OTHER_ZONES)], 30, "sun")
    for zone, years in [
        ("America/New_York", range(2021, 2031)),
        ("Europe/London", range(1996, 2031)),
        ("Australia/Sydney", range(2008, 2031)),
        ("America/Sao_Paulo", range(2010, 2019)),  # DST began at midnight
        ("Pacific/Chatham", range(2008, 2031)),  # +12:45 / +13:45, at 02:45
        ("Europe/Berlin", range(1980, 2031)),
    ]:
        dst_rows(zone, years)
    # Asia/Kolkata's war time: 00:30 on 1942-09-01 never happened; 23:30 on 1945-10-14 did twice.
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    for category, local in [("dst_gap", datetime(1942, 9, 1, 0, 30)), ("dst_edge", datetime(1942, 8, 31, 23, 59, 59)),
                            ("dst_edge", datetime(1942, 9, 1, 1, 0)), ("dst_edge", datetime(1945, 10, 14, 23, 30)),
                            ("dst_edge", datetime(1945, 10, 15, 0, 0))]:
        kind = local_kind(local, kolkata)
        assert (kind == "gap") == (category == "dst_gap"), (local, kind)
        assert kind == "gap" or clear_of_boundaries(local, kolkata, 22.5726, 88.3639), local
        add(category, local, "Asia/Kolkata", 22.5726, 88.3639)
    unknown("Asia/Kolkata", date(2000, 1, 2), 22.5726, 88.3639)  # the Moon enters Vrischika
    unknown("Asia/Kolkata", date(2000, 1, 1), 28.6139, 77.2090)  # Tula all day
    unknown("Asia/Kolkata", date(1945, 10, 14), 22.5726, 88.3639)  # 23:59:59 happened twice
    unknown("Asia/Kolkata", date(1943, 3, 8), 19.0760, 72.8777)
    unknown("America/Sao_Paulo", date(2018, 11, 4), -23.5505, -46.6333)  # 00:00 never happened
    unknown("America/New_York", date(2021, 3, 14), 40.7128, -74.0060)
    unknown("Europe/London", date(1969, 7, 20), 51.5074, -0.1278)
    unknown("Asia/Kathmandu", date(1986, 1, 1), 27.7172, 85.3240)
    with OUT.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["category", "date", "time", "lat", "lon", "tz"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts = {}
    for row in rows:
        counts[row["category"]] = counts.get(row["category"], 0) + 1
    print(f"{len(rows)} moments to {OUT}: {counts}")


if __name__ == "__main__":
    main()

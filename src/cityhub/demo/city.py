"""A deterministic sample town for `make demo`: Namwon, Jeonbuk State, as NGSI-LD entities.

Place, district (dong) and road names are real; positions are approximate (all inside
``BBOX``) and every reading is synthetic: seeded noise on top of daily cycles in local time
(KST, UTC+9). Entities are NGSI-LD normalized, with compact Smart Data Models attribute names
and no ``@context`` (the core context applies). Quantities carry UN/CEFACT ``unitCode``s;
ratios (relativeHumidity, occupancy, illuminanceLevel) are 0..1 as Smart Data Models require.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

Entity = dict[str, Any]
Coord = tuple[float, float]
Series = dict[str, list[Any]]

KST = timezone(timedelta(hours=9), "KST")
BBOX = (127.375, 35.395, 127.425, 35.435)  # min lon, min lat, max lon, max lat
CITY_HALL: Coord = (127.3903, 35.4163)
PROVIDER = "cityhub demo (synthetic data)"
_M_PER_DEG_LAT = 111_320.0
_M_PER_DEG_LON = _M_PER_DEG_LAT * math.cos(math.radians(35.415))

UNIT_CODES: dict[str, str] = {
    "temperature": "CEL",
    "relativeHumidity": "C62",
    "atmosphericPressure": "A97",
    "windSpeed": "MTS",
    "windDirection": "DD",
    "precipitation": "MMT",
    "pm10": "GQ",
    "pm25": "GQ",
    "no2": "GQ",
    "o3": "GQ",
    "co": "GP",
    "airQualityIndex": "C62",
    "intensity": "C62",
    "averageVehicleSpeed": "KMH",
    "occupancy": "C62",
    "availableSpotNumber": "C62",
    "totalSpotNumber": "C62",
    "illuminanceLevel": "C62",
    "tripsPerHour": "C62",
    "lanternHeight": "MTR",
    "maximumAllowedSpeed": "KMH",
    "totalLaneNumber": "C62",
    "length": "MTR",
}
"""unitCode per numeric attribute, so every quantity in the town states its unit."""

OBSERVED_TYPES = (
    "AirQualityObserved",
    "WeatherObserved",
    "TrafficFlowObserved",
    "OffStreetParking",
)
"""Types whose readings carry a `dateObserved`; the changing numbers of each are below."""
AIR_ATTRS = (
    "pm10",
    "pm25",
    "no2",
    "o3",
    "co",
    "airQualityIndex",
    "temperature",
    "relativeHumidity",
)
WEATHER_ATTRS = (
    "temperature",
    "relativeHumidity",
    "atmosphericPressure",
    "windSpeed",
    "windDirection",
    "precipitation",
)
TRAFFIC_ATTRS = ("intensity", "averageVehicleSpeed", "occupancy")
PARKING_ATTRS = ("availableSpotNumber", "occupancy")
CHANGE_ATTRS: dict[str, tuple[str, ...]] = {
    "Streetlight": ("status", "powerState"),
    "GtfsStop": ("wheelChairAccessible",),
    "GtfsRoute": ("tripsPerHour",),
}
"""Attributes recorded when they change, not at every step: a lamp failing or switching, a
stop's wheelchair access lost for roadworks, a route's buses per hour following the timetable."""
HISTORY_ATTRS: dict[str, tuple[str, ...]] = {
    "AirQualityObserved": AIR_ATTRS,
    "WeatherObserved": WEATHER_ATTRS,
    "TrafficFlowObserved": TRAFFIC_ATTRS,
    "OffStreetParking": PARKING_ATTRS,
    "Streetlight": ("illuminanceLevel", *CHANGE_ATTRS["Streetlight"]),
    "GtfsStop": CHANGE_ATTRS["GtfsStop"],
    "GtfsRoute": CHANGE_ATTRS["GtfsRoute"],
}
"""Every type with a history and the attributes it keeps (the others at every step)."""


@dataclass(frozen=True)
class SampleCity:
    """The demo town: current entities, their past instances and queries that hit them."""

    entities: list[Entity]
    history: list[Entity]
    example_queries: list[tuple[str, str]]
    start: datetime  # the newest instant (UTC): build_city(start=...) builds this town again


@dataclass(frozen=True)
class _Place:
    """A named spot in Korean and English, so names read well to locals and newcomers."""

    ko: str
    en: str
    lon: float
    lat: float

    @property
    def at(self) -> Coord:
        """Lon/lat pair, GeoJSON order."""
        return (self.lon, self.lat)


@dataclass(frozen=True)
class _Road:
    """A named road drawn as a polyline; its class sets lanes, speeds and traffic volume."""

    ko: str
    en: str
    road_class: str
    lanes: int
    speed_limit: int
    capacity: int  # vehicles per hour per direction at the evening peak
    points: tuple[Coord, ...]


@dataclass(frozen=True)
class _Segment:
    """One stretch of a road between two waypoints; sensors and lamps hang off it."""

    id: str
    road: _Road
    coords: tuple[Coord, ...]


LANDMARKS: tuple[_Place, ...] = (
    _Place("남원시청", "Namwon City Hall", 127.3903, 35.4163),
    _Place("남원역", "Namwon Station", 127.3815, 35.4135),
    _Place("광한루원", "Gwanghallu Garden", 127.3832, 35.4042),
    _Place("남원공용버스터미널", "Namwon Bus Terminal", 127.3880, 35.4112),
    _Place("남원공설시장", "Namwon Public Market", 127.3872, 35.4088),
    _Place("남원의료원", "Namwon Medical Center", 127.4020, 35.4252),
    _Place("춘향테마파크", "Chunhyang Theme Park", 127.3880, 35.4008),
    _Place("요천생태공원", "Yocheon Eco Park", 127.3965, 35.4052),
    _Place("남원경찰서", "Namwon Police Station", 127.3952, 35.4192),
    _Place("남원고등학교", "Namwon High School", 127.3992, 35.4222),
    _Place("남원시보건소", "Namwon Public Health Center", 127.3935, 35.4207),
    _Place("국립민속국악원", "National Gugak Center Namwon", 127.3905, 35.4002),
    _Place("남원예촌", "Namwon Yechon", 127.3848, 35.4056),
    _Place("남원향교", "Namwon Hyanggyo", 127.3858, 35.4232),
)

DONGS: tuple[_Place, ...] = (
    _Place("도통동", "Dotong-dong", 127.3975, 35.4245),
    _Place("향교동", "Hyanggyo-dong", 127.3850, 35.4230),
    _Place("동충동", "Dongchung-dong", 127.3935, 35.4120),
    _Place("죽항동", "Jukhang-dong", 127.3860, 35.4100),
    _Place("금동", "Geum-dong", 127.3840, 35.4045),
    _Place("왕정동", "Wangjeong-dong", 127.4005, 35.4075),
    _Place("노암동", "Noam-dong", 127.4100, 35.4045),
    _Place("하정동", "Hajeong-dong", 127.3950, 35.4170),
    _Place("쌍교동", "Ssanggyo-dong", 127.3890, 35.4150),
    _Place("조산동", "Josan-dong", 127.4080, 35.4200),
    _Place("신촌동", "Sinchon-dong", 127.4100, 35.4275),
)

ROADS: tuple[_Road, ...] = (
    _Road("춘향로", "Chunhyang-ro", "primary", 4, 50, 620, (
        (127.380, 35.4120), (127.388, 35.4135), (127.396, 35.4150),
        (127.404, 35.4160), (127.414, 35.4170))),
    _Road("용성로", "Yongseong-ro", "primary", 4, 50, 560, (
        (127.391, 35.4280), (127.3905, 35.4220), (127.3903, 35.4170),
        (127.3900, 35.4100), (127.389, 35.4030))),
    _Road("요천로", "Yocheon-ro", "secondary", 2, 50, 380, (
        (127.381, 35.4030), (127.389, 35.4045), (127.397, 35.4060),
        (127.406, 35.4080), (127.416, 35.4100))),
    _Road("동림로", "Dongnim-ro", "secondary", 2, 50, 340, (
        (127.396, 35.4290), (127.397, 35.4230), (127.398, 35.4180),
        (127.399, 35.4120), (127.400, 35.4060))),
    _Road("시청로", "Sicheong-ro", "tertiary", 2, 30, 180, (
        (127.383, 35.4200), (127.387, 35.4180), (127.3903, 35.4163),
        (127.394, 35.4150), (127.398, 35.4140))),
    _Road("광한북로", "Gwanghanbuk-ro", "tertiary", 2, 30, 200, (
        (127.381, 35.4075), (127.386, 35.4080), (127.391, 35.4090),
        (127.396, 35.4095), (127.402, 35.4100))),
    _Road("향단로", "Hyangdan-ro", "secondary", 2, 50, 300, (
        (127.404, 35.4280), (127.406, 35.4230), (127.407, 35.4180),
        (127.408, 35.4130), (127.409, 35.4080))),
    _Road("의총로", "Uichong-ro", "secondary", 2, 50, 320, (
        (127.383, 35.4270), (127.389, 35.4255), (127.395, 35.4250),
        (127.403, 35.4245), (127.412, 35.4240))),
)  # fmt: skip

# (ko, en, index of the landmark it serves, kind, total spots)
_PARKING_SITES: tuple[tuple[str, str, int, str, int], ...] = (
    ("남원시청 공영주차장", "Namwon City Hall Public Parking", 0, "civic", 180),
    ("남원역 주차장", "Namwon Station Parking", 1, "station", 160),
    ("광한루원 제1주차장", "Gwanghallu Garden Parking 1", 2, "tourist", 220),
    ("광한루원 제2주차장", "Gwanghallu Garden Parking 2", 2, "tourist", 140),
    ("공용버스터미널 주차장", "Bus Terminal Parking", 3, "station", 60),
    ("공설시장 공영주차장", "Public Market Parking", 4, "market", 120),
    ("남원의료원 주차장", "Namwon Medical Center Parking", 5, "hospital", 210),
    ("춘향테마파크 주차장", "Chunhyang Theme Park Parking", 6, "tourist", 300),
    ("요천생태공원 주차장", "Yocheon Eco Park Parking", 7, "tourist", 80),
    ("남원경찰서 민원인 주차장", "Police Station Visitor Parking", 8, "civic", 40),
    ("남원시보건소 주차장", "Public Health Center Parking", 10, "civic", 50),
    ("국립민속국악원 주차장", "Gugak Center Parking", 11, "tourist", 90),
    ("남원예촌 주차장", "Namwon Yechon Parking", 12, "tourist", 70),
)

# kind -> (level outside opening hours, swing during them, opens, closes) in KST hours
_PARKING_PROFILES: dict[str, tuple[float, float, float, float]] = {
    "civic": (0.10, 0.75, 8.5, 18.5),
    "market": (0.15, 0.65, 8.0, 18.0),
    "tourist": (0.04, 0.70, 9.5, 18.5),
    "station": (0.25, 0.55, 6.5, 21.0),
    "hospital": (0.30, 0.60, 8.5, 17.5),
    "residential": (0.85, -0.40, 8.5, 18.5),
    "commercial": (0.12, 0.70, 9.5, 21.0),
}

_STOP_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("입구", "Entrance"),
    ("사거리", "Crossroads"),
    ("삼거리", "Junction"),
    ("행정복지센터", "Community Center"),
    ("치안센터", "Police Box"),
    ("농협", "Nonghyup"),
    ("우체국", "Post Office"),
    ("아파트", "Apartments"),
    ("경로당", "Senior Center"),
    ("교회", "Church"),
)

_ROUTE_COLORS = ("0068B7", "33A23D", "E60012", "F39800", "8E44AD", "00A0B0", "D35400", "2C3E50")

# Namwon monthly mean temperature (°C), January first, for the season of `start`
_MONTHLY_MEAN_C = (-0.5, 1.5, 6.5, 12.5, 18.0, 22.0, 25.5, 26.0, 21.0, 14.5, 7.5, 1.5)


# ----------------------------------------------------------------------------- attributes


def urn(entity_type: str, n: int) -> str:
    """Build ids like urn:ngsi-ld:Streetlight:namwon-007 so they sort and read well."""
    return f"urn:ngsi-ld:{entity_type}:namwon-{n:03d}"


@functools.lru_cache(maxsize=1024)
def iso(t: datetime) -> str:
    """Format as ISO 8601 UTC with Z, the form NGSI-LD brokers echo back (cached: the town
    stamps its ~15,000 instances with a few dozen instants)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prop(value: Any, **members: Any) -> dict[str, Any]:
    """A plain NGSI-LD Property."""
    return {"type": "Property", "value": value, **members}


def _qty(name: str, value: float, at: datetime | None = None, **members: Any) -> dict[str, Any]:
    """A numeric Property with its unitCode (and observedAt), so units never go missing."""
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if at is not None:
        attr["observedAt"] = iso(at)
    attr["unitCode"] = UNIT_CODES[name]
    attr.update(members)
    return attr


def _observed(value: Any, at: datetime) -> dict[str, Any]:
    """A non-numeric Property stamped with the time it was observed."""
    return {"type": "Property", "value": value, "observedAt": iso(at)}


def _rel(target: str) -> dict[str, Any]:
    """An NGSI-LD Relationship to another entity."""
    return {"type": "Relationship", "object": target}


def _point(c: Coord) -> dict[str, Any]:
    """A GeoProperty Point (lon, lat rounded to ~10 cm)."""
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": _rounded(c)}}


def _line(cs: Sequence[Coord]) -> dict[str, Any]:
    """A GeoProperty LineString, for roads and bus routes."""
    coords = [_rounded(c) for c in cs]
    return {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": coords}}


def _lang(ko: str, en: str) -> dict[str, Any]:
    """A LanguageProperty, so names come back in Korean or English with `lang=`."""
    return {"type": "LanguageProperty", "languageMap": {"ko": ko, "en": en}}


def _list(values: Sequence[Any]) -> dict[str, Any]:
    """A ListProperty, for attributes whose order carries meaning."""
    return {"type": "ListProperty", "valueList": list(values)}


def _datetime(t: datetime) -> dict[str, Any]:
    """A Property holding a typed DateTime, as NGSI-LD wants for temporal values."""
    return _prop({"@type": "DateTime", "@value": iso(t)})


def _address(street: str) -> dict[str, Any]:
    """A PostalAddress Property inside Namwon."""
    return _prop(
        {
            "addressCountry": "KR",
            "addressRegion": "전북특별자치도",
            "addressLocality": "남원시",
            "streetAddress": street,
        }
    )


def _base(entity_type: str, n: int, location: dict[str, Any]) -> Entity:
    """The id/type/location skeleton every entity starts from."""
    return {
        "id": urn(entity_type, n),
        "type": entity_type,
        "location": location,
        "dataProvider": _prop(PROVIDER),
    }


# ------------------------------------------------------------------------------- geometry


def _rounded(c: Coord) -> list[float]:
    """GeoJSON position rounded to 6 decimals."""
    return [round(c[0], 6), round(c[1], 6)]


def _offset(c: Coord, east_m: float, north_m: float) -> Coord:
    """Move a point by metres, clamped to the town box."""
    lon = c[0] + east_m / _M_PER_DEG_LON
    lat = c[1] + north_m / _M_PER_DEG_LAT
    return (min(max(lon, BBOX[0]), BBOX[2]), min(max(lat, BBOX[1]), BBOX[3]))


def _dist_m(a: Coord, b: Coord) -> float:
    """Equirectangular distance in metres; plenty for a 4 km town."""
    return math.hypot((a[0] - b[0]) * _M_PER_DEG_LON, (a[1] - b[1]) * _M_PER_DEG_LAT)


def _lerp(a: Coord, b: Coord, f: float) -> Coord:
    """The point a fraction f of the way from a to b."""
    return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)


def _along(points: Sequence[Coord], f: float) -> Coord:
    """The point a fraction f along a polyline, by length."""
    legs = [_dist_m(a, b) for a, b in itertools.pairwise(points)]
    goal = f * sum(legs)
    for (a, b), leg in zip(itertools.pairwise(points), legs, strict=True):
        if goal <= leg or leg == 0:
            return _lerp(a, b, goal / leg if leg else 0.0)
        goal -= leg
    return points[-1]


def _length_m(points: Sequence[Coord]) -> float:
    """Polyline length in metres."""
    return sum(_dist_m(a, b) for a, b in itertools.pairwise(points))


def _nearest(c: Coord, places: Sequence[_Place]) -> _Place:
    """The named place closest to c, to give things a district."""
    return min(places, key=lambda p: _dist_m(c, p.at))


def _jitter(rng: random.Random, c: Coord, metres: float) -> Coord:
    """Scatter a point by up to `metres` so things do not sit on exact grid points."""
    return _offset(c, rng.uniform(-metres, metres), rng.uniform(-metres, metres))


# --------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class _Clock:
    """The observation instants, oldest first, and what local time it is at each."""

    times: tuple[datetime, ...]
    step: timedelta

    @property
    def n(self) -> int:
        """Number of instants."""
        return len(self.times)

    @property
    def last(self) -> datetime:
        """The newest instant: the time of every current value."""
        return self.times[-1]

    @property
    def step_h(self) -> float:
        """Step length in hours, to turn rates into per-step amounts."""
        return self.step.total_seconds() / 3600

    def hour(self, i: int) -> float:
        """Local (KST) hour of day as a fraction, e.g. 8.5 for 08:30."""
        t = self.times[i].astimezone(KST)
        return t.hour + t.minute / 60 + t.second / 3600

    def local(self, i: int) -> datetime:
        """The i-th instant in KST."""
        return self.times[i].astimezone(KST)

    def weekend(self, i: int) -> bool:
        """Saturday or Sunday in Korea, when commuting stops and tourists come."""
        return self.local(i).weekday() >= 5


def _make_clock(start: datetime | None, hours: int, step_minutes: int) -> _Clock:
    """Instants ending at `start` (default: this hour, UTC), one step apart."""
    if hours <= 0 or step_minutes <= 0 or (hours * 60) % step_minutes:
        raise ValueError("hours and step_minutes must be positive and divide evenly")
    if start is None:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC).replace(microsecond=0)
    step = timedelta(minutes=step_minutes)
    n = hours * 60 // step_minutes
    return _Clock(tuple(start - step * (n - 1 - i) for i in range(n)), step)


def _sigmoid(x: float) -> float:
    """Logistic curve, for soft opening and closing edges."""
    return 1 / (1 + math.exp(-x))


def _window(h: float, opens: float, closes: float, soft: float = 0.6) -> float:
    """~1 between opens and closes (KST hours), ~0 outside, with soft edges."""
    return _sigmoid((h - opens) / soft) * _sigmoid((closes - h) / soft)


def _peak(h: float, centre: float, width: float) -> float:
    """A Gaussian bump around a local hour, wrapping at midnight."""
    d = (h - centre + 12) % 24 - 12
    return math.exp(-0.5 * (d / width) ** 2)


def _diurnal(h: float) -> float:
    """-1 at 05:00 and +1 at 15:00 KST: the shape of a day's temperature."""
    h %= 24
    if 5 <= h <= 15:
        return -math.cos(math.pi * (h - 5) / 10)
    return math.cos(math.pi * ((h - 15) % 24) / 14)


def _sun(clock: _Clock, i: int) -> float:
    """Sun height proxy, 0 at night to 1 at solar noon, for Namwon's latitude and season."""
    doy = clock.local(i).timetuple().tm_yday
    day_len = 12 + 2.4 * math.sin(2 * math.pi * (doy - 80) / 365.25)
    rise = 12.5 - day_len / 2
    f = (clock.hour(i) - rise) / day_len
    return math.sin(math.pi * f) if 0 < f < 1 else 0.0


def _traffic_demand(h: float, weekend: bool) -> float:
    """Share of the evening-peak volume at local hour h: commuter peaks at 08 and 18 KST."""
    day = _window(h, 6.5, 21.5, 0.9)
    if weekend:
        return 0.05 + 0.55 * day + 0.2 * _peak(h, 14.0, 2.5)
    return 0.04 + 0.42 * day + 0.48 * _peak(h, 8.0, 0.9) + 0.56 * _peak(h, 18.0, 1.1)


def _ar1(rng: random.Random, n: int, sigma: float, phi: float = 0.8) -> list[float]:
    """Autocorrelated noise, so consecutive readings drift rather than jump."""
    x = rng.gauss(0, sigma)
    out: list[float] = []
    for _ in range(n):
        out.append(x)
        x = phi * x + rng.gauss(0, sigma * math.sqrt(1 - phi * phi))
    return out


def _clip(x: float, lo: float, hi: float) -> float:
    """Keep a value inside physical limits."""
    return min(max(x, lo), hi)


# ------------------------------------------------------------------------------ weather


@dataclass(frozen=True)
class _Weather:
    """Town-wide weather over the window; stations add their own offsets and noise."""

    temperature: list[float]
    humidity: list[float]
    pressure: list[float]
    wind_speed: list[float]
    wind_dir: list[float]
    rain: list[float]  # mm per step
    sun: list[float]
    pm25: list[float]  # background µg/m³
    cloudy: bool


def _rain(rng: random.Random, clock: _Clock) -> list[float]:
    """Maybe one rain spell of a few hours, in mm per step."""
    rain = [0.0] * clock.n
    if rng.random() < 0.35:
        per_hour = 60 / (clock.step.total_seconds() / 60)
        length = max(1, round(rng.randint(2, 6) * per_hour))
        first = rng.randrange(clock.n)
        rate = rng.uniform(0.5, 4.0)
        for i in range(first, min(clock.n, first + length)):
            rain[i] = round(rate * clock.step_h * rng.uniform(0.3, 1.3), 1)
    return rain


def _town_weather(rng: random.Random, clock: _Clock) -> _Weather:
    """Daily cycles for the season of the window, plus slow seeded weather systems."""
    month = clock.local(clock.n - 1).month
    mean = _MONTHLY_MEAN_C[month - 1]
    summer = math.cos(2 * math.pi * (month - 7.5) / 12)  # +1 midsummer, -1 midwinter
    prevailing = 315.0 if summer < -0.3 else 225.0 if summer > 0.5 else 270.0
    rain = _rain(rng, clock)
    wet = [min(1.0, r / clock.step_h) for r in rain]
    day = [_diurnal(clock.hour(i)) for i in range(clock.n)]
    t_noise, p_noise = _ar1(rng, clock.n, 1.0, 0.95), _ar1(rng, clock.n, 2.5, 0.98)
    w_noise, d_noise = _ar1(rng, clock.n, 0.5, 0.7), _ar1(rng, clock.n, 25, 0.85)
    pm_noise = _ar1(rng, clock.n, 0.25, 0.95)
    base_pm = 21 - 9 * summer
    steps = list(zip(day, wet, t_noise, p_noise, w_noise, pm_noise, strict=True))
    return _Weather(
        temperature=[mean + 5 * d + t - 2.5 * r for d, r, t, _, _, _ in steps],
        humidity=[
            _clip(0.66 + 0.08 * summer - 0.17 * d + 0.3 * r, 0.2, 0.98) for d, r, *_ in steps
        ],
        pressure=[_clip(1015 - 6 * summer + p - 4 * r, 985, 1040) for _, r, _, p, _, _ in steps],
        wind_speed=[max(0.0, 1.3 + 1.4 * max(0.0, d) + 1.5 * r + x) for d, r, _, _, x, _ in steps],
        wind_dir=[(prevailing + x) % 360 for x in d_noise],
        rain=rain,
        sun=[_sun(clock, i) for i in range(clock.n)],
        pm25=[base_pm * math.exp(x) * (0.6 if r else 1.0) for _, r, _, _, _, x in steps],
        cloudy=rng.random() < 0.4,
    )


def _weather_type(w: _Weather, i: int, step_h: float) -> str:
    """A Smart Data Models weatherType word for the current conditions."""
    rate = w.rain[i] / step_h
    if rate >= 3:
        return "heavyRain"
    if rate > 0:
        return "lightRain"
    if w.humidity[i] > 0.93:
        return "mist"
    if w.cloudy:
        return "cloudy"
    return "sunnyDay" if w.sun[i] > 0 else "clearNight"


# ------------------------------------------------------------------------------ history


def _instance(name: str, value: Any, t: datetime) -> dict[str, Any]:
    """One temporal instance, with its unitCode when the attribute is a quantity."""
    inst: dict[str, Any] = {"type": "Property", "value": value, "observedAt": iso(t)}
    if name in UNIT_CODES:
        inst["unitCode"] = UNIT_CODES[name]
    return inst


def _history(entity: Entity, series: Series, clock: _Clock) -> Entity:
    """Temporal representation (normalized) of the series, oldest instance first."""
    item: Entity = {"id": entity["id"], "type": entity["type"]}
    for name, values in series.items():
        item[name] = [_instance(name, v, t) for t, v in zip(clock.times, values, strict=True)]
    return item


Changes = dict[str, list[tuple[datetime, Any]]]  # attribute -> (when, new value), oldest first


def _changes(entity: Entity, changes: Changes) -> Entity:
    """Temporal representation of attributes recorded only when they change; each current
    value becomes the last change, so entity and history agree."""
    item: Entity = {"id": entity["id"], "type": entity["type"]}
    for name, points in changes.items():
        item[name] = [_instance(name, v, t) for t, v in points]
        entity[name] = dict(item[name][-1])
    return item


def _changed(values: Sequence[Any], clock: _Clock) -> list[tuple[datetime, Any]]:
    """The first value and each one that differs from the one before, with its instant."""
    return [(clock.times[i], v) for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _set_current(
    entity: Entity, series: Series, clock: _Clock, subs: dict[str, dict[str, Any]] | None = None
) -> None:
    """Make each current value the last point of its series, so entity and history agree."""
    entity["dateObserved"] = _datetime(clock.last)
    for name, values in series.items():
        entity[name] = _qty(name, values[-1], clock.last, **(subs or {}).get(name, {}))


def _accuracy(celsius: float) -> dict[str, Any]:
    """`accuracy` sub-Property of a thermometer reading."""
    return {"accuracy": {"type": "Property", "value": celsius, "unitCode": "CEL"}}


# ------------------------------------------------------------------------ the road net


def _segments(rng: random.Random) -> list[_Segment]:
    """Cut every road at its waypoints, with a slight bend in each stretch."""
    out: list[_Segment] = []
    for road in ROADS:
        for a, b in itertools.pairwise(road.points):
            bend = _jitter(rng, _lerp(a, b, 0.5), 25)
            out.append(_Segment(urn("RoadSegment", len(out) + 1), road, (a, bend, b)))
    return out


def _road_entities(segments: list[_Segment]) -> list[Entity]:
    """Road and RoadSegment entities: the skeleton traffic sensors and lamps refer to."""
    out: list[Entity] = []
    for n, road in enumerate(ROADS, 1):
        e = _base("Road", n, _line(road.points))
        e["name"] = _lang(road.ko, road.en)
        e["roadClass"] = _prop(road.road_class)
        e["length"] = _qty("length", round(_length_m(road.points)))
        e["responsible"] = _prop("남원시")
        out.append(e)
    for n, seg in enumerate(segments, 1):
        half = seg.road.lanes // 2
        e = _base("RoadSegment", n, _line(seg.coords))
        e["name"] = _prop(f"{seg.road.ko} {(n - 1) % 4 + 1}구간")
        e["refRoad"] = _rel(urn("Road", ROADS.index(seg.road) + 1))
        e["startPoint"] = _point(seg.coords[0])
        e["endPoint"] = _point(seg.coords[-1])
        e["totalLaneNumber"] = _qty("totalLaneNumber", seg.road.lanes)
        e["maximumAllowedSpeed"] = _qty("maximumAllowedSpeed", seg.road.speed_limit)
        e["length"] = _qty("length", round(_length_m(seg.coords)))
        e["laneUsage"] = _list(["forward"] * half + ["backward"] * half)
        out.append(e)
    return out


def _lane_series(
    rng: random.Random, seg: _Segment, forward: bool, clock: _Clock
) -> tuple[Series, list[bool]]:
    """Counts, speed and occupancy for one direction: inbound heavier at 08, outbound at 18."""
    road, sign = seg.road, 1 if forward else -1
    free = road.speed_limit * rng.uniform(0.85, 1.0)
    share = rng.uniform(0.55, 1.05)
    noise = _ar1(rng, clock.n, 0.08, 0.6)
    series: Series = {k: [] for k in TRAFFIC_ATTRS}
    congested: list[bool] = []
    for i in range(clock.n):
        h = clock.hour(i)
        tilt = 1 + 0.25 * sign * (_peak(h, 8, 1.5) - _peak(h, 18, 1.5))
        load = _traffic_demand(h, clock.weekend(i)) * share * tilt * math.exp(noise[i])
        speed = _clip(free * (1 - 0.55 * min(load, 1.2) ** 3) + rng.gauss(0, 1.5), 5, 90)
        series["intensity"].append(round(road.capacity * load * clock.step_h))
        series["averageVehicleSpeed"].append(round(speed, 1))
        series["occupancy"].append(
            round(_clip(0.02 + 0.3 * load + 0.4 * max(0, load - 0.85), 0, 0.95), 2)
        )
        congested.append(speed < 0.6 * free)
    return series, congested


def _traffic(
    rng: random.Random, segments: list[_Segment], clock: _Clock
) -> tuple[list[Entity], list[Entity]]:
    """Two TrafficFlowObserved lanes (one per direction) on every road segment."""
    entities: list[Entity] = []
    history: list[Entity] = []
    for seg in segments:
        for lane in (1, 2):
            e = _base("TrafficFlowObserved", len(entities) + 1, _line(seg.coords))
            e["name"] = _prop(f"{seg.road.ko} 교통량 검지기 {lane}차로")
            e["laneId"] = _prop(lane)
            e["laneDirection"] = _prop("forward" if lane == 1 else "backward")
            e["refRoadSegment"] = _rel(seg.id)
            series, congested = _lane_series(rng, seg, lane == 1, clock)
            _set_current(e, series, clock)
            e["congested"] = _observed(congested[-1], clock.last)
            entities.append(e)
            history.append(_history(e, series, clock))
    return entities, history


# ----------------------------------------------------------------------- air and weather


def _aqi(pm25: float, pm10: float) -> tuple[int, str]:
    """Korean CAI-style index and grade from particulates (good/moderate/unhealthy/...)."""
    index = round(max(_sub_index(pm25, (15, 35, 75, 500)), _sub_index(pm10, (30, 80, 150, 600))))
    grades = ((50, "good"), (100, "moderate"), (250, "unhealthy"))
    return index, next((g for top, g in grades if index <= top), "veryUnhealthy")


def _sub_index(c: float, cuts: tuple[float, float, float, float]) -> float:
    """Piecewise-linear index 0-500 for one pollutant, from its grade boundaries."""
    lo_c, lo_i = 0.0, 0.0
    for hi_c, hi_i in zip(cuts, (50.0, 100.0, 250.0, 500.0), strict=True):
        if c <= hi_c:
            return lo_i + (hi_i - lo_i) * (c - lo_c) / (hi_c - lo_c)
        lo_c, lo_i = hi_c, hi_i
    return 500.0


def _air_series(rng: random.Random, w: _Weather, clock: _Clock, roadside: bool) -> Series:
    """Pollutants for one sensor: NO2/CO follow traffic, O3 follows the sun, PM the weather."""
    local, ratio, road = rng.uniform(0.85, 1.2), rng.uniform(1.5, 2.0), 1.0 if roadside else 0.35
    warm, n1, n2 = rng.uniform(-0.3, 1.0), _ar1(rng, clock.n, 0.1), _ar1(rng, clock.n, 0.12)
    s: Series = {k: [] for k in AIR_ATTRS}
    for i in range(clock.n):
        h = clock.hour(i)
        traffic = _traffic_demand(h, clock.weekend(i))
        night = 1 + 0.15 * _window(h, 21, 31, 1.5) + 0.15 * _window(h, -3, 7, 1.5)
        pm25 = max(2.0, w.pm25[i] * local * night * (1 + 0.15 * traffic * road) * math.exp(n1[i]))
        no2 = max(3.0, (8 + 45 * traffic * road * night) * (1 - 0.2 * w.sun[i]) * math.exp(n2[i]))
        o3 = max(2.0, 25 + 85 * w.sun[i] * (0.9 if w.cloudy else 1.3) - 0.4 * no2 + rng.gauss(0, 3))
        s["pm25"].append(round(pm25))
        s["pm10"].append(round(pm25 * ratio + rng.uniform(0, 4)))
        s["no2"].append(round(no2, 1))
        s["o3"].append(round(o3, 1))
        s["co"].append(round(0.25 + 0.45 * traffic * road * night + abs(rng.gauss(0, 0.04)), 2))
        s["airQualityIndex"].append(_aqi(s["pm25"][-1], s["pm10"][-1])[0])
        s["temperature"].append(round(w.temperature[i] + warm + rng.gauss(0, 0.2), 1))
        s["relativeHumidity"].append(round(_clip(w.humidity[i] + rng.gauss(0, 0.02), 0.05, 1.0), 2))
    return s


def _air_sites(rng: random.Random, segments: list[_Segment]) -> list[tuple[str, str, Coord, bool]]:
    """One AirKorea station, sensors at landmarks, and roadside sensors: 20 sites."""
    jukhang = DONGS[3]
    sites = [
        ("남원 죽항동 도시대기측정소", "Namwon Jukhang-dong station (AirKorea)", jukhang.at, False)
    ]
    for p in LANDMARKS[:9]:
        sites.append((f"{p.ko} 대기질 센서", f"{p.en} air sensor", _jitter(rng, p.at, 40), False))
    for k, seg in enumerate(rng.sample(segments, 10), 1):
        at = _offset(_along(seg.coords, rng.uniform(0.2, 0.8)), 0, 8)
        sites.append(
            (f"{seg.road.ko} 도로변 센서 {k}", f"{seg.road.en} roadside sensor {k}", at, True)
        )
    return sites


def _air(
    rng: random.Random, w: _Weather, segments: list[_Segment], clock: _Clock
) -> tuple[list[Entity], list[Entity]]:
    """AirQualityObserved entities and their history."""
    entities: list[Entity] = []
    history: list[Entity] = []
    for n, (ko, en, at, roadside) in enumerate(_air_sites(rng, segments), 1):
        e = _base("AirQualityObserved", n, _point(at))
        e["name"], e["alternateName"] = _prop(ko), _prop(en)
        e["typeofLocation"] = _prop("outdoor")
        series = _air_series(rng, w, clock, roadside)
        _set_current(e, series, clock, {"temperature": _accuracy(0.2 if n == 1 else 0.5)})
        level = _aqi(series["pm25"][-1], series["pm10"][-1])[1]
        e["airQualityLevel"] = _observed(level, clock.last)
        entities.append(e)
        history.append(_history(e, series, clock))
    return entities, history


def _weather_series(rng: random.Random, w: _Weather, clock: _Clock) -> Series:
    """One station's readings: the town's weather plus its own microclimate and noise."""
    warm, wet, gust = rng.uniform(-0.6, 0.8), rng.uniform(-0.04, 0.04), rng.uniform(0.7, 1.2)
    s: Series = {k: [] for k in WEATHER_ATTRS}
    for i in range(clock.n):
        s["temperature"].append(round(w.temperature[i] + warm + rng.gauss(0, 0.15), 1))
        s["relativeHumidity"].append(
            round(_clip(w.humidity[i] + wet + rng.gauss(0, 0.015), 0.05, 1.0), 2)
        )
        s["atmosphericPressure"].append(round(w.pressure[i] + rng.gauss(0, 0.3), 1))
        s["windSpeed"].append(round(max(0.0, w.wind_speed[i] * gust + rng.gauss(0, 0.3)), 1))
        s["windDirection"].append(round((w.wind_dir[i] + rng.gauss(0, 12)) % 360))
        s["precipitation"].append(round(max(0.0, w.rain[i] * rng.uniform(0.8, 1.2)), 1))
    return s


def _weather(rng: random.Random, w: _Weather, clock: _Clock) -> tuple[list[Entity], list[Entity]]:
    """Six WeatherObserved stations: one KMA-grade AWS and five IoT stations."""
    sites = [("남원 자동기상관측소(AWS)", "Namwon AWS (KMA)", _offset(LANDMARKS[10].at, 60, 40))]
    for p in (LANDMARKS[2], LANDMARKS[1], LANDMARKS[5], LANDMARKS[6], DONGS[6]):
        sites.append((f"{p.ko} 기상 센서", f"{p.en} weather sensor", _jitter(rng, p.at, 60)))
    entities: list[Entity] = []
    history: list[Entity] = []
    for n, (ko, en, at) in enumerate(sites, 1):
        e = _base("WeatherObserved", n, _point(at))
        e["name"], e["alternateName"] = _prop(ko), _prop(en)
        series = _weather_series(rng, w, clock)
        _set_current(e, series, clock, {"temperature": _accuracy(0.1 if n == 1 else 0.5)})
        e["weatherType"] = _observed(_weather_type(w, clock.n - 1, clock.step_h), clock.last)
        entities.append(e)
        history.append(_history(e, series, clock))
    return entities, history


# -------------------------------------------------------------------------------- parking


def _parking_sites(rng: random.Random) -> list[tuple[str, str, Coord, str, int]]:
    """Landmark car parks plus public lots in the districts: 25 sites."""
    sites = [
        (ko, en, _jitter(rng, LANDMARKS[i].at, 70), kind, total)
        for ko, en, i, kind, total in _PARKING_SITES
    ]
    for dong in rng.sample(DONGS, 11):
        kind = rng.choice(("residential", "commercial", "commercial"))
        total = rng.choice((24, 30, 36, 42, 48, 60, 75))
        at = _jitter(rng, dong.at, 150)
        sites.append((f"{dong.ko} 공영주차장", f"{dong.en} Public Parking", at, kind, total))
    riverside = _offset(ROADS[2].points[2], 0, -40)
    sites.append(("요천변 공영주차장", "Yocheon Riverside Parking", riverside, "residential", 90))
    return sites


def _occupancy(kind: str, clock: _Clock, i: int, market_day: bool) -> float:
    """Expected share of spots taken at instant i for a car park of this kind."""
    level, swing, opens, closes = _PARKING_PROFILES[kind]
    if clock.weekend(i):
        swing *= {"civic": 0.25, "tourist": 1.3, "hospital": 0.4}.get(kind, 1.0)
    if kind == "market" and market_day:
        swing *= 1.35
    return level + swing * _window(clock.hour(i), opens, closes, 0.7)


def _parking_series(rng: random.Random, kind: str, total: int, clock: _Clock) -> Series:
    """Free spots and occupancy: lots fill in the day, residential ones at night."""
    noise = _ar1(rng, clock.n, 0.06, 0.7)
    s: Series = {k: [] for k in PARKING_ATTRS}
    for i in range(clock.n):
        market_day = clock.local(i).day % 5 == 4  # Namwon market opens on days ending in 4 and 9
        taken = round(total * _clip(_occupancy(kind, clock, i, market_day) + noise[i], 0.0, 1.0))
        s["availableSpotNumber"].append(total - taken)
        s["occupancy"].append(round(taken / total, 3))
    return s


def _parking(rng: random.Random, clock: _Clock) -> tuple[list[Entity], list[Entity]]:
    """OffStreetParking entities and their history."""
    entities: list[Entity] = []
    history: list[Entity] = []
    for n, (ko, en, at, kind, total) in enumerate(_parking_sites(rng), 1):
        e = _base("OffStreetParking", n, _point(at))
        e["name"], e["alternateName"] = _prop(ko), _prop(en)
        fee = "free" if kind in ("residential", "tourist") and total < 100 else "feeCharged"
        e["category"] = _prop(["public", "parkingLot", fee])
        e["allowedVehicleType"] = _list(["car", "motorcycle", "bicycle"][: rng.randint(1, 3)])
        e["totalSpotNumber"] = _qty("totalSpotNumber", total)
        e["address"] = _address(f"{_nearest_road(at).ko} {rng.randint(10, 260)}")
        series = _parking_series(rng, kind, total, clock)
        _set_current(e, series, clock)
        entities.append(e)
        history.append(_history(e, series, clock))
    return entities, history


def _nearest_road(c: Coord) -> _Road:
    """The road a spot is on, for its street address."""
    return min(ROADS, key=lambda r: min(_dist_m(c, p) for p in r.points))


# ---------------------------------------------------------------------------- streetlights


def _lamp_states(
    rng: random.Random, count: int, clock: _Clock, dark: list[bool]
) -> list[list[str]]:
    """Each lamp's status at every instant: most are ok, a few long broken, and the two with
    a broken lantern failed during a night in the window (they went dark then)."""
    broken = rng.sample(range(count), 11)
    status = dict.fromkeys(broken[:6], "defectiveLamp")
    status |= dict.fromkeys(broken[6:9], "columnIssue") | dict.fromkeys(broken[9:], "brokenLantern")
    states = [[status.get(i, "ok")] * clock.n for i in range(count)]
    nights = [i for i in range(1, clock.n) if dark[i]]
    for lamp in broken[9:] if nights else ():
        failed = rng.choice(nights)
        states[lamp][:failed] = ["ok"] * failed
    return states


def _streetlights(
    rng: random.Random, segments: list[_Segment], clock: _Clock
) -> tuple[list[Entity], list[Entity]]:
    """150 lamps spread along the roads, with their history: on from sunset to sunrise,
    dimmed to 60 % from 00 to 05 KST; a few are broken. The controller reports the light
    level every step, and the power state and status when they change."""
    count, now = 150, clock.last
    dark = [_sun(clock, i) == 0 for i in range(clock.n)]
    dim = [0.6 if _window(clock.hour(i), 0, 5, 0.3) > 0.5 else 1.0 for i in range(clock.n)]
    states = _lamp_states(rng, count, clock, dark)
    entities: list[Entity] = []
    history: list[Entity] = []
    for i in range(count):
        seg = segments[i % len(segments)]
        on_seg = count // len(segments) + (1 if i % len(segments) < count % len(segments) else 0)
        at = _along(seg.coords, (i // len(segments) + 0.5) / on_seg)
        e = _base("Streetlight", i + 1, _point(_offset(at, 0, 12 if i % 2 else -12)))
        lit = [d and s in ("ok", "columnIssue") for d, s in zip(dark, states[i], strict=True)]
        power = ["on" if on else "off" for on in lit]
        item = _changes(
            e, {"status": _changed(states[i], clock), "powerState": _changed(power, clock)}
        )
        brightness = rng.uniform(0.9, 1.0)
        level = [round(f * brightness, 2) if on else 0.0 for f, on in zip(dim, lit, strict=True)]
        series: Series = {"illuminanceLevel": level}
        e["illuminanceLevel"] = _qty("illuminanceLevel", level[-1], now)
        e["lanternHeight"] = _qty("lanternHeight", 10 if seg.road.road_class == "primary" else 8)
        state = states[i][-1]
        days = rng.randint(1000, 2200) if state == "defectiveLamp" else rng.randint(20, 1500)
        e["dateLastLampChange"] = _datetime(
            now.replace(hour=2, minute=0, second=0) - timedelta(days=days)
        )
        item |= _history(e, series, clock)
        entities.append(e)
        history.append(item)
    return entities, history


# ------------------------------------------------------------------------------- transit


def _agency() -> Entity:
    """The one bus operator, target of every operatedBy relationship."""
    e = _base("GtfsAgency", 1, _point(LANDMARKS[3].at))
    e["agencyName"] = _prop("남원시내버스")
    e["name"] = _lang("남원 시내버스", "Namwon City Bus")
    e["timezone"] = _prop("Asia/Seoul")
    e["language"] = _prop("ko")
    e["source"] = _prop(PROVIDER)
    e["address"] = _address("용성로 50")
    return e


def _stop_places(rng: random.Random) -> list[_Place]:
    """14 landmark stops plus 46 named after their district, spread along the roads."""
    places = [_Place(p.ko, p.en, *_offset(p.at, 15, 15)) for p in LANDMARKS]
    names = [(d, s) for d in DONGS for s in _STOP_SUFFIXES]
    rng.shuffle(names)
    for k in range(46):
        road = ROADS[k % len(ROADS)]
        f = (k // len(ROADS) + rng.uniform(0.2, 0.8)) / 6
        at = _jitter(rng, _along(road.points, f), 20)
        dong = _nearest(at, DONGS)
        pick = next((nm for nm in names if nm[0] == dong), names[0])
        names.remove(pick)
        (ko, en) = pick[1]
        places.append(_Place(f"{pick[0].ko} {ko}", f"{pick[0].en} {en}", *at))
    return places


def _stops(rng: random.Random, clock: _Clock) -> tuple[list[Entity], list[Entity]]:
    """GtfsStop entities with Korean/English names (LanguageProperty) and the history of
    their wheelchair access: four accessible stops lose it for a few hours (works on a ramp
    or a kerb), and some of them get it back within the window."""
    out: list[Entity] = []
    agency = urn("GtfsAgency", 1)
    access: list[list[str]] = []
    for n, p in enumerate(_stop_places(rng), 1):
        e = _base("GtfsStop", n, _point(p.at))
        e["name"] = _lang(p.ko, p.en)
        e["code"] = _prop(f"{41000 + n * 7}")
        access.append(["1" if n <= 14 else rng.choice(("0", "1", "2"))] * clock.n)
        e["operatedBy"] = _rel(agency)
        out.append(e)
    accessible = [k for k, a in enumerate(access) if a[0] == "1"]
    for k in rng.sample(accessible, 4) if clock.n > 1 else ():
        start = rng.randrange(1, clock.n)
        end = min(clock.n, start + rng.randint(2, 8))
        access[k][start:end] = ["2"] * (end - start)  # GTFS: boarding not possible
    history = [
        _changes(e, {"wheelChairAccessible": _changed(a, clock)})
        for e, a in zip(out, access, strict=True)
    ]
    return out, history


def _coord(e: Entity) -> Coord:
    """The Point of an entity's location."""
    lon, lat = e["location"]["value"]["coordinates"]
    return (lon, lat)


def _progress(p: Coord, a: Coord, b: Coord) -> tuple[float, float]:
    """Where p projects on a->b (0 at a, 1 at b) and how far off that line it is, in metres."""
    bx, by = (b[0] - a[0]) * _M_PER_DEG_LON, (b[1] - a[1]) * _M_PER_DEG_LAT
    px, py = (p[0] - a[0]) * _M_PER_DEG_LON, (p[1] - a[1]) * _M_PER_DEG_LAT
    t = (px * bx + py * by) / ((bx * bx + by * by) or 1.0)
    return t, math.hypot(px - t * bx, py - t * by)


def _corridor(stops: list[Entity], a: Entity, b: Entity, width: float) -> list[Entity]:
    """Stops within `width` metres of the line a->b, in the order a bus meets them."""
    ends = {a["id"], b["id"]}
    seen = [(_progress(_coord(s), _coord(a), _coord(b)), s) for s in stops if s["id"] not in ends]
    return [s for (t, off), s in sorted(seen, key=lambda x: x[0][0]) if 0 < t < 1 and off < width]


def _route_path(rng: random.Random, stops: list[Entity], first: int, length: int) -> list[Entity]:
    """A plausible stop sequence: from a terminal, via one turn, to a stop across town."""
    start = stops[first]
    end = rng.choice([s for s in stops if _dist_m(_coord(start), _coord(s)) > 1500])
    span = _dist_m(_coord(start), _coord(end))
    detours = [
        s
        for s in stops
        if s is not start
        and s is not end
        and _dist_m(_coord(start), _coord(s)) + _dist_m(_coord(s), _coord(end)) < 1.4 * span
    ]
    corners = [start, rng.choice(detours), end] if detours else [start, end]
    path, visited = [start], {start["id"]}
    for a, b in itertools.pairwise(corners):
        for s in [*_corridor(stops, a, b, 300), b]:
            if s["id"] not in visited:
                path.append(s)
                visited.add(s["id"])
    if len(path) > length:
        keep = sorted(rng.sample(range(1, len(path) - 1), length - 2))
        path = [path[0], *(path[k] for k in keep), path[-1]]
    return path


def _trips_per_hour(base: int, clock: _Clock, i: int) -> int:
    """A route's timetable: no buses from 23 to 06 KST, two more an hour at the weekday peaks."""
    h = clock.hour(i)
    if not 6 <= h < 23:
        return 0
    peak = not clock.weekend(i) and (7 <= h < 9 or 17 <= h < 19)
    return base + 2 if peak else base


def _routes(
    rng: random.Random, timetable: random.Random, stops: list[Entity], clock: _Clock
) -> tuple[list[Entity], list[Entity]]:
    """Eight bus routes from the terminal or the station, shaped as LineStrings, with the
    history of their trips per hour (a change at each edge of the timetable)."""
    out: list[Entity] = []
    history: list[Entity] = []
    for n in range(1, 9):
        path = _route_path(rng, stops, 3 if n % 2 else 1, rng.randint(8, 14))
        names = [s["name"]["languageMap"] for s in (path[0], path[-1])]
        e = _base("GtfsRoute", n, _line([_coord(s) for s in path]))
        e["shortName"] = _prop(str(100 + n))
        e["name"] = _prop(f"{names[0]['ko']} - {names[1]['ko']}")
        e["description"] = _prop(f"{names[0]['en']} - {names[1]['en']}, {len(path)} stops")
        e["routeType"] = _prop("3")
        e["routeColor"] = _prop(_ROUTE_COLORS[n - 1])
        e["routeTextColor"] = _prop("FFFFFF")
        e["operatedBy"] = _rel(urn("GtfsAgency", 1))
        base = timetable.choice((1, 2, 2, 3))
        trips = [_trips_per_hour(base, clock, i) for i in range(clock.n)]
        history.append(_changes(e, {"tripsPerHour": _changed(trips, clock)}))
        out.append(e)
    return out, history


# ------------------------------------------------------------------------- example queries


def _nice_below(values: list[float], rank: float, unit: int) -> int:
    """A round threshold strictly below the value at `rank`, so `>` matches some entities."""
    v = sorted(values)[min(len(values) - 1, int(rank * len(values)))]
    t = unit * math.floor(v / unit)
    return t - unit if t >= v else t


def _current(entities: list[Entity], entity_type: str, attr: str) -> list[float]:
    """Current values of one attribute across a type."""
    return [e[attr]["value"] for e in entities if e["type"] == entity_type]


def _example_queries(entities: list[Entity], clock: _Clock) -> list[tuple[str, str]]:
    """Queries tuned to this town's data so each one really returns something."""
    no2 = _nice_below(_current(entities, "AirQualityObserved", "no2"), 0.75, 5)
    free = sorted(_current(entities, "OffStreetParking", "availableSpotNumber"))
    lo, hi = 10 * (free[len(free) // 4] // 10), 10 * -(-free[3 * len(free) // 4] // 10)
    since = iso(clock.times[0] - clock.step)
    first = iso(clock.times[0])  # periods from the first reading are all whole
    six_h = iso(clock.last - timedelta(hours=6))
    segment = urn("RoadSegment", 1)
    station = urn("AirQualityObserved", 1)
    hall = f"[{CITY_HALL[0]},{CITY_HALL[1]}]"
    box = "[[[127.385,35.412],[127.396,35.412],[127.396,35.42],[127.385,35.42],[127.385,35.412]]]"
    return [
        (f"Air sensors reading NO2 above {no2} µg/m³ now",
         f"/entities?type=AirQualityObserved&q=no2>{no2}"),
        (f"Car parks with {lo} to {hi} free spaces",
         f"/entities?type=OffStreetParking&q=availableSpotNumber=={lo}..{hi}"),
        ("Weather stations with a reference-grade thermometer (query on a sub-attribute)",
         "/entities?type=WeatherObserved&q=temperature.accuracy<0.2"),
        ("Streetlights with a defective lamp",
         "/entities?type=Streetlight&q=status==%22defectiveLamp%22"),
        ("Both traffic counters on one road segment (query on a Relationship)",
         f"/entities?type=TrafficFlowObserved&q=refRoadSegment==%22{segment}%22"),
        ("Car parks within 800 m of Namwon City Hall",
         "/entities?type=OffStreetParking&geometry=Point&georel=near;maxDistance==800"
         f"&coordinates={hall}"),
        ("Streetlights in the blocks around City Hall",
         f"/entities?type=Streetlight&geometry=Polygon&georel=within&coordinates={box}"),
        ("Bus stops as plain JSON, names in English",
         "/entities?type=GtfsStop&attrs=name,location&format=simplified&lang=en"),
        ("Free spaces per car park, just the fields a roadside sign needs",
         "/entities?type=OffStreetParking&pick=id,name,availableSpotNumber,totalSpotNumber"
         "&format=simplified"),
        ("How many streetlights there are (the NGSILD-Results-Count header; no bodies)",
         "/entities?type=Streetlight&count=true&limit=0"),
        ("Last 5 PM2.5 and NO2 readings of the AirKorea station",
         f"/temporal/entities/{station}?attrs=pm25,no2&timerel=after&timeAt={since}&lastN=5"),
        ("Temperature at every weather station over the last 6 hours",
         f"/temporal/entities?type=WeatherObserved&attrs=temperature&timerel=after&timeAt={six_h}"),
        ("Mean and peak traffic per counter in each 6 hours (6 hourly readings each)",
         f"/temporal/entities?type=TrafficFlowObserved&attrs=intensity&timerel=after&timeAt={first}"
         "&aggrMethods=avg,max&aggrPeriodDuration=PT6H&format=aggregatedValues"),
        ("Which entity types the town has", "/types"),
        ("Which attributes are in use", "/attributes"),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- the town


def _stream(seed: int, name: str) -> random.Random:
    """A separate seeded stream per part, so changing one part leaves the others as they were."""
    return random.Random(f"{seed}:{name}")


def build_city(
    seed: int = 7, hours: int = 24, step_minutes: int = 60, start: datetime | None = None
) -> SampleCity:
    """Generate the sample town of Namwon: same seed and start, same town, byte for byte."""
    clock = _make_clock(start, hours, step_minutes)
    segments = _segments(_stream(seed, "roads"))
    w = _town_weather(_stream(seed, "weather"), clock)
    traffic, traffic_h = _traffic(_stream(seed, "traffic"), segments, clock)
    air, air_h = _air(_stream(seed, "air"), w, segments, clock)
    weather, weather_h = _weather(_stream(seed, "stations"), w, clock)
    parking, parking_h = _parking(_stream(seed, "parking"), clock)
    lights, lights_h = _streetlights(_stream(seed, "lights"), segments, clock)
    stops, stops_h = _stops(_stream(seed, "stops"), clock)
    routes, routes_h = _routes(_stream(seed, "routes"), _stream(seed, "timetable"), stops, clock)
    entities = [
        _agency(),
        *_road_entities(segments),
        *traffic,
        *air,
        *weather,
        *parking,
        *lights,
        *stops,
        *routes,
    ]
    history = [*traffic_h, *air_h, *weather_h, *parking_h, *lights_h, *stops_h, *routes_h]
    return SampleCity(entities, history, _example_queries(entities, clock), clock.last)

"""Time zone names: the one check that settings, the CLI, imports and the web pages share.

``ZoneInfo`` opens any file under the system's zoneinfo folder, so it also accepts names that
are not zones of the IANA database: ``localtime`` (whatever the host is set to, which changes
when the server moves), ``Factory`` (a placeholder zone named "-00"), ``posixrules``, and the
``posix/…`` and ``right/…`` copies (the latter counts leap seconds, a minute's drift from real
clocks). A subscriber's lessons must not depend on the machine that sends them, so only the
canonical names of ``zoneinfo.available_timezones()`` are accepted.
"""

from __future__ import annotations

from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

# Files in the zoneinfo folder that available_timezones() lists but that are not zones.
NOT_ZONES = frozenset({"Factory", "localtime"})


@cache
def canonical_zones() -> frozenset[str]:
    """Every accepted IANA zone name (read once: listing them walks the zoneinfo folder)."""
    return frozenset(available_timezones() - NOT_ZONES)


def check_zone(name: str) -> str:
    """``name`` when it is a canonical IANA zone; ValueError saying what to use otherwise."""
    if name not in canonical_zones():
        raise ValueError(f"unknown timezone {name!r} (use an IANA name such as Europe/Berlin)")
    return name


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)

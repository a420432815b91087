"""The CMS vocabulary: exit codes with their meanings, site names, tiers and operator choices."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

_SITE_RE = re.compile(r"^(T[0-3])_([A-Z]{2})_")


@lru_cache(maxsize=1)
def cms_vocabulary() -> dict:
    """Return the vocabulary of a real 2018 WTC history shipped with the package."""
    with resources.files("wtc.data").joinpath("cms_vocabulary.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def site_tier(site: str) -> str:
    """Tier of a CMS site name (``T2_US_MIT`` -> ``T2``); ``unknown`` for quirks like ``Unknown``."""
    match = _SITE_RE.match(site)
    return match.group(1) if match else "unknown"


def site_country(site: str) -> str:
    """Country code of a CMS site name (``T2_US_MIT`` -> ``US``); ``unknown`` for quirks."""
    match = _SITE_RE.match(site)
    return match.group(2) if match else "unknown"


def exit_code_info(code: str | int) -> dict:
    """Meaning, category and usual WTC response of an exit code (``unknown`` when undocumented)."""
    info = cms_vocabulary()["exit_codes"].get(str(code))
    if info is None:
        return {"meaning": "not in the vocabulary", "category": "unknown", "usual_response": None}
    return info


def code_sort_key(code: str) -> tuple[int, int | str]:
    """Sort exit codes numerically when they are integers (``-1`` < ``85`` < ``50660``)."""
    try:
        return (0, int(code))
    except ValueError:
        return (1, code)

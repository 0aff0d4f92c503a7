"""What a click records about its visitor, reduced at the edge so nothing personal is kept:
the referrer's host and the user agent's family."""
from __future__ import annotations

from urllib.parse import urlsplit

DIRECT = "(direct)"
# Order matters: Edge and Chrome claim "Safari", Chrome-based Edge also claims "Chrome".
FAMILIES = (("bot", ("bot", "spider", "crawl")), ("curl", ("curl/",)), ("Edge", ("edg/", "edge/")),
            ("Firefox", ("firefox/",)), ("Chrome", ("chrome/", "crios/")), ("Safari", ("safari/",)))


def agent_family(user_agent: str | None) -> str:
    ua = (user_agent or "").lower()
    for family, needles in FAMILIES:
        if any(n in ua for n in needles):
            return family
    return "other"


def referrer_host(referer: str | None) -> str:
    """The Referer header's host (lower-case, without www.), or '(direct)'."""
    if not referer:
        return DIRECT
    host = (urlsplit(referer.strip()).hostname or "").lower().removeprefix("www.")
    return host[:253] if host else DIRECT

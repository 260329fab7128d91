"""Search paging helpers: the next link of a searchset, rebased on the configured base.

https://hl7.org/fhir/R4/http.html#paging says to follow ``Bundle.link[next]`` as given; HAPI
behind a proxy or gateway writes its own host/port (and sometimes servlet path) into those links
(hapi-fhir #2885, opensrp/fhircore #1714), so links pointing elsewhere are put back on the base.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from service.fhir.types import Json

__all__ = ["next_link", "rebase"]


def rebase(link: str, base: str) -> str:
    """``link`` on ``base``'s scheme/host/port (and path prefix) when it points elsewhere.

    The foreign base path is everything before the first segment that names a resource type,
    an operation (``$…``) or a paging/control segment (``_…``); with none (HAPI's
    ``/fhir?_getpages=…``) the whole path is the server base.
    """
    target, home = urlsplit(link), urlsplit(base)
    if not target.scheme:  # relative link: resolve against the base
        return base.rstrip("/") + "/" + link.lstrip("/")
    if (target.scheme, target.netloc) == (home.scheme, home.netloc):
        return link
    home_path = home.path.rstrip("/")
    path = target.path
    if not (path == home_path or path.startswith(home_path + "/")):
        segments = [s for s in path.split("/") if s]
        start = next(
            (i for i, s in enumerate(segments) if s[:1].isupper() or s[:1] in "$_"), len(segments)
        )
        path = "/".join([home_path, *segments[start:]])
    return urlunsplit((home.scheme, home.netloc, path, target.query, ""))


def next_link(bundle: Json) -> str | None:
    """The ``next`` link of a searchset Bundle, if any."""
    for link in bundle.get("link", []):
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None

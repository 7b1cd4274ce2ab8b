"""Searchset Bundles (FHIR R4 Bundle, search.mode match/include)."""

from __future__ import annotations

from typing import Any


def searchset(
    matches: list[tuple[str, dict[str, Any]]],
    includes: list[tuple[str, dict[str, Any]]],
    total: int,
    links: dict[str, str],
) -> dict[str, Any]:
    """``matches``/``includes`` are (fullUrl, resource) pairs; ``links`` maps relation to URL."""
    entries = [{"fullUrl": url, "resource": r, "search": {"mode": "match"}} for url, r in matches]
    entries += [{"fullUrl": url, "resource": r, "search": {"mode": "include"}} for url, r in includes]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": rel, "url": url} for rel, url in links.items()],
    }
    if entries:
        bundle["entry"] = entries
    return bundle

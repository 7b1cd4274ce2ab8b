"""A browser for the tests, as far as OAuth needs one: a cookie jar, redirects followed one step
at a time (every URL visited is kept), HTML forms parsed and submitted with a chosen button.
Navigation stops at the app's redirect URI (nothing listens there), like a native app would."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

APP_REDIRECT = "http://127.0.0.1/callback"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


@dataclass
class Stop:
    """Where navigation stopped: the app's redirect URI (``landed``) or a page."""

    url: str
    response: httpx.Response | None = None

    @property
    def landed(self) -> bool:
        return self.response is None

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    @property
    def forms(self) -> list[Form]:
        assert self.response is not None
        parser = _Forms()
        parser.feed(self.response.text)
        return parser.forms


class Browser:
    def __init__(self, stop_at: str = APP_REDIRECT) -> None:
        self.http = httpx.Client(timeout=30)
        self.stop_at = stop_at
        self.visited: list[str] = []

    def close(self) -> None:
        self.http.close()

    def go(self, url: str) -> Stop:
        return self._follow(self.http.get(url), url)

    def submit(self, page: Stop, button: tuple[str, str] | None = None, **overrides: Any) -> Stop:
        """Submit the page's first form (POST), clicking ``button``, with fields overridden
        (``None`` removes a field)."""
        form = page.forms[0]
        data = {**form.fields, **dict([button] if button else [])}
        for name, value in overrides.items():
            data.pop(name, None) if value is None else data.__setitem__(name, value)
        url = urljoin(page.url, form.action)
        return self._follow(self.http.post(url, data=data), url)

    def _follow(self, response: httpx.Response, url: str) -> Stop:
        self.visited.append(url)
        for _ in range(20):
            if response.status_code not in (301, 302, 303, 307):
                return Stop(url, response)
            url = urljoin(url, response.headers["location"])
            if url.startswith(self.stop_at):
                self.visited.append(url)
                return Stop(url)
            self.visited.append(url)
            response = self.http.get(url)
        raise AssertionError(f"too many redirects: {self.visited[-5:]}")

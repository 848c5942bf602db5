"""A console client for tests: an httpx client that keeps the console's cookies itself.

The console's cookies are `Secure`; the tests' API serves plain HTTP on loopback, where httpx's
cookie jar (rightly) withholds Secure cookies. This client carries them explicitly, as a browser
does for a trustworthy origin (Chromium treats loopback as one).
"""

import re
from http.cookies import SimpleCookie
from typing import Any

import httpx

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')


class ConsoleClient:
    def __init__(self, base_url: str, *, lang: str | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=False)
        self.cookies: dict[str, str] = {}
        self.lang = lang

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ConsoleClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.lang:
            headers.setdefault("Accept-Language", self.lang)
        return headers

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for raw in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self._keep(self.http.get(url, headers=self._headers(headers), **kwargs))

    def post(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self._keep(self.http.post(url, headers=self._headers(headers), **kwargs))

    def csrf(self, page: str = "/console/login") -> str:
        """The CSRF token of this browser's current session, read from a page as a browser would."""
        found = CSRF_META.search(self.get(page).text)
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def submit(self, url: str, data: dict[str, Any], *, page: str | None = None) -> httpx.Response:
        """POST a form the way the page would, with its CSRF token."""
        return self.post(url, data={**data, "csrf_token": self.csrf(page or "/console/login")})

    def sign_in(self, token: str, next_path: str = "/console/") -> httpx.Response:
        response = self.submit("/console/login", {"token": token, "next": next_path})
        assert response.status_code == 303, response.text
        return response

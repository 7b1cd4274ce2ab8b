"""Helpers shared by the tests (and the benchmarks in ``bench/``).

- ``ports``: a free loopback port.
- ``servers``: an ASGI app under uvicorn in a background thread.
- ``processes``: waiting for a child process's URL, stopping it.
- ``browser``: Debian Chromium through Playwright.
- ``asgi``: an app in-process over httpx (lifespan, streaming), for the fast tier.
- ``fakes``: a fake authorizer and a fake image source for in-process route tests.
- ``tiers``: which tests are ``integration`` (start real servers), and the pytest hooks.
- ``guard``: the fast tier's guard (no listening socket, no child process).
"""

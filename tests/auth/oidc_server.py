"""Run the real oidc-provider (npm) for tests, and get real tokens from it.

``ensure_installed`` runs ``npm install`` into ``.cache/oidc-provider`` (gitignored) when the
package is missing or ``package.json`` changed, so a fresh machine only needs Node.js and npm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.support.ports import free_port as free_port  # re-exported: tests import it from here
from tests.support.processes import stop_process, wait_for_url

HERE = Path(__file__).parent / "oidc"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "oidc-provider"
REDIRECT_URI = "http://127.0.0.1/callback"
IMAGING_SCOPE = "openid launch/patient patient/ImagingStudy.rs"


def ensure_installed() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed for the oidc-provider tests")
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = (HERE / "package.json").read_text()
    marker = CACHE / "node_modules" / "oidc-provider" / "package.json"
    if not marker.exists() or (CACHE / "package.json").read_text() != wanted:
        (CACHE / "package.json").write_text(wanted)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            check=True,
            timeout=300,
        )
    shutil.copy(HERE / "server.mjs", CACHE / "server.mjs")
    return CACHE


@dataclass
class OidcServer:
    issuer: str
    process: subprocess.Popen[bytes]
    secrets: dict[str, str]

    def stats(self) -> dict[str, dict[str, int]]:
        return dict(httpx.get(f"{self.issuer}/test/stats", timeout=5).json())

    def introspections(self, client_id: str) -> int:
        return int(self.stats()["introspection"].get(client_id, 0))

    def app_token(
        self,
        patient: str | None,
        scope: str = IMAGING_SCOPE,
        *,
        client: str = "app",
        resource: str | None = None,
    ) -> dict[str, Any]:
        """A real access token via authorization code + PKCE (interactions finish at once)."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        params = {
            "client_id": client,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
            "login_hint": patient or "no-patient",
        }
        if resource:
            params["resource"] = resource
        with httpx.Client(timeout=10) as http:
            response = http.get(f"{self.issuer}/auth", params=params)
            for _ in range(12):
                location = response.headers.get("location", "")
                if location.startswith(REDIRECT_URI) or response.status_code not in (302, 303):
                    break
                response = http.get(urljoin(self.issuer + "/", location))
            query = parse_qs(urlsplit(location).query)
            if "code" not in query:
                raise RuntimeError(
                    f"authorization failed: {response.status_code} {location} {response.text[:300]}"
                )
            form = {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": client,
                "code_verifier": verifier,
            }
            if resource:
                form["resource"] = resource
            token = http.post(f"{self.issuer}/token", data=form)
            token.raise_for_status()
            return dict(token.json())

    def revoke(self, token: str, client: str = "app") -> None:
        response = httpx.post(
            f"{self.issuer}/token/revocation", data={"token": token, "client_id": client}, timeout=10
        )
        response.raise_for_status()


def start(config: dict[str, Any], workdir: Path) -> OidcServer:
    cache = ensure_installed()
    port = int(config["port"])
    path = workdir / "oidc-config.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        ["node", str(cache / "server.mjs"), str(path)],
        cwd=cache,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"

    def exited(code: int) -> str:
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
        return f"oidc-provider exited: {output[-2000:]}"

    try:
        wait_for_url(
            f"{issuer}/.well-known/openid-configuration", process=process, what="oidc-provider", exited=exited
        )
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return OidcServer(issuer, process, dict(config["secrets"]))


def stop(server: OidcServer) -> None:
    stop_process(server.process, timeout=5)

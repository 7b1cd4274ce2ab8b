"""A bare Python proxy: what any Python hop costs on this machine (bench/bench_hotpath.py).

One aiohttp pool, no authorization, no checks, no logging: the request's path goes to the
upstream with its Accept and Authorization headers, the answer streams back. Served by uvicorn
(httptools, uvloop: what ``smart-imaging serve`` runs on) or by granian (Rust's hyper, uvloop),
to see whether another server library would move the floor. Not part of the product; a floor to
read the server's figures against.

Run: python bench/floor_proxy.py PORT UPSTREAM_BASE [uvicorn|granian]
"""

import os
import sys

import aiohttp
from yarl import URL

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "")  # granian imports this module again in its worker
session = None


async def app(scope, receive, send):
    global session
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit_per_host=24), auto_decompress=False
        )
    hdrs = [(k.decode(), v.decode()) for k, v in scope["headers"] if k in (b"accept", b"authorization")]
    qs = scope["query_string"].decode()
    async with session.get(
        URL(UPSTREAM + scope["raw_path"].decode() + ("?" + qs if qs else ""), encoded=True), headers=hdrs
    ) as r:
        await send(
            {
                "type": "http.response.start",
                "status": r.status,
                "headers": [(b"content-type", r.headers.get("content-type", "").encode())],
            }
        )
        async for chunk in r.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    global UPSTREAM
    port, server = int(sys.argv[1]), sys.argv[3] if len(sys.argv) > 3 else "uvicorn"
    UPSTREAM = os.environ["FLOOR_UPSTREAM"] = sys.argv[2]  # the env: for granian's worker import
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
        Granian(
            "floor_proxy:app",
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            websockets=False,
            log_enabled=False,
        ).serve()
        return
    import uvicorn

    uvicorn.run(app, port=port, http="httptools", loop="uvloop", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

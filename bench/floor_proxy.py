"""A bare Python proxy: what any Python hop costs on this machine (bench/bench_hotpath.py).

uvicorn (httptools, uvloop) and one aiohttp pool, no authorization, no checks, no logging: the
request's path goes to the upstream with its Accept and Authorization headers, the answer streams
back. Not part of the product; a floor to read the server's figures against.

Run: python bench/floor_proxy.py PORT UPSTREAM_BASE
"""

import sys

import aiohttp
import uvicorn
from yarl import URL

UP = sys.argv[2]
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
        URL(UP + scope["raw_path"].decode() + ("?" + qs if qs else ""), encoded=True), headers=hdrs
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


uvicorn.run(
    app, port=int(sys.argv[1]), http="httptools", loop="uvloop", access_log=False, log_level="warning"
)

"""The shortener's HTTP API: `python -m services.shortener.urls.server --port P --data DIR`.

    POST /urls {"target": "https://..."}   201 {"url_id", "code", "short_url"}; 400 bad target
    GET  /{code}                           302 to the target, the click recorded; 404 unknown code
    GET  /healthz                          200 once its database answers

Its database is the shortener service's (SHORTENER_DATABASE_URL: the process environment, else
the stack's env file). Binds 127.0.0.1 only."""
from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import psycopg
from aiohttp import web

from services.shortener.urls import links
from services.shortener.urls.visitors import agent_family, referrer_host

HOST = "127.0.0.1"
POOL_SIZE = 8
CODE_PATTERN = "{code:[A-Za-z0-9]{4,32}}"


class Connections:
    """A few autocommit connections, each used by one request at a time; a broken one is replaced."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn, self.size = dsn, size
        self.idle: asyncio.Queue[psycopg.AsyncConnection | None] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)   # opened on first use

    async def run(self, work):
        conn = await self.idle.get()
        try:
            if conn is None or conn.closed or conn.broken:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5,
                                                             application_name="shortener")
            return await work(conn)
        finally:
            self.idle.put_nowait(conn)

    async def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                await conn.close()


CONNECTIONS = web.AppKey("connections", Connections)


async def create_url(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        target = links.clean_target(body.get("target") if isinstance(body, dict) else None)
    except (ValueError, links.InvalidTarget) as exc:
        return web.json_response({"error": str(exc) or "expected JSON {target}"}, status=400)
    link = await request.app[CONNECTIONS].run(lambda conn: links.create(conn, target))
    return web.json_response({"url_id": link.url_id, "code": link.code, "short_url": f"{request.url.origin()}/{link.code}"},
                             status=201)


async def redirect(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    referrer, family = referrer_host(request.headers.get("Referer")), agent_family(request.headers.get("User-Agent"))
    target = await request.app[CONNECTIONS].run(lambda conn: links.follow(conn, code, referrer, family))
    if target is None:
        return web.json_response({"error": "no such short link"}, status=404)
    raise web.HTTPFound(target)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[CONNECTIONS].run(lambda conn: conn.execute("SELECT 1"))
    except psycopg.Error as exc:
        return web.json_response({"healthy": False, "reason": str(exc)}, status=503)
    return web.json_response({"healthy": True})


def database_url() -> str:
    found = os.environ.get("SHORTENER_DATABASE_URL")
    if not found:
        from cli import stack_env

        found = stack_env.load().get("SHORTENER_DATABASE_URL")
    if not found:
        raise SystemExit("SHORTENER_DATABASE_URL is not set and not in the stack's env file (`make up`)")
    return found


def make_app(dsn: str, pool_size: int = POOL_SIZE) -> web.Application:
    app = web.Application()
    app[CONNECTIONS] = Connections(dsn, pool_size)

    async def close(app: web.Application) -> None:
        await app[CONNECTIONS].close()

    app.on_cleanup.append(close)
    app.add_routes([web.get("/healthz", healthz), web.post("/urls", create_url), web.get(f"/{CODE_PATTERN}", redirect)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True, help="unused: the state is in the service's database")
    parser.add_argument("--pool", type=int, default=POOL_SIZE, help="database connections")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(database_url(), args.pool), host=HOST, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

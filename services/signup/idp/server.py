"""The stand-in identity provider: `python -m services.signup.idp.server --port P --data DIR`.

    POST   /users {external_id, email, name}  201 {id}; 200 {id} again for the same external_id;
                                              409 the e-mail is registered; 410 the external id was withdrawn
    GET    /users/{id}                        200 user | 404
    GET    /users?external_id=...|email=...   200 user | 404
    DELETE /users/{id}                        204 | 404
    DELETE /users?external_id=...             204 (also when none existed: a later create is refused)
    GET    /healthz                           200
    POST   /faults {"delay_s": x, "fail": b}  every create waits x seconds / answers 500

Data-driven faults, for tests: an e-mail whose local part starts with `slow+` is created only
after --slow-s seconds (past the saga step's timeout; the create still happens if the caller
gave up), `fail+` answers 500. Binds 127.0.0.1 only."""
from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web

from services.signup.idp.store import Store

HOST = "127.0.0.1"
STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", dict)
PENDING = web.AppKey("pending", set)


def fault_of(email: str) -> str | None:
    local = email.strip().lower().split("@", 1)[0]
    for fault in ("slow", "fail"):
        if local.startswith(f"{fault}+"):
            return fault
    return None


async def create_user(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        external_id, email, name = str(body["external_id"]), str(body["email"]), str(body["name"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "expected JSON {external_id, email, name}"}, status=400)
    settings = request.app[SETTINGS]
    fault = fault_of(email)
    if settings["fail"] or fault == "fail":
        return web.json_response({"error": "identity provider failure (injected)"}, status=500)
    delay = settings["delay_s"] + (settings["slow_s"] if fault == "slow" else 0.0)
    store = request.app[STORE]

    async def create():
        if delay:
            await asyncio.sleep(delay)
        return store.create(external_id, email, name)

    # The create completes even if the caller stops waiting: that is the late account a
    # compensation must delete.
    task = asyncio.ensure_future(create())
    request.app[PENDING].add(task)
    task.add_done_callback(request.app[PENDING].discard)
    created = await asyncio.shield(task)
    if created.status == 409:
        return web.json_response({"error": "e-mail already registered"}, status=409)
    if created.status == 410:
        return web.json_response({"error": "external id withdrawn"}, status=410)
    return web.json_response({"id": created.user_id}, status=created.status)


async def get_user(request: web.Request) -> web.Response:
    user = request.app[STORE].get(request.match_info["id"])
    return web.json_response(user) if user else web.json_response({"error": "no such user"}, status=404)


async def find_user(request: web.Request) -> web.Response:
    q = request.query
    if "external_id" not in q and "email" not in q:
        return web.json_response({"count": request.app[STORE].count()})
    user = request.app[STORE].find(external_id=q.get("external_id"), email=q.get("email"))
    return web.json_response(user) if user else web.json_response({"error": "no such user"}, status=404)


async def delete_user(request: web.Request) -> web.Response:
    found = request.app[STORE].delete(request.match_info["id"])
    return web.Response(status=204 if found else 404)


async def withdraw(request: web.Request) -> web.Response:
    external_id = request.query.get("external_id")
    if not external_id:
        return web.json_response({"error": "DELETE /users needs ?external_id="}, status=400)
    request.app[STORE].withdraw(external_id)
    return web.Response(status=204)


async def faults(request: web.Request) -> web.Response:
    body = await request.json()
    settings = request.app[SETTINGS]
    settings["delay_s"] = float(body.get("delay_s", 0.0))
    settings["fail"] = bool(body.get("fail", False))
    return web.json_response({k: settings[k] for k in ("delay_s", "fail")})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"healthy": True})


def make_app(data: Path, slow_s: float = 30.0) -> web.Application:
    app = web.Application()
    data.mkdir(parents=True, exist_ok=True)
    app[STORE] = Store(data / "idp.sqlite3")
    app[SETTINGS] = {"delay_s": 0.0, "fail": False, "slow_s": slow_s}
    app[PENDING] = set()
    app.add_routes([web.post("/users", create_user), web.get("/users", find_user), web.delete("/users", withdraw),
                    web.get("/users/{id}", get_user), web.delete("/users/{id}", delete_user),
                    web.post("/faults", faults), web.get("/healthz", healthz)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--slow-s", type=float, default=30.0, help="how long a `slow+` e-mail's create takes")
    args = parser.parse_args()
    web.run_app(make_app(args.data, args.slow_s), host=HOST, port=args.port, print=None)


if __name__ == "__main__":
    main()

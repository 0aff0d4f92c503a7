"""The console's web server: pages refresh themselves; every action is a form POST that needs the
operator token (CONSOLE_TOKEN in `make env`), shows a dry run first where there is one, and is
recorded in the audit topic by the same code the CLI runs."""
from __future__ import annotations

import asyncio
import getpass
import hmac
from collections.abc import Mapping
from pathlib import Path

import jinja2
from aiohttp import web

from console import snapshot

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=True)
ENV: web.AppKey[Mapping[str, str]] = web.AppKey("env", Mapping)
TOKEN: web.AppKey[str] = web.AppKey("token", str)
REFRESH_S = 3


def _refreshes(request: web.Request) -> bool:
    """Views reload themselves unless ?refresh=0 (a person reading closely, a test driving forms)."""
    return request.query.get("refresh") != "0"


def _page(name: str, status: int = 200, refresh: bool = True, **values) -> web.Response:
    html = TEMPLATES.get_template(name).render(refresh=REFRESH_S if refresh else None, **values)
    return web.Response(text=html, content_type="text/html", status=status)


def _authorized(request: web.Request, form: Mapping) -> bool:
    return hmac.compare_digest(str(form.get("token", "")).encode(), request.app[TOKEN].encode())


async def path_page(request: web.Request) -> web.Response:
    hops = await asyncio.to_thread(snapshot.path, request.app[ENV])
    troubled = [h for group in hops.values() for h in group if h.state != snapshot.OK]
    return _page("path.html", refresh=_refreshes(request), hops=hops, troubled=troubled)


async def pairs_page(request: web.Request) -> web.Response:
    views = await asyncio.to_thread(snapshot.pairs, request.app[ENV])
    return _page("pairs.html", refresh=_refreshes(request), views=views)


async def pair_page(request: web.Request) -> web.Response:
    name = request.match_info["pair"]
    detail = await asyncio.to_thread(snapshot.pair_detail, request.app[ENV], name)
    return _page("pair.html", refresh=_refreshes(request), pair=name, d=detail, status=200 if detail else 404)


STATES = ("RUNNING", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED", "RESOLVED")


async def sagas_page(request: web.Request) -> web.Response:
    """Counts by state, stuck and FAILED sagas, and the instances filtered by type, state and age."""
    from observe.sagas import instances, saga_types, summary

    url = request.app[ENV]["ORCHESTRATOR_OBSERVER_URL"]
    q = request.query
    chosen = {"type": q.get("type", ""), "state": q.get("state", ""), "older": q.get("older", "")}
    try:
        older = float(chosen["older"]) if chosen["older"] else None
    except ValueError:
        older = None

    def read():
        return (summary(url, 60.0), saga_types(url),
                instances(url, chosen["type"] or None, chosen["state"] or None, older))

    s, types, listed = await asyncio.to_thread(read)
    return _page("sagas.html", refresh=_refreshes(request), s=s, types=types, states=STATES, chosen=chosen,
                 listed=listed)


async def saga_page(request: web.Request) -> web.Response:
    from console.timeline import draw
    from observe.sagas import instance, timeline

    saga = request.match_info["saga"]
    url = request.app[ENV]["ORCHESTRATOR_OBSERVER_URL"]

    def read():
        row = instance(url, saga)
        return row, timeline(url, saga), snapshot.participants_of(row.saga_type) if row else {}

    row, events, participants = await asyncio.to_thread(read)
    drawing = draw(events, participants) if events else None
    return _page("saga.html", refresh=_refreshes(request), saga=saga, row=row, events=events, drawing=drawing,
                 status=200 if events else 404)


async def saga_action(request: web.Request) -> web.Response:
    """POST /sagas/{saga}/retry|resolve with token, why (and who)."""
    from operate.sagas import take_over
    from streams.sagas.machine import NotRetryable

    form = await request.post()
    saga, action = request.match_info["saga"], request.match_info["action"]
    if not _authorized(request, form):
        return _page("result.html", status=403, refresh=False, ok=False,
                     message="refused: the operator token is missing or wrong (CONSOLE_TOKEN in `make env`)")
    who, why = str(form.get("who") or getpass.getuser()), str(form.get("why", ""))
    try:
        d = await asyncio.to_thread(take_over, request.app[ENV], saga, action, who, why)
    except (NotRetryable, ValueError) as exc:
        return _page("result.html", status=409, refresh=False, ok=False, message=f"refused: {exc}")
    return _page("result.html", refresh=False, ok=True, saga=d.saga_id,
                 message=f"saga {d.saga_id}: {d.before} -> {d.after}, {d.detail} (by {who}: {why})")


async def letters_page(request: web.Request) -> web.Response:
    from operate import audit, letters
    from stack.kafka_client import OPERATOR, access

    def read():
        kafka = access(request.app[ENV], OPERATOR)
        found = [x for t in letters.dead_letter_topics(kafka) for x in letters.read_topic(kafka, t)]
        return letters.group_by_reason(found), audit.handled(audit.history(kafka))

    groups, handled = await asyncio.to_thread(read)
    return _page("letters.html", refresh=_refreshes(request), groups=groups, handled=handled)


async def letters_action(request: web.Request) -> web.Response:
    """POST /letters/redrive|discard with ids (or a reason group): a dry run unless confirm=yes,
    which needs the token. The same plan, re-drive and audit as `cdc dlq`."""
    from operate import audit, letters, redrive
    from stack.kafka_client import OPERATOR, access

    form = await request.post()
    action, dry = request.match_info["action"], form.get("confirm") != "yes"
    ids, group = [str(i) for i in form.getall("id", [])], str(form.get("group", ""))
    who, why = str(form.get("who") or getpass.getuser()), str(form.get("why", "")).strip()
    if not dry and not _authorized(request, form):
        return _page("result.html", status=403, refresh=False, ok=False,
                     message="refused: the operator token is missing or wrong (CONSOLE_TOKEN in `make env`)")
    if action == "discard" and not why:
        return _page("result.html", status=400, refresh=False, ok=False, message="refused: a discard needs a reason (why)")

    def run() -> tuple[list[tuple[str, str]], str]:
        kafka = access(request.app[ENV], OPERATOR)
        handled = audit.handled(audit.history(kafka))
        found = [x for t in letters.dead_letter_topics(kafka) for x in letters.read_topic(kafka, t)]
        chosen = [x for x in found if x.id in ids] if ids else [x for x in found if group and x.group == group
                                                                  and x.id not in handled]
        if action == "redrive":
            plans = redrive.plan(chosen, handled)
            lines = [(p.letter.id, f"refused: {p.refused}" if p.refused else p.effect) for p in plans]
            if dry:
                return lines, f"dry run: {sum(p.refused is None for p in plans)} of {len(plans)} would be re-driven"
            done = redrive.redrive(kafka, plans, who, why or "re-driven from the console")
            return lines, f"re-driven: {len(done)} of {len(plans)} (by {who})"
        lines = [(x.id, "already handled" if x.id in handled else "given up") for x in chosen]
        if dry:
            return lines, f"dry run: {sum(x.id not in handled for x in chosen)} of {len(chosen)} would be discarded"
        done = redrive.discard(kafka, chosen, handled, who, why)
        return lines, f"discarded: {len(done)} of {len(chosen)} (by {who}: {why})"

    lines, message = await asyncio.to_thread(run)
    return _page("result.html", refresh=False, ok=True, message=message, lines=lines)


def create_app(env: Mapping[str, str], token: str) -> web.Application:
    if not token:
        raise ValueError("the console needs an operator token (CONSOLE_TOKEN): run `make up` to create it")
    app = web.Application()
    app[ENV], app[TOKEN] = env, token
    app.router.add_get("/", path_page)
    app.router.add_get("/pairs", pairs_page)
    app.router.add_get("/pairs/{pair}", pair_page)
    app.router.add_get("/sagas", sagas_page)
    app.router.add_get("/sagas/{saga}", saga_page)
    app.router.add_post("/sagas/{saga}/{action:retry|resolve}", saga_action)
    app.router.add_get("/letters", letters_page)
    app.router.add_post("/letters/{action:redrive|discard}", letters_action)
    return app


def serve(env: Mapping[str, str], token: str, port: int) -> None:
    web.run_app(create_app(env, token), host="127.0.0.1", port=port, print=None)

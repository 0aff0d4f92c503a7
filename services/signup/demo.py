"""The sign-up part of `make demo`: sign-ups through the registration service's own command,
their SignUpRequested events captured, and their sagas: one succeeds, one invalid e-mail is
refused at validation (nothing is created anywhere), one e-mail already registered is refused
by the identity provider, one whose mail domain refuses the welcome e-mail is compensated (its
account deleted at the provider)."""
from __future__ import annotations

import os

import httpx
import psycopg
from rich.table import Table

from cli.demo_cmd import show_captured, show_timeline, wait_sagas
from services.registry import DemoContext
from services.signup.mailer.welcome import message_id
from services.signup.registration.commands import InvalidSignUp, sign_up
from services.signup.sign_up import SIGN_UP
from services.signup.smtp import mailbox
from streams.sagas.orchestrator import saga_id_for

OUTBOX_TOPICS = ["outbox.event.signup"]


def run(ctx: DemoContext) -> None:
    first = {"email": f"  Ada.{ctx.tag}@Example.ORG ", "name": " Ada   Lovelace ", "locale": "en"}
    later = [
        ("invalid e-mail: refused at validation", {"email": "ada-at-example.org", "name": "Ada"}),
        ("e-mail already registered", {"email": f"ada.{ctx.tag}@example.org", "name": "Ada Again"}),
        ("mail domain refuses the welcome e-mail", {"email": f"grace.{ctx.tag}@refused.example", "name": "Grace"}),
    ]
    placed: list[tuple[str, str | None, str]] = []   # (story, signup_id, detail)

    def first_signup() -> int:
        with psycopg.connect(ctx.env["REGISTRATION_DATABASE_URL"]) as conn:
            placed.append(("succeeds", sign_up(conn, first), "e-mail cleaned to " + first["email"].strip().lower()))
        return 1

    show_captured(ctx, [], OUTBOX_TOPICS, first_signup)
    mode = os.environ.get("CDC_SAGA_MODE", "orchestration")
    ctx.out.print(f"sign-up sagas through accounts (identity provider) and mailer (SMTP), CDC_SAGA_MODE={mode}")
    wait_sagas(ctx, SIGN_UP.name, [placed[0][1] or ""])   # the duplicate below needs the first one registered
    with psycopg.connect(ctx.env["REGISTRATION_DATABASE_URL"]) as conn:
        for story, data in later:
            try:
                placed.append((story, sign_up(conn, data), ""))
            except InvalidSignUp as exc:
                placed.append((story, None, str(exc)))
    ids = [sid for _, sid, _ in placed if sid]
    states = wait_sagas(ctx, SIGN_UP.name, ids)
    with psycopg.connect(ctx.env["ORCHESTRATOR_OBSERVER_URL"]) as conn:
        reasons: dict[str, str] = dict(conn.execute("SELECT business_key, coalesce(reason, '') FROM saga_instances "
                                    "WHERE business_key = ANY(%s)", (ids,)).fetchall())
    mails = mailbox.by_message_id(mailbox.read(mailbox.stack_mailbox()))
    table = Table("sign-up", "expected", "saga", "account at the provider", "welcome e-mails", "detail",
                  title="sign-up sagas")
    with httpx.Client(base_url=ctx.env["IDP_URL"], timeout=5) as idp:
        for story, sid, detail in placed:
            if sid is None:
                table.add_row("-", story, "not started", "-", "-", detail)
                continue
            account = "yes" if idp.get("/users", params={"external_id": sid}).status_code == 200 else "no"
            sent = mails.get(message_id(saga_id_for(SIGN_UP.name, sid)), 0)
            table.add_row(sid[:8], story, states.get(sid, "-"), account, str(sent), detail or reasons.get(sid, ""))
    ctx.out.print(table)
    shown = next(sid for story, sid, _ in placed if "domain" in story)
    assert shown is not None
    show_timeline(ctx, shown, f"sign-up {shown[:8]}'s saga")
    if not all(states.get(i) in ("COMPLETED", "COMPENSATED") for i in ids):
        ctx.out.print("[red]some sagas did not end[/red]")
        raise SystemExit(1)
    ctx.out.print("[green]every sign-up ended[/green]: registered and welcomed, or refused with nothing left behind")


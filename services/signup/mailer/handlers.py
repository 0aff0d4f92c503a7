"""The mailer service's saga handler: send the welcome e-mail (the sign-up saga's pivot).

At most one extra e-mail per crash: the SMTP send is outside the database, so the handler
keeps a ledger of sends (welcome_sends, keyed by the Message-ID derived from the saga id),
committed on its own connection right after the server accepted the message, before the
command's own transaction (inbox row, welcome record, reply) commits. A redelivered command
(after a kill -9, a redone batch or a replay from offset 0) that finds its Message-ID in the
ledger does not send again. Only a crash in the window between the server's 250 and the
ledger's commit (one round trip to the local database) sends once more. See README.md."""
from __future__ import annotations

import asyncio

import psycopg

from schemas.saga import SagaCommand
from services.signup import config
from services.signup.mailer import welcome
from streams.sagas.handlers import Handler, Outcome

_ledgers: dict[int, psycopg.AsyncConnection] = {}   # per event loop; autocommit: each statement commits at once


async def _ledger() -> psycopg.AsyncConnection:
    loop = id(asyncio.get_running_loop())
    conn = _ledgers.get(loop)
    if conn is None or conn.closed or conn.broken:
        conn = _ledgers[loop] = await psycopg.AsyncConnection.connect(
            config.value("MAILER_DATABASE_URL"), autocommit=True, connect_timeout=5,
            application_name="mailer-send-ledger")
    return conn


async def sent_before(message_id: str) -> bool:
    cur = await (await _ledger()).execute("SELECT 1 FROM welcome_sends WHERE message_id = %s", (message_id,))
    return await cur.fetchone() is not None


async def record_sent(message_id: str) -> None:
    await (await _ledger()).execute("INSERT INTO welcome_sends (message_id) VALUES (%s) ON CONFLICT DO NOTHING",
                                    (message_id,))


async def send_welcome(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    p = cmd.payload
    mail = welcome.compose(cmd.saga_id, p["email"], p["name"], p.get("locale", "en"))
    if not await sent_before(mail.message_id):
        try:
            await asyncio.to_thread(welcome.send, config.value("SMTP_URL"), mail)
        except welcome.MailRefused as refused:
            return f"welcome e-mail refused: {refused}"
        await record_sent(mail.message_id)
    await conn.execute("INSERT INTO welcome_emails (registration_signup_id, email, name, template_id, message_id) "
                       "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (registration_signup_id) DO NOTHING",
                       (p["signup_id"], mail.to, mail.name, mail.template_id, mail.message_id))
    return None


HANDLERS: dict[str, Handler] = {
    "SendWelcome": send_welcome,
}

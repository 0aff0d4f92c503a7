"""A local SMTP sink: `python -m services.signup.smtp.server --port P --data DIR`.

Accepts any message, appends it to DIR/mailbox.jsonl (see mailbox.py) before answering 250,
and refuses (550, permanent) recipients of the domains in mailbox.REFUSED_DOMAINS. A recipient
whose local part starts with `slowmail+` takes mailbox.SLOW_S to accept (tests kill the mailer
mid-burst with it). Binds
127.0.0.1 only; no HTTP: ready once the port accepts."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.signup.smtp import mailbox

HOST = "127.0.0.1"


class Sink:
    def __init__(self, data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.path = data / mailbox.MAILBOX

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if mailbox.refuses(address):
            return f"550 5.7.1 <{address}>: this domain does not accept mail"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(mailbox.slow(r) for r in envelope.rcpt_tos):
            await asyncio.sleep(mailbox.SLOW_S)
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=default_policy)
        body = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
        mailbox.append(self.path, {
            "message_id": str(msg.get("Message-ID", "")).strip(),
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos), "subject": str(msg.get("Subject", "")),
            "template": str(msg.get("X-Template-Id", "")), "body": body.get_content() if body else "",
            "received_at": time.time(),
        })
        return "250 Message accepted for delivery"


async def serve(port: int, data: Path) -> None:
    sink = Sink(data)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="smtp-sink.local"), host=HOST, port=port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.data))


if __name__ == "__main__":
    main()

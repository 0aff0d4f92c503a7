"""The shortener's two commands: create a link (the row and its UrlCreated outbox event in one
transaction) and follow one (the click is recorded in the same statement that finds the target)."""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

import psycopg

from services import outbox
from services.shortener.events import URL_AGGREGATE, UrlCreated

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 7
SCHEMES = ("http://", "https://")


class InvalidTarget(ValueError):
    pass


@dataclass(frozen=True)
class Link:
    url_id: int
    code: str
    target: str


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def clean_target(target: object) -> str:
    if not isinstance(target, str) or not target.strip().lower().startswith(SCHEMES) or len(target) > 2048:
        raise InvalidTarget("target: an http(s) URL of at most 2048 characters")
    return target.strip()


async def create(conn: psycopg.AsyncConnection, target: str) -> Link:
    target = clean_target(target)
    while True:
        try:
            async with conn.transaction():
                row = await (await conn.execute(
                    "INSERT INTO urls (code, target) VALUES (%s, %s) RETURNING id, code, created_at",
                    (new_code(), target))).fetchone()
                assert row is not None
                event = UrlCreated(url_id=row[0], code=row[1], target=target, created_at=row[2])
                await outbox.write_async(conn, URL_AGGREGATE, str(row[0]), "UrlCreated", event.model_dump(mode="json"))
            return Link(row[0], row[1], target)
        except psycopg.errors.UniqueViolation:
            continue   # 62^7 codes: a collision is rare; draw again


FOLLOW = """
WITH url AS (SELECT id, target FROM urls WHERE code = %s),
     click AS (INSERT INTO clicks (url_id, referrer, agent_family) SELECT id, %s, %s FROM url RETURNING id)
SELECT url.target, (SELECT id FROM click) FROM url
"""


async def follow(conn: psycopg.AsyncConnection, code: str, referrer: str, agent_family: str) -> str | None:
    """The link's target, its click recorded (one autocommit statement); None for an unknown code."""
    row = await (await conn.execute(FOLLOW, (code, referrer, agent_family))).fetchone()
    return row[0] if row else None

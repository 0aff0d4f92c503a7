"""The accounts service's saga handlers: create the user at the identity provider (keeping
only its id), and delete it again as the compensation."""
from __future__ import annotations

import psycopg

from schemas.saga import SagaCommand
from services.signup.accounts import idp_client
from streams.sagas.handlers import Handler, Outcome


async def create_account(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    """A refusal must leave nothing at the provider (the saga does not compensate a refused step).
    So when the provider took the request but did not answer, the sign-up is withdrawn there
    (deleted, and a create that is still under way is refused) before the step refuses."""
    p = cmd.payload
    try:
        result = await idp_client.create_user(external_id=p["signup_id"], email=p["email"], name=p["name"])
    except idp_client.ProviderTimeout as exc:
        await idp_client.delete_by_external_id(p["signup_id"])   # ConnectionError if it fails: retried
        return f"identity provider did not answer ({exc}); the sign-up was withdrawn there"
    if result.refused:
        return result.refused
    await conn.execute("INSERT INTO accounts (registration_signup_id, provider_user_id) VALUES (%s, %s) "
                       "ON CONFLICT (registration_signup_id) DO NOTHING", (p["signup_id"], result.user_id))
    return None


async def delete_account(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    """By the sign-up's id, not the provider's: an account the provider created after the step
    timed out (so this service never saw its id) is deleted too, and none is created later."""
    signup_id = cmd.payload["signup_id"]
    await idp_client.delete_by_external_id(signup_id)
    await conn.execute("DELETE FROM accounts WHERE registration_signup_id = %s", (signup_id,))
    return None


HANDLERS: dict[str, Handler] = {
    "CreateAccount": create_account,
    "DeleteAccount": delete_account,
}

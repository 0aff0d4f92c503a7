"""The sign-up example domain: registration validates the data and starts the sign-up saga,
accounts creates the user at an external identity provider (keeping only its id), mailer sends
the welcome e-mail (the pivot). Two components stand in for the outside world: an HTTP
identity provider (`idp`) and an SMTP sink (`smtp`)."""
from __future__ import annotations

from pathlib import Path

from services.registry import Component, Domain, ServiceSpec
from services.signup.events import SIGNUP_AGGREGATE
from services.signup.sign_up import SIGN_UP_SAGA

HERE = Path(__file__).resolve().parent


def _demo(ctx) -> None:
    from services.signup.demo import run

    run(ctx)


DOMAIN = Domain(
    name="signup",
    description="sign-up saga: validate -> create the user at an identity provider -> welcome e-mail (pivot)",
    services=(
        # keeps nothing of its own: its only write is the SignUpRequested event in its outbox
        ServiceSpec("registration", aggregates=(SIGNUP_AGGREGATE,)),
        ServiceSpec("accounts", captured_tables=("accounts",), migrations=HERE / "accounts" / "migrations"),
        ServiceSpec("mailer", captured_tables=("welcome_emails",), migrations=HERE / "mailer" / "migrations",
                    private_columns={"welcome_emails": ("email", "name")}),
    ),
    sagas=(SIGN_UP_SAGA,),
    demo=_demo,
    components=(
        Component("idp", "services.signup.idp.server"),
        Component("smtp", "services.signup.smtp.server", scheme="smtp", health=None),
    ),
)

"""Sign up, as the business reads it: validate the data (registration, nothing kept) -> create
the user at the identity provider (accounts) -> send the welcome e-mail (mailer, the pivot).
If the mail server refuses the address for good, the account is deleted at the provider and
the sign-up ends COMPENSATED, i.e. rejected (README.md says why the e-mail is the pivot)."""
from __future__ import annotations

from services.signup.accounts.handlers import HANDLERS as ACCOUNTS
from services.signup.events import SIGNUP_AGGREGATE, SignUpRequested
from services.signup.mailer.handlers import HANDLERS as MAILER
from streams.sagas.definition import SagaDefinition, Step
from streams.sagas.plugin import SagaPlugin, SagaStart

SIGN_UP = SagaDefinition(
    name="sign-up",
    steps=(
        #    step                  participant          command          compensation     what its command carries
        Step(name="validate_signup", participant="registration", command=None, nothing_to_undo=True),
        Step(name="create_account", participant="accounts", command="CreateAccount", compensation="DeleteAccount",
             timeout_s=8.0, retries=1, carries=("signup_id", "email", "name")),
        Step(name="send_welcome", participant="mailer", command="SendWelcome", pivot=True, timeout_s=30.0,
             carries=("signup_id", "email", "name", "locale")),
    ),
)

SIGN_UP_SAGA = SagaPlugin(
    definition=SIGN_UP,
    start=SagaStart(aggregate=SIGNUP_AGGREGATE, event_type="SignUpRequested", model=SignUpRequested,
                    key="signup_id"),
    handlers={"accounts": ACCOUNTS, "mailer": MAILER},
)

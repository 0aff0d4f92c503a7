"""The welcome e-mail: templates, the message (its Message-ID derived from the saga id, the
idempotency key of the send) and the SMTP send, pure or blocking (run it in a thread)."""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

SENDER = "welcome@signup.example"
TEMPLATES = {
    "en": ("welcome-en-v1", "Welcome, {name}!", "Hello {name},\n\nyour account is ready. Welcome aboard!\n"),
    "es": ("welcome-es-v1", "¡Bienvenido, {name}!", "Hola {name}:\n\ntu cuenta ya está lista. ¡Bienvenido!\n"),
}


class MailRefused(Exception):
    """The SMTP server refused permanently (5xx): sending again will not help."""


def template_for(locale: str) -> tuple[str, str, str]:
    return TEMPLATES.get(locale, TEMPLATES["en"])


def message_id(saga_id: str) -> str:
    """The same for every delivery of the saga's command: the key the ledger and receivers dedupe by."""
    return f"<welcome.{saga_id}@signup.example>"


@dataclass(frozen=True)
class Welcome:
    to: str
    name: str
    template_id: str
    message_id: str
    message: EmailMessage


def compose(saga_id: str, to: str, name: str, locale: str = "en") -> Welcome:
    template_id, subject, body = template_for(locale)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject.format(name=name)
    msg["Message-ID"] = message_id(saga_id)
    msg["X-Template-Id"] = template_id
    msg.set_content(body.format(name=name))
    return Welcome(to, name, template_id, message_id(saga_id), msg)


def send(smtp_url: str, welcome: Welcome, timeout: float = 10.0) -> None:
    """Hand the message to the SMTP server. MailRefused on a permanent refusal; ConnectionError
    (transient: retried) when the server is away or answers 4xx."""
    where = urlsplit(smtp_url)
    try:
        with smtplib.SMTP(where.hostname or "127.0.0.1", where.port or 25, timeout=timeout) as smtp:
            smtp.send_message(welcome.message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{r}: {code} {text.decode(errors='replace')}" for r, (code, text) in exc.recipients.items())
        if all(500 <= c < 600 for c in codes):
            raise MailRefused(detail) from exc
        raise ConnectionError(f"SMTP deferred: {detail}") from exc
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        if 500 <= exc.smtp_code < 600:
            raise MailRefused(f"{exc.smtp_code} {text}") from exc
        raise ConnectionError(f"SMTP deferred: {exc.smtp_code} {text}") from exc
    except smtplib.SMTPException as exc:
        raise ConnectionError(f"SMTP failed: {type(exc).__name__}: {exc}") from exc

"""Deliver one message over SMTP (``aiosmtplib``), with timeouts and errors a retry policy can read.

``EVENTLY_SMTP_URL`` forms::

    smtp://host:port                   plain SMTP (port 25 by default; the dev server)
    smtp+starttls://user:pass@host     STARTTLS required (port 587 by default)
    smtps://user:pass@host             implicit TLS (port 465 by default)

User and password are percent-decoded (``%40`` for ``@``).

``MailServerUnavailable`` (retryable): the server could not be reached, timed out, hung up or
answered with a 4xx (temporary) code. ``MailRejected`` (not retryable): a 5xx (permanent)
answer such as a refused recipient or failed authentication; retrying sends nothing new.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

DEFAULT_TIMEOUT = 15.0
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailDeliveryError(Exception):
    retryable: bool = False


class MailServerUnavailable(MailDeliveryError):
    """Temporary: try again later (with backoff)."""

    retryable = True


class MailRejected(MailDeliveryError):
    """Permanent: the server refused this message; retrying will not help."""

    retryable = False


@dataclass(frozen=True, slots=True)
class SMTPTarget:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never log the password
        scheme = "smtps" if self.use_tls else "smtp+starttls" if self.start_tls else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        return f"SMTPTarget({scheme}://{user}{self.hostname}:{self.port})"


def parse_smtp_url(url: str) -> SMTPTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"unsupported SMTP URL scheme {parts.scheme!r}: use smtp://, smtp+starttls:// "
            "or smtps://"
        )
    if not parts.hostname:
        raise ValueError("the SMTP URL has no host")
    return SMTPTarget(
        hostname=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[scheme],
        use_tls=scheme == "smtps",
        start_tls=scheme == "smtp+starttls",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


async def send(
    message: EmailMessage,
    smtp_url: str,
    *,
    command_timeout: float = DEFAULT_TIMEOUT,
    tls_context: ssl.SSLContext | None = None,
) -> str:
    """Send ``message`` to its To/Cc/Bcc recipients; return the text of the server's reply.

    The envelope sender and recipients come from the headers. One call is one SMTP
    transaction: either the server accepted the message for every recipient, or this raises.
    ``command_timeout`` bounds the connection and each SMTP command (not the whole call).
    """
    target = parse_smtp_url(smtp_url)
    try:
        errors, reply = await aiosmtplib.send(
            message,
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            tls_context=tls_context,
            timeout=command_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        error_cls = MailServerUnavailable if all(400 <= c < 500 for c in codes) else MailRejected
        refused = ", ".join(f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
        raise error_cls(f"{target!r} refused the recipients: {refused}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        error_cls = MailServerUnavailable if 400 <= exc.code < 500 else MailRejected
        raise error_cls(f"{target!r} answered {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        # connect errors, timeouts, disconnects, TLS handshake failures, DNS failures
        raise MailServerUnavailable(f"{target!r} is unreachable: {exc}") from exc
    if errors:
        # some recipients were refused while others were accepted: the message went out,
        # so retrying would duplicate it for the accepted ones; report, don't retry
        refused = ", ".join(f"{addr} ({resp.code} {resp.message})" for addr, resp in errors.items())
        raise MailRejected(f"{target!r} accepted the message but refused: {refused}")
    return reply

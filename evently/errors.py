"""Every error the platform answers with: one named exception per stable error ``code``.

Each class carries its HTTP status, its ``code`` and a title; raise sites only add the detail
(``raise SoldOut()``, ``raise EventNotFound(f"No event {event_id}.")``). The API renders every
one as RFC 9457 problem+json (api/problems.py) and documents, per route, the errors it declares
(``problem_responses(SoldOut, ...)``), so the OpenAPI document is generated from this module.
To add an error: subclass the base with its status here, give it a unique ``code``, raise it,
and list it in the route's ``responses``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EventlyError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    message: ClassVar[str | None] = None  # the default detail

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.detail = detail or self.message or self.title
        super().__init__(self.detail)
        self.headers = dict(headers or {})
        self.extra = extra


# ---- the bases, one per status --------------------------------------------------------------


class BadRequest(EventlyError):
    pass


class Unauthorized(EventlyError):
    status, code, title = 401, "unauthorized", "Not authenticated"
    message = "Send 'Authorization: Bearer <access token>'."

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class PaymentRequired(EventlyError):
    status, code, title = 402, "payment_required", "Payment required"


class Forbidden(EventlyError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(EventlyError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(EventlyError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(EventlyError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class Unprocessable(EventlyError):
    status, code, title = 422, "validation_error", "Invalid request"


class TooManyRequests(EventlyError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)


class ServiceUnavailable(EventlyError):
    status, code, title = 503, "service_unavailable", "Service unavailable"
    message = "A backing service is unavailable; retry shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)


# ---- 400 --------------------------------------------------------------------------------------


class MalformedJson(BadRequest):
    code, title, message = "malformed_json", "Malformed JSON", "The body is not valid JSON."


# ---- 401 --------------------------------------------------------------------------------------


class InvalidToken(Unauthorized):
    code, title, message = "invalid_token", "Invalid token", "The token is invalid."


class TokenExpired(Unauthorized):
    code, title, message = "token_expired", "Token expired", "The token has expired."


class TokenRevoked(Unauthorized):
    code, title, message = "token_revoked", "Token revoked", "The token has been revoked."


class TokenReused(Unauthorized):
    code, title = "token_reused", "Refresh token reused"
    message = "This refresh token was already used; its session has been revoked."


class InvalidCredentials(Unauthorized):
    code, title, message = (
        "invalid_credentials",
        "Invalid credentials",
        "Email or password is incorrect.",
    )


class InvalidSignature(Unauthorized):
    code, title, message = "invalid_signature", "Invalid signature", "The signature is invalid."


class SignatureExpired(Unauthorized):
    code, title = "signature_expired", "Signature expired"
    message = "The signature timestamp is too old."


# ---- 402 --------------------------------------------------------------------------------------


class PaymentDeclined(PaymentRequired):
    code, title = "payment_declined", "Payment declined"
    message = "The payment was declined; the hold stays until it ends."


# ---- 403 --------------------------------------------------------------------------------------


class WrongPassword(Forbidden):
    code, title, message = "wrong_password", "Wrong password", "current_password is incorrect."


class AdmissionRequired(Forbidden):
    """A queued on-sale: reserving needs an admission token from the waiting room."""

    code, title = "admission_required", "Admission required"
    message = (
        "This on-sale runs through a waiting room: join it (POST /api/v1/events/{id}/queue) "
        "and reserve with the admission token it gives you (header Admission-Token)."
    )


class AdmissionInvalid(Forbidden):
    code, title = "admission_invalid", "Admission token invalid"
    message = (
        "The admission token is not valid for this event and buyer, or it has expired; "
        "ask the waiting room again (GET /api/v1/events/{id}/queue/{queue_ticket})."
    )


class OrganizationRoleRequired(Forbidden):
    """A member of the organization whose role does not allow this action."""

    code, title = "organization_role_required", "Organization role required"


class CsrfFailed(Forbidden):
    """A storefront (cookie-session) request that changes state without its CSRF token."""

    code, title = "csrf_failed", "CSRF check failed"
    message = "Reload the page and try again (the page's security token is missing or stale)."


# ---- 404 --------------------------------------------------------------------------------------


class EventNotFound(NotFound):
    code, title, message = "event_not_found", "Event not found", "No such event."


class BookingNotFound(NotFound):
    code, title, message = "booking_not_found", "Booking not found", "No such booking."


class WebhookDisabled(NotFound):
    """A payment webhook of a provider this deployment does not use: Stripe's without
    ``EVENTLY_STRIPE_WEBHOOK_SECRET``, the generic one with ``EVENTLY_PAYMENT_PROVIDER=stripe``."""

    code, title = "webhook_disabled", "Webhook not enabled"
    message = "This payment webhook is not enabled on this deployment."


class QueueTicketNotFound(NotFound):
    code, title = "queue_ticket_not_found", "Queue ticket not found"
    message = "No such queue ticket for this event and buyer."


class WaitlistEntryNotFound(NotFound):
    code, title = "waitlist_entry_not_found", "Waitlist entry not found"
    message = "No such waitlist entry."


class WorkflowNotFound(NotFound):
    code, title = "workflow_not_found", "Workflow not found"
    message = "Temporal has no workflow for this booking (never started or past retention)."


class TicketNotFound(NotFound):
    code, title, message = "ticket_not_found", "Ticket not found", "No such ticket."


class OrganizationNotFound(NotFound):
    """No such organization, or the caller is not one of its members (the same answer: an
    organization's existence is not revealed to outsiders)."""

    code, title, message = (
        "organization_not_found",
        "Organization not found",
        "No such organization.",
    )


class VenueNotInOrganization(NotFound):
    code, title, message = "venue_not_found_in_organization", "Venue not found", "No such venue."


class MemberNotFound(NotFound):
    code, title, message = "member_not_found", "Member not found", "No such member."


class WebhookNotFound(NotFound):
    code, title, message = "webhook_not_found", "Webhook not found", "No such webhook."


class WebhookDeliveryNotFound(NotFound):
    code, title, message = (
        "webhook_delivery_not_found",
        "Webhook delivery not found",
        "No such delivery.",
    )


# ---- 409 --------------------------------------------------------------------------------------


class SoldOut(Conflict):
    code, title = "sold_out", "Sold out"
    message = "Sold out: no seats are left for this quantity."


class EventNotOnSale(Conflict):
    code, title, message = "event_not_on_sale", "Not on sale", "This event is not on sale."


class SeatsAvailable(Conflict):
    code, title = "seats_available", "Seats available"
    message = "Seats are on sale for this event: reserve them instead."


class HoldExpired(Conflict):
    code, title, message = "hold_expired", "Hold expired", "The hold on this booking has ended."


class BookingNotHeld(Conflict):
    code, title, message = "booking_not_held", "Booking not held", "This booking is not held."


class BookingNotActive(Conflict):
    code, title = "booking_not_active", "Booking not active"
    message = "This booking is no longer active."


class IdempotencyKeyReused(Conflict):
    code, title = "idempotency_key_reused", "Idempotency key reused"
    message = "This Idempotency-Key was used for a different reservation."


class AlreadyWaitlisted(Conflict):
    code, title = "already_waitlisted", "Already waitlisted"
    message = "You are already on this event's waitlist."


class WaitlistEntryNotActive(Conflict):
    code, title = "waitlist_entry_not_active", "Waitlist entry not active"


class NoOpenOffer(Conflict):
    code, title = "no_open_offer", "No open offer"
    message = "No seats have been offered to you yet."


class OfferExpired(Conflict):
    code, title, message = "offer_expired", "Offer expired", "This offer has lapsed."


class OfferNotOpen(Conflict):
    code, title, message = "offer_not_open", "Offer not open", "This offer is not open."


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "Invalid status transition"


class EventNotEditable(Conflict):
    code, title = "event_not_editable", "Event not editable"


class CapacityBelowCommitted(Conflict):
    code, title = "capacity_below_committed", "Capacity below committed seats"


class ConcurrentChange(Conflict):
    code, title, message = (
        "concurrent_change",
        "Concurrent change",
        "The event changed concurrently; retry.",
    )


class EmailTaken(Conflict):
    code, title = "email_taken", "Email taken"
    message = "An account with this email already exists."


class WorkflowNotRunning(Conflict):
    code, title = "workflow_not_running", "Workflow not running"
    message = "The booking's workflow is not running; it cannot be released through it."


class ReleaseRefused(Conflict):
    code, title = "release_refused", "Release refused"


class AlreadyCheckedIn(Conflict):
    """A second scan of an admitted ticket; ``checked_in_at``/``device_id`` say when and where
    it was admitted, ``conflict`` is true for an offline device's upload (it let someone in)."""

    code, title = "already_checked_in", "Already checked in"
    message = "This ticket has already been admitted."


class TicketRevoked(Conflict):
    code, title = "ticket_revoked", "Ticket revoked"
    message = "This ticket was revoked (its booking was cancelled or refunded)."


class WrongEvent(Conflict):
    code, title, message = "wrong_event", "Wrong event", "This ticket is for another event."


class NonceReused(Conflict):
    code, title = "nonce_reused", "Nonce reused"
    message = "This nonce was used for another scan; send a fresh nonce per scan."


class NoValidTickets(Conflict):
    code, title = "no_valid_tickets", "No valid tickets"
    message = "This booking has no valid tickets (not confirmed, or cancelled)."


class AlreadyMember(Conflict):
    code, title = "already_member", "Already a member"
    message = "This account is already a member of the organization."


class LastOwner(Conflict):
    code, title = "last_owner", "Last owner"
    message = "An organization keeps at least one owner."


class BookingNotConfirmed(Conflict):
    code, title = "booking_not_confirmed", "Booking not confirmed"
    message = "Only a confirmed booking can be refunded."


class QueueOff(Conflict):
    code, title = "queue_off", "No waiting room"
    message = "This event's on-sale does not run through a waiting room: reserve directly."


# ---- 422 --------------------------------------------------------------------------------------


class QuantityTooLarge(Unprocessable):
    code, title = "quantity_too_large", "Quantity too large"


class QuantityAboveCapacity(Unprocessable):
    code, title = "quantity_above_capacity", "Quantity above capacity"


class WeakPassword(Unprocessable):
    code, title = "weak_password", "Weak password"


class InvalidEmail(Unprocessable):
    code, title = "invalid_email", "Invalid email"


class CurrentPasswordRequired(Unprocessable):
    code, title = "current_password_required", "Current password required"
    message = "current_password: required to change the password."


class InvalidDateRange(Unprocessable):
    code, title = "invalid_date_range", "Invalid date range"
    message = "date_from must not be after date_to."


class InvalidCurrency(Unprocessable):
    code, title = "invalid_currency", "Invalid currency"


class InvalidSchedule(Unprocessable):
    code, title = "invalid_schedule", "Invalid schedule"


class CapacityExceedsVenue(Unprocessable):
    code, title = "capacity_exceeds_venue", "Capacity exceeds the venue"


class VenueNotFound(Unprocessable):
    """A body names a venue that does not exist (422: the request, not the path, is wrong)."""

    code, title = "venue_not_found", "Venue not found"


class AmountMismatch(Unprocessable):
    code, title = "amount_mismatch", "Amount mismatch"
    message = "The payment amount does not match the booking."


class InvalidTicket(Unprocessable):
    """The secret is malformed or its signature does not verify: not an Evently ticket."""

    code, title, message = "invalid_ticket", "Invalid ticket", "This is not a valid ticket."


class InvalidScanTime(Unprocessable):
    code, title = "invalid_scan_time", "Invalid scan time"


class AccountNotFound(Unprocessable):
    """A body names an account (by email) that does not exist."""

    code, title = "account_not_found", "Account not found"


class InvalidOrganization(Unprocessable):
    """A body names an organization that does not exist."""

    code, title = "invalid_organization", "Unknown organization"


class InvalidWebhookUrl(Unprocessable):
    code, title = "invalid_webhook_url", "Invalid webhook URL"


class WebhookUrlNotAllowed(Unprocessable):
    """The URL's host is, or resolves to, an address webhooks may not reach (issue 28)."""

    code, title = "webhook_url_not_allowed", "Webhook URL not allowed"


# ---- 503 --------------------------------------------------------------------------------------


class Overloaded(ServiceUnavailable):
    """Shed by admission control: the client may retry (not a sold-out answer)."""

    code, title = "overloaded", "Overloaded"
    message = "Too many reservations in flight; retry shortly."


class ReserveTimeout(ServiceUnavailable):
    code, title = "reserve_timeout", "Reservation timed out"
    message = "The reservation is taking too long; retry with the same Idempotency-Key."


class DeadlineExceeded(ServiceUnavailable):
    code, title = "deadline_exceeded", "Deadline exceeded"
    message = "The request could not be answered in time; retry shortly."


class WorkflowTimeout(ServiceUnavailable):
    code, title = "workflow_timeout", "Workflow timed out"
    message = "The workflow did not answer in time; retry."


class PaymentUnavailable(ServiceUnavailable):
    code, title = "payment_unavailable", "Payment unavailable"
    message = (
        "The payment service did not answer before the hold ended; if you were charged, the "
        "booking is confirmed or the charge refunded automatically."
    )


class SearchUnavailable(ServiceUnavailable):
    code, title = "search_unavailable", "Search unavailable"


class NotReady(ServiceUnavailable):
    """Readiness: a service the API cannot serve without (Postgres, Temporal) is down."""

    code, title = "not_ready", "Not ready"


# ---- ticket types, promo codes, partial cancellation (issue 15) -----------------------------


class TicketTypeSoldOut(Conflict):
    """One type's own cap is reached while the event may still have seats of other types."""

    code, title = "ticket_type_sold_out", "Ticket type sold out"
    message = "Sold out for this ticket type (its own limit is reached); other types may be left."


class SalesClosed(Conflict):
    code, title = "sales_closed", "Sales closed"
    message = "This ticket type is not on sale now (outside its sales window)."


class TicketTypeNotFound(NotFound):
    code, title, message = "ticket_type_not_found", "Ticket type not found", "No such ticket type."


class TooManyOfType(Unprocessable):
    code, title = "too_many_of_type", "Too many of this ticket type"
    message = "A line asks for more than the ticket type's max_per_booking."


class DuplicateLines(Unprocessable):
    code, title = "duplicate_lines", "Duplicate lines"
    message = "Each ticket type may appear in at most one line."


class PromoCodeUnknown(Unprocessable):
    code, title, message = "promo_code_unknown", "Unknown promo code", "No such promo code."


class PromoCodeExpired(Unprocessable):
    code, title = "promo_code_expired", "Promo code not valid now"
    message = "This promo code is not valid now (outside its validity window)."


class PromoCodeUsedUp(Unprocessable):
    code, title, message = "promo_code_used_up", "Promo code used up", "This code has no uses left."


class PromoCodeNotApplicable(Unprocessable):
    code, title = "promo_code_not_applicable", "Promo code not applicable"
    message = "This promo code applies to none of the requested ticket types."


class PromoCodeExists(Conflict):
    code, title = "promo_code_exists", "Promo code exists"
    message = "This event already has a promo code with this code."


class TicketTypeInvalid(Unprocessable):
    code, title = "ticket_type_invalid", "Invalid ticket type"


class PromoCodeInvalid(Unprocessable):
    code, title = "promo_code_invalid", "Invalid promo code"


class LinesNotCancellable(Conflict):
    code, title = "lines_not_cancellable", "Lines not cancellable"
    message = "The booking has fewer active seats of these ticket types, or is not confirmed."


# live streams (issue 28)
class TooManyStreams(TooManyRequests):
    code, title = "too_many_streams", "Too many live streams"
    message = "Too many live streams open from this client or account; close one first."


# ---- refund rules (issue 29) ------------------------------------------------------------------


class RefundNotAllowed(Conflict):
    """The event's refund policy does not let this caller refund now; ``refund_policy`` (an
    extension member) is the event's policy (evently/refund_policy.py)."""

    code, title = "refund_not_allowed", "Refund not allowed"
    message = "The event's refund policy does not allow this refund."


class TicketCheckedIn(Conflict):
    """A ticket of what would be refunded was checked in: nothing used is refunded;
    ``ticket_id`` and ``checked_in_at`` name the ticket and its scan."""

    code, title = "ticket_checked_in", "Ticket checked in"
    message = "A ticket of this booking was checked in; a used ticket is not refunded."


# account recovery and verification (issue 32)
class ResetTokenInvalid(BadRequest):
    code, title = "reset_token_invalid", "Reset link invalid"
    message = (
        "This password reset link is invalid, was already used or has expired; ask for a new one."
    )


class VerificationTokenInvalid(BadRequest):
    code, title = "verification_token_invalid", "Verification link invalid"
    message = "This verification link is invalid or has expired."


class NotAGuestBooking(Conflict):
    """Issue 32: only a guest checkout's booking has access keys."""

    code, title = "not_a_guest_booking", "Not a guest booking"
    message = "This booking was made with an account; it has no access key."


class AnswersRequired(Unprocessable):
    """Issue 32: a required question of the event is not answered yet (the detail names it)."""

    code, title = "answers_required", "Answers required"


class QuestionNotFound(NotFound):
    code, title, message = "question_not_found", "Question not found", "No such question."


class QuestionInvalid(Unprocessable):
    code, title = "question_invalid", "Invalid question"


class AnswersInvalid(Unprocessable):
    code, title = "answers_invalid", "Invalid answers"


class TransferClosed(Conflict):
    """Issue 32: the event does not allow transfers, or its transfer deadline has passed."""

    code, title = "transfer_closed", "Transfers closed"


class AnswersClosed(Conflict):
    """Issue 32: the event's deadline for attendees' names and answers
    (``attendee_answers_until``) has passed."""

    code, title = "answers_closed", "Answers closed"


# ---- bank transfer (issue 29, evently/bank_transfer.py) ----------------------------------------


class BankTransferNotOffered(Conflict):
    """The event does not take bank transfers, or its organization has no bank account."""

    code, title = "bank_transfer_not_offered", "Bank transfer not offered"


class NotABankTransfer(Conflict):
    """mark-paid on a booking that was not reserved for payment by bank transfer."""

    code, title, message = (
        "not_a_bank_transfer",
        "Not a bank-transfer booking",
        "This booking is not paid by bank transfer.",
    )


class BankAccountInvalid(Unprocessable):
    code, title = "bank_account_invalid", "Invalid bank account"


def all_errors() -> list[type[EventlyError]]:
    """Every error class, bases included (tests check that codes are unique)."""
    found: list[type[EventlyError]] = []
    pending: list[type[EventlyError]] = [EventlyError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# ---- the Temporal codec endpoint (issue 33, api/codec/) ---------------------------------------


class CodecPayloadInvalid(Unprocessable):
    code, title = "codec_payload_invalid", "Payload cannot be decoded"


# ---- money: tax rules, fees, invoices (issue 31) ----------------------------------------------


class TaxRuleNotFound(NotFound):
    code, title = "tax_rule_not_found", "Tax rule not found"
    message = "This organization has no such tax rule."


class TaxRuleInvalid(Unprocessable):
    code, title = "tax_rule_invalid", "Invalid tax rule"


class InvoiceNotFound(NotFound):
    code, title = "invoice_not_found", "Invoice not found"
    message = "This booking has no such invoice."


# ---- reserved seating (issue 34, evently/seating.py, evently/inventory/reserved.py) ----------


class SeatingPlanInvalid(Unprocessable):
    code, title = "seating_plan_invalid", "Invalid seating plan"
    message = "The seating plan is invalid (see errors)."


class SeatingPlanNotFound(NotFound):
    code, title, message = "seating_plan_not_found", "Seating plan not found", "No such plan."


class EventNotSeated(NotFound):
    code, title = "event_not_seated", "Event not seated"
    message = "This event has no seating plan."


class SeatsTaken(Conflict):
    code, title = "seats_taken", "Seats taken"
    message = "Some of these seats are not available; none were held (see seats)."


class SeatsInvalid(Unprocessable):
    code, title = "seats_invalid", "Invalid seats"
    message = "Seats can only be asked for on a seated event, with seat ids of the event."


class SeatsNotChangeable(Conflict):
    code, title = "seats_not_changeable", "Seats not changeable"
    message = "Only free seats can be blocked, only blocked seats freed, plans set on drafts."

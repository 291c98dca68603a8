"""Organizer webhooks: subscriptions and their delivery log (``subscriptions``), the outbox's
relay and delivery bookkeeping (``outbox``), signing and sending (``sender``).

The outbox rows are written by database triggers in the transaction of the change they report
(migration 0006orgs); Temporal delivers them (workflows/webhooks/)."""

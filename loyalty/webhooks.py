"""Webhook endpoints: where the outbox worker delivers domain events (signed, at least once)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.errors import InvalidInput, NotFound
from loyalty.events import EVENT_TYPES
from loyalty.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

MAX_URL_LENGTH = 500  # WebhookEndpoint.url column
SECRET_PREFIX = "whsec_"  # noqa: S105 -- a public marker, not a secret


class InvalidWebhookUrl(InvalidInput):
    """The endpoint URL is not an absolute http(s) URL we can deliver to."""

    code = "INVALID_WEBHOOK_URL"
    field = "url"


class UnknownEventType(InvalidInput):
    """An event type the endpoint subscribes to is not one of `loyalty.events.EVENT_TYPES`."""

    code = "UNKNOWN_EVENT_TYPE"
    field = "event_types"


class WebhookEndpointNotFound(NotFound):
    """No webhook endpoint has that id."""

    code = "WEBHOOK_ENDPOINT_NOT_FOUND"


def validate_url(url: str) -> str:
    """Return `url` stripped if it is an absolute http(s) URL without credentials or fragment, else raise."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"the URL must be 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidWebhookUrl("the URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"malformed URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("the URL must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhookUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in URLs leak into logs; receivers authenticate us by the signature instead.
        raise InvalidWebhookUrl("the URL must not contain credentials")
    if parts.fragment:
        raise InvalidWebhookUrl("the URL must not contain a fragment")
    if port == 0:
        raise InvalidWebhookUrl("the URL has an invalid port")
    return url


def validate_event_types(event_types: Sequence[str]) -> list[str]:
    """Return the event types de-duplicated in order; raise `UnknownEventType` for any unknown one."""
    if isinstance(event_types, str):
        raise UnknownEventType("event types must be a list of names, not a string")
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise UnknownEventType(f"unknown event type(s): {', '.join(map(repr, unknown))}")
    return list(dict.fromkeys(event_types))


def new_secret() -> str:
    """A fresh signing secret (shown once to the operator, stored to sign deliveries)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def create_webhook_endpoint(url: str, event_types: Sequence[str] = ()) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for `event_types` (empty = every event); returns it and its signing secret.

    Raises `InvalidWebhookUrl` or `UnknownEventType` (both `InvalidInput`) and writes nothing on bad input.
    """
    clean_url = validate_url(url)
    types = validate_event_types(event_types)
    secret = new_secret()
    endpoint = await WebhookEndpoint.create(
        url=clean_url, secret=secret, event_types=types, active=True, created_at=clock.now()
    )
    return endpoint, secret


async def list_webhook_endpoints(*, include_inactive: bool = True) -> list[WebhookEndpoint]:
    """Every endpoint ordered by id (optionally only active ones)."""
    query = WebhookEndpoint.all() if include_inactive else WebhookEndpoint.filter(active=True)
    return await query.order_by("id")


async def deactivate_webhook_endpoint(endpoint_id: int) -> WebhookEndpoint:
    """Stop delivering to an endpoint; its pending deliveries are marked FAILED. Idempotent.

    Raises `WebhookEndpointNotFound` for an unknown id.
    """
    async with in_transaction() as conn:
        endpoint = await WebhookEndpoint.filter(id=endpoint_id).using_db(conn).select_for_update().first()
        if endpoint is None:
            raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint_id}", field="endpoint_id")
        if endpoint.active:
            endpoint.active = False
            await endpoint.save(using_db=conn, update_fields=["active"])
        # Nobody will retry these any more; say so instead of leaving them pending forever.
        await (
            WebhookDelivery.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING)
            .using_db(conn)
            .update(status=DeliveryStatus.FAILED, last_error="endpoint deactivated", locked_until=None)
        )
    return endpoint

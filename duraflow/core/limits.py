"""Size limits, checked before anything is written so a bad value never half-lands.

Names and ids are bounded because they are keys (queues, indexes, Kubernetes labels);
payloads are bounded because every turn rewrites them into one database transaction.
"""

from __future__ import annotations

import json
from typing import Any

MAX_NAME_BYTES = 256
MAX_INSTANCE_ID_BYTES = 512
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_CUSTOM_STATUS_BYTES = 256 * 1024
MAX_TAG_NAME_BYTES = 256
MAX_WORKER_TAGS = 5
MAX_KV_KEYS = 150
MAX_KV_VALUE_BYTES = 65536


def check_name(kind: str, value: Any, limit: int = MAX_NAME_BYTES) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{kind} must not be empty")
    size = len(value.encode())
    if size > limit:
        raise ValueError(f"{kind} is {size} bytes, over the limit of {limit} bytes")
    return value


def check_instance_id(value: Any) -> str:
    return check_name("instance id", value, MAX_INSTANCE_ID_BYTES)


def encode_payload(kind: str, value: Any) -> str:
    """JSON-encode a user value, with an error that says which value could not be encoded."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{kind} is not JSON-serialisable: {exc}") from None
    check_payload_size(kind, text)
    return text


def check_payload_size(kind: str, text: str, limit: int = MAX_PAYLOAD_BYTES) -> None:
    size = len(text.encode())
    if size > limit:
        raise ValueError(f"{kind} is {size} bytes, over the limit of {limit} bytes")


def decode_payload(text: str | None) -> Any:
    """Parse a stored JSON value, falling back to the raw string (duroxide's rule)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def kv_text(value: Any) -> str:
    """KV values are text: strings are stored as given, anything else as JSON."""
    if isinstance(value, str):
        return value
    return encode_payload("KV value", value)

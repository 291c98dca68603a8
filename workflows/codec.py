"""Payload encryption for everything Evently stores in Temporal (docs/temporal.md).

Workflow inputs, results, signals, updates and activity arguments carry buyers' emails and
Stripe ``client_secret``s; with a key configured (``EVENTLY_TEMPORAL_CODEC_KEYS``) every
payload is encrypted with AES-256-GCM before it leaves the process, so Temporal's database
(and anyone reading it) holds ciphertext only.

- The key id travels in the payload's metadata (``encryption-key-id``), so several keys can
  be configured: the FIRST encrypts, every one decrypts. Rotation: put the new key first,
  keep the old ones until no open history (and no retained one you want to read) uses them.
- A payload without the ``binary/encrypted`` encoding passes through untouched: histories
  recorded before the codec was switched on replay and read as before.
- The key id is bound to the ciphertext as associated data: a payload cannot be passed off as
  encrypted under another key.

Spec: ``kid:base64key,kid2:base64key2`` (32-byte keys, base64; ``evently temporal keygen``).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


@dataclass(frozen=True)
class CodecKey:
    kid: str
    key: bytes

    def __repr__(self) -> str:  # never print the key
        return f"CodecKey(kid={self.kid!r})"


def parse_keys(spec: str) -> list[CodecKey]:
    """``"k2:<base64>,k1:<base64>"`` → keys, the first encrypts. Raises ValueError on a bad
    entry (naming the key id, never the key)."""
    keys: list[CodecKey] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        kid = kid.strip()
        if not sep or not kid:
            raise ValueError("codec keys are `kid:base64key` pairs, comma-separated")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"codec key {kid!r} is not base64") from exc
        if len(key) != 32:
            raise ValueError(f"codec key {kid!r} must be 32 bytes (AES-256), not {len(key)}")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"codec key id {kid!r} appears twice")
        keys.append(CodecKey(kid, key))
    return keys


def new_key_spec(kid: str) -> str:
    """A fresh ``kid:base64key`` entry (32 random bytes)."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


class UnknownCodecKey(Exception):
    """A payload was encrypted under a key id that is not configured (any more)."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise ValueError("an encryption codec needs at least one key")
        self._encrypt_with = keys[0]
        self._ciphers = {k.kid: AESGCM(k.key) for k in keys}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        kid = self._encrypt_with.kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded before the codec: passes through
        kid = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownCodecKey(f"payload encrypted with unknown key id {kid!r}")
        try:
            plain = cipher.decrypt(
                payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode()
            )
        except InvalidTag as exc:
            raise UnknownCodecKey(f"payload does not decrypt with key {kid!r}") from exc
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def codec_from_spec(spec: str | None) -> EncryptionCodec | None:
    keys = parse_keys(spec or "")
    return EncryptionCodec(keys) if keys else None

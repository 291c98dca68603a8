"""The payload codec (workflows/codec.py): AES-GCM, key id in the metadata, rotation, plain
payloads passed through."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from workflows.codec import (
    ENCODING,
    KEY_ID,
    CodecKey,
    EncryptionCodec,
    UnknownCodecKey,
    codec_from_spec,
    new_key_spec,
    parse_keys,
)

pytestmark = pytest.mark.unit

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email":"ada@example.com"}')


async def test_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old = EncryptionCodec([CodecKey("k1", b"1" * 32)])
    [sealed_old] = await old.encode([PLAIN])
    assert sealed_old.metadata["encoding"] == ENCODING
    assert sealed_old.metadata[KEY_ID] == b"k1"
    assert b"ada@example.com" not in sealed_old.SerializeToString()
    rotated = EncryptionCodec([CodecKey("k2", b"2" * 32), CodecKey("k1", b"1" * 32)])
    [sealed_new] = await rotated.encode([PLAIN])
    assert sealed_new.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([sealed_old, sealed_new]) == [PLAIN, PLAIN]
    # a payload from before the codec passes through
    assert await rotated.decode([PLAIN]) == [PLAIN]
    # the old key retired: its payloads are refused with a clear error
    with pytest.raises(UnknownCodecKey, match="k1"):
        await EncryptionCodec([CodecKey("k2", b"2" * 32)]).decode([sealed_old])


async def test_a_tampered_or_relabelled_payload_is_refused() -> None:
    codec = EncryptionCodec([CodecKey("a", b"a" * 32), CodecKey("b", b"a" * 32)])
    [sealed] = await codec.encode([PLAIN])
    # one bit of the tag flipped (setting the last byte to 0 left it unchanged whenever it
    # was already 0: 1 run in 256, seen once in CI)
    tampered = Payload(
        metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    with pytest.raises(UnknownCodecKey):
        await codec.decode([tampered])
    # the same key bytes under another id: the key id is bound as associated data
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID: b"b"}, data=sealed.data)
    with pytest.raises(UnknownCodecKey):
        await codec.decode([relabelled])


def test_key_specs() -> None:
    spec = new_key_spec("2026-12")
    [key] = parse_keys(spec + ", ")
    assert key.kid == "2026-12"
    assert len(key.key) == 32
    assert "key=" not in repr(key)
    assert codec_from_spec("") is None
    assert codec_from_spec(None) is None
    for bad, why in [
        ("nokey", "pairs"),
        ("k:not-base64!", "base64"),
        (f"k:{base64.b64encode(b'short').decode()}", "32 bytes"),
        (
            f"k:{base64.b64encode(b'x' * 32).decode()},k:{base64.b64encode(b'y' * 32).decode()}",
            "twice",
        ),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_keys(bad)

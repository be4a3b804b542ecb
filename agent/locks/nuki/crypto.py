"""Nuki crypto: X25519/HSalsa20 shared key, HMAC-SHA256 authenticators, XSalsa20-Poly1305."""

from __future__ import annotations

import hashlib
import hmac
import os

import nacl.bindings
import nacl.exceptions

from agent.locks.nuki.const import KEY_LEN, NONCE_LEN
from agent.locks.nuki.errors import DecryptionFailed


def shared_key(peer_public: bytes, own_secret: bytes) -> bytes:
    """libsodium's crypto_box_beforenm: HSalsa20 over the X25519 shared secret."""
    if len(peer_public) != KEY_LEN or len(own_secret) != KEY_LEN:
        raise ValueError("Curve25519 keys are 32 bytes")
    return bytes(nacl.bindings.crypto_box_beforenm(peer_public, own_secret))


def authenticator(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 keyed with the shared key over the concatenated parts."""
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def verify_authenticator(key: bytes, received: bytes, *parts: bytes) -> bool:
    """Constant-time check of an authenticator."""
    return hmac.compare_digest(authenticator(key, *parts), received)


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh Curve25519 key pair as (secret, public)."""
    public, secret = nacl.bindings.crypto_box_keypair()
    return bytes(secret), bytes(public)


def public_key(secret: bytes) -> bytes:
    """The public key of a Curve25519 secret key."""
    return bytes(nacl.bindings.crypto_scalarmult_base(secret))


def random_bytes(count: int) -> bytes:
    """Cryptographically random bytes (nonces, challenges)."""
    return os.urandom(count)


def seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """XSalsa20-Poly1305 box: MAC (16 bytes) followed by the ciphertext."""
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"nonce must be {NONCE_LEN} bytes")
    return bytes(nacl.bindings.crypto_secretbox(plaintext, nonce, key))


def unseal(key: bytes, nonce: bytes, box: bytes) -> bytes:
    """Open a box; raise DecryptionFailed when it was altered or sealed with another key."""
    try:
        return bytes(nacl.bindings.crypto_secretbox_open(box, nonce, key))
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed(
            "the box does not open with this key (corrupted or foreign)"
        ) from None

"""PINs sealed to a gateway's X25519 public key (libsodium sealed boxes), bound to their code id."""

from __future__ import annotations

import base64
import binascii

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from sync_protocol.errors import ProtocolError, Reason

MAX_PIN_LENGTH = 12


def _plaintext(code_id: str, pin: str) -> bytes:
    return code_id.encode() + b"\x00" + pin.encode()


def check_pin(pin: str) -> str:
    """Return `pin` if it is 4 to 12 ASCII digits, else raise ValueError."""
    if not (4 <= len(pin) <= MAX_PIN_LENGTH and pin.isascii() and pin.isdigit()):
        raise ValueError("a PIN is 4 to 12 digits")
    return pin


def seal_pin(pin: str, code_id: str, recipient: PublicKey) -> str:
    """Encrypt a PIN so only the gateway holding the matching private key can read it."""
    check_pin(pin)
    return base64.b64encode(SealedBox(recipient).encrypt(_plaintext(code_id, pin))).decode()


def unseal_pin(sealed: str, code_id: str, key: PrivateKey) -> str:
    """Decrypt a sealed PIN and check it was sealed for this code."""
    try:
        box = base64.b64decode(sealed, validate=True)
        plain = SealedBox(key).decrypt(box)
    except (binascii.Error, ValueError, CryptoError):
        raise ProtocolError(
            Reason.BAD_SEAL, f"code {code_id}: PIN was not sealed to this gateway's key"
        ) from None
    sealed_for, _, pin_bytes = plain.partition(b"\x00")
    if sealed_for != code_id.encode():
        raise ProtocolError(Reason.BAD_SEAL, f"code {code_id}: PIN was sealed for another code")
    try:
        return check_pin(pin_bytes.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(Reason.BAD_SEAL, f"code {code_id}: sealed PIN is not digits") from None

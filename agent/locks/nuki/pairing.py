"""The pairing state machine (client side), sans-IO: messages in, the next message out.

The gateway pairs as a bridge (id type 1): only a bridge clears the lock's "state changed" beacon
flag when it reads Keyturner States, so the agent can refresh on that flag instead of polling.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum, auto

from agent.locks.nuki import crypto
from agent.locks.nuki.const import CHALLENGE_LEN, Command, ErrorCode, IdType, StatusCode
from agent.locks.nuki.errors import AuthenticationFailed, PairingError, UnexpectedMessage
from agent.locks.nuki.messages import (
    AuthorizationAuthenticator,
    AuthorizationData,
    AuthorizationID,
    AuthorizationIDConfirmation,
    Challenge,
    ErrorReport,
    Message,
    PublicKey,
    RequestData,
    Status,
)

PAIRING_ADVICE = {
    ErrorCode.NOT_PAIRING: "the lock is not in pairing mode: hold its button for 5 s, then retry",
    ErrorCode.BAD_AUTHENTICATOR: "the lock rejected our authenticator (key mismatch); retry",
    ErrorCode.BAD_PARAMETER: "the lock rejected a pairing parameter",
    ErrorCode.MAX_USER: "the lock holds the maximum number of authorizations; remove one first",
}


class PairingStep(Enum):
    """Where the exchange stands."""

    START = auto()
    WAIT_PUBLIC_KEY = auto()
    WAIT_CHALLENGE = auto()
    WAIT_SECOND_CHALLENGE = auto()
    WAIT_AUTHORIZATION_ID = auto()
    WAIT_STATUS = auto()
    DONE = auto()
    FAILED = auto()


@dataclass(frozen=True, slots=True)
class PairingResult:
    """What the agent keeps after pairing (the shared key is a secret)."""

    auth_id: int
    shared_key: bytes = field(repr=False)
    lock_public_key: bytes
    uuid: bytes


class PairingClient:
    """Runs steps 1-6 of the pairing for one attempt; feed it each message from the lock."""

    def __init__(
        self,
        *,
        app_id: int,
        name: str,
        id_type: IdType = IdType.BRIDGE,
        secret_key: bytes | None = None,
        client_nonce: bytes | None = None,
    ) -> None:
        if secret_key is None:
            secret_key, _ = crypto.generate_keypair()
        self.secret_key = secret_key
        self.public_key = crypto.public_key(secret_key)
        self.app_id = app_id
        self.name = name
        self.id_type = id_type
        self._nonce = client_nonce or crypto.random_bytes(CHALLENGE_LEN)
        self.step = PairingStep.START
        self.result: PairingResult | None = None
        self._lock_public: bytes = b""
        self._key: bytes = b""

    def start(self) -> Message:
        """The first message: ask for the lock's public key."""
        if self.step is not PairingStep.START:
            raise PairingError("pairing already started")
        self.step = PairingStep.WAIT_PUBLIC_KEY
        return RequestData(Command.PUBLIC_KEY)

    def receive(self, message: Message) -> Message | None:
        """Advance on a message from the lock; return what to send next (None when done)."""
        if isinstance(message, ErrorReport):
            self.step = PairingStep.FAILED
            advice = PAIRING_ADVICE.get(message.code, "pairing refused")
            raise PairingError(f"{advice} (error {message.code.name})")
        try:
            return self._advance(message)
        except (AuthenticationFailed, UnexpectedMessage):
            self.step = PairingStep.FAILED
            raise

    def _advance(self, message: Message) -> Message | None:
        step = self.step
        if step is PairingStep.WAIT_PUBLIC_KEY and isinstance(message, PublicKey):
            self._lock_public = message.value
            self._key = crypto.shared_key(self._lock_public, self.secret_key)
            self.step = PairingStep.WAIT_CHALLENGE
            return PublicKey(self.public_key)
        if step is PairingStep.WAIT_CHALLENGE and isinstance(message, Challenge):
            self.step = PairingStep.WAIT_SECOND_CHALLENGE
            mac = crypto.authenticator(self._key, self.public_key, self._lock_public, message.value)
            return AuthorizationAuthenticator(mac)
        if step is PairingStep.WAIT_SECOND_CHALLENGE and isinstance(message, Challenge):
            self.step = PairingStep.WAIT_AUTHORIZATION_ID
            signed = AuthorizationData.signed(self.id_type, self.app_id, self.name, self._nonce)
            mac = crypto.authenticator(self._key, signed, message.value)
            return AuthorizationData(mac, self.id_type, self.app_id, self.name, self._nonce)
        if step is PairingStep.WAIT_AUTHORIZATION_ID and isinstance(message, AuthorizationID):
            auth = struct.pack("<I", message.auth_id)
            parts = (auth, message.uuid, message.nonce, self._nonce)
            if not crypto.verify_authenticator(self._key, message.authenticator, *parts):
                raise AuthenticationFailed("the lock's AuthorizationID authenticator is wrong")
            self.result = PairingResult(message.auth_id, self._key, self._lock_public, message.uuid)
            self.step = PairingStep.WAIT_STATUS
            mac = crypto.authenticator(self._key, auth, message.nonce)
            return AuthorizationIDConfirmation(mac, message.auth_id)
        if step is PairingStep.WAIT_STATUS and isinstance(message, Status):
            if message.status != StatusCode.COMPLETE:
                raise UnexpectedMessage(f"pairing ended with status {message.status.name}")
            self.step = PairingStep.DONE
            return None
        raise UnexpectedMessage(f"{type(message).__name__} while {step.name}")

    @property
    def done(self) -> bool:
        """Whether pairing completed."""
        return self.step is PairingStep.DONE

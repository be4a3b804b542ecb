"""The Nuki error tree: transport (radio), protocol (bytes we cannot accept), lock (ErrorReport)."""

from __future__ import annotations

from agent.locks.nuki.const import Command, ErrorCode


class NukiError(Exception):
    """Anything that went wrong talking to a Nuki; `.nuki_id` names the lock when known."""

    def __init__(self, message: str, *, nuki_id: str | None = None) -> None:
        super().__init__(message)
        self.nuki_id = nuki_id


# --- transport ---------------------------------------------------------------------------------


class NukiTransportError(NukiError, ConnectionError):
    """The radio link failed (not found, connect failed, disconnected); retrying may help."""


class NukiNotFound(NukiTransportError):
    """No advert from the lock recently: out of range, or off."""


class NukiDisconnected(NukiTransportError):
    """The link dropped while we were using it."""


class NukiTimeout(NukiTransportError, TimeoutError):
    """The lock did not answer within the named timeout."""


# --- protocol ----------------------------------------------------------------------------------


class NukiProtocolError(NukiError):
    """Bytes or messages we cannot accept."""


class FrameError(NukiProtocolError):
    """One frame is unusable; `.reason` is a stable short token for logs and tests."""

    reason = "bad_frame"


class TruncatedFrame(FrameError):
    """Shorter than its header or its length field says."""

    reason = "truncated"


class BadLength(FrameError):
    """A length field that cannot be right (too large, too small)."""

    reason = "bad_length"


class BadCrc(FrameError):
    """The CRC does not match."""

    reason = "bad_crc"


class DecryptionFailed(FrameError):
    """The box does not open with our key: corrupted, or not for us."""

    reason = "decryption_failed"


class AuthIdMismatch(FrameError):
    """The auth id inside the box differs from the one in the header."""

    reason = "auth_id_mismatch"


class ReplayedFrame(FrameError):
    """A nonce we already saw on this link: a replayed frame."""

    reason = "replayed"


class MalformedMessage(NukiProtocolError):
    """A frame that decoded but whose payload does not fit its command."""

    def __init__(self, command: int, message: str) -> None:
        super().__init__(f"{Command(command).name}: {message}")
        self.command = command


class UnexpectedMessage(NukiProtocolError):
    """A well-formed message that makes no sense at this point of an exchange."""


class AuthenticationFailed(NukiProtocolError):
    """An authenticator (HMAC) from the lock did not verify: not the lock we think it is."""


# --- the lock said no ---------------------------------------------------------------------------


class NukiLockError(NukiError):
    """The lock answered with an ErrorReport; `.code` says which."""

    def __init__(self, code: int, command: int = 0, *, nuki_id: str | None = None) -> None:
        self.code = ErrorCode(code)
        self.command = Command(command)
        super().__init__(
            f"lock reported {self.code.name} ({int(self.code):#04x}) for {self.command.name}",
            nuki_id=nuki_id,
        )


class PairingError(NukiError):
    """Pairing did not complete; the message says what the person should do."""


class NotPairedError(NukiError):
    """No credentials for this lock."""


class ActionUncertain(NukiError):
    """The link failed after a lock action was written: it must be confirmed, never resent blindly.

    `.accepted` says whether the lock had answered ACCEPTED; `.cause` is the transport or frame
    error that interrupted the exchange.
    """

    def __init__(self, cause: NukiError, *, accepted: bool, nuki_id: str | None = None) -> None:
        stage = "after ACCEPTED" if accepted else "after the command was written"
        super().__init__(f"link failed {stage}: {cause}", nuki_id=nuki_id)
        self.cause = cause
        self.accepted = accepted

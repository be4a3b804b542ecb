"""The emulated lock's protocol side, sans-IO: GATT writes in, indications (and link drops) out.

Pairing runs on the pairing GDIO in plaintext; everything else is encrypted on USDIO with the
key of the authorization named in the frame header. Errors found before decryption (unknown
auth id, a box that does not open) go back in plaintext on the keyturner GDIO.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from agent.locks.nuki import crypto, frames
from agent.locks.nuki.channel import PlainChannel
from agent.locks.nuki.const import (
    CHALLENGE_LEN,
    KEYTURNER_GDIO,
    KEYTURNER_USDIO,
    PAIRING_GDIO,
    Action,
    Command,
    ErrorCode,
    IdType,
    StatusCode,
    Trigger,
)
from agent.locks.nuki.errors import FrameError, NukiProtocolError
from agent.locks.nuki.messages import (
    AuthorizationAuthenticator,
    AuthorizationData,
    AuthorizationID,
    AuthorizationIDConfirmation,
    Challenge,
    ErrorReport,
    KeyturnerStates,
    LockAction,
    Message,
    PublicKey,
    RequestData,
    Status,
    command_of,
    parse_message,
)
from simulator.nuki.handlers import CommandHandlers, LockRefusal
from simulator.nuki.model import Authorization, LockWorld, Motion

MAX_AUTHORIZATIONS: Final = 100
MAX_PIN_ATTEMPTS: Final = 3  # wrong PINs before every API client is locked out
PIN_LOCKOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Indicate:
    """Send this frame as indications on a characteristic."""

    characteristic: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class DropLink:
    """Disconnect the central now (fault injection)."""

    why: str


Effect = Indicate | DropLink


@dataclass
class Faults:
    """Protocol-level faults, each applied to the next N lock actions."""

    busy: int = 0
    motor_blocked: int = 0
    drop_on_command: int = 0  # the action never arrives: nothing happens, the link drops
    drop_after_accept: int = 0  # ACCEPTED goes out, the motor runs, the link drops
    silence: int = 0  # the next N encrypted requests get no answer at all


class PairStep(Enum):
    """Where a pairing stands on the lock's side."""

    IDLE = auto()
    PUBLIC_KEY_SENT = auto()
    FIRST_CHALLENGE_SENT = auto()
    SECOND_CHALLENGE_SENT = auto()
    ID_SENT = auto()


@dataclass
class LinkState:
    """What the lock holds for the one connected central."""

    plain: PlainChannel = field(default_factory=PlainChannel)
    pair_step: PairStep = PairStep.IDLE
    client_public: bytes = b""
    key: bytes = b""
    challenge: bytes = b""
    pending_auth: Authorization | None = None
    auth_id: int | None = None  # the authorization last used on this link (for pushes)
    nonce: tuple[int, bytes] | None = None  # the one outstanding keyturner challenge


class NukiLock:
    """One emulated lock; the peripheral feeds it writes and sends what it returns."""

    def __init__(self, world: LockWorld, *, rng: random.Random | None = None) -> None:
        self.world = world
        self.rng = rng or random.SystemRandom()
        self.faults = Faults()
        self.link: LinkState | None = None
        self.outbox: list[Effect] = []
        self.pin_failures = 0
        self.locked_out_until = 0.0
        self.handlers = CommandHandlers(self)
        world.on_states = self._push_states

    def _random(self, count: int) -> bytes:
        return self.rng.randbytes(count)

    # --- connection lifecycle ------------------------------------------------------------------

    def connected(self) -> None:
        """A central connected."""
        self.link = LinkState()

    def disconnected(self) -> None:
        """The central went away; its challenge and pairing die with the link."""
        self.link = None

    def tick(self, now: float) -> list[Effect]:
        """Run the motor schedule; return what to send."""
        self.world.tick(now)
        return self._take()

    def _take(self) -> list[Effect]:
        out, self.outbox = self.outbox, []
        return out

    # --- writes --------------------------------------------------------------------------------

    def write(self, characteristic: str, data: bytes, now: float) -> list[Effect]:
        """A GATT write from the central; return what to send."""
        if self.link is None:
            self.connected()
        if characteristic == PAIRING_GDIO:
            self._pairing_write(data, now)
        elif characteristic == KEYTURNER_USDIO:
            self._encrypted_write(data, now)
        elif characteristic == KEYTURNER_GDIO:
            self._plain_error(ErrorCode.NOT_AUTHORIZED, 0)
        self.world.tick(now)
        return self._take()

    def _send_plain(self, characteristic: str, message: Message) -> None:
        self.outbox.append(
            Indicate(characteristic, frames.encode_plain(command_of(message), message.to_bytes()))
        )

    def _plain_error(
        self, code: ErrorCode, command: int, characteristic: str = KEYTURNER_GDIO
    ) -> None:
        self._send_plain(characteristic, ErrorReport(code, Command(command)))

    def send(self, auth_id: int, message: Message) -> None:
        """Queue an encrypted message for an authorization."""
        auth = self.world.authorizations.get(auth_id)
        if auth is None:
            return
        frame = frames.encode_encrypted(
            auth.shared_key, auth_id, command_of(message), message.to_bytes(), self._random(24)
        )
        self.outbox.append(Indicate(KEYTURNER_USDIO, frame))

    # --- pairing -------------------------------------------------------------------------------

    def _pairing_write(self, data: bytes, now: float) -> None:
        link = self.link
        assert link is not None
        for item in link.plain.feed(data):
            if isinstance(item, FrameError):
                code = ErrorCode.BAD_CRC if item.reason == "bad_crc" else ErrorCode.BAD_LENGTH
                self._plain_error(code, 0, PAIRING_GDIO)
                link.plain.reset()
            elif isinstance(item, NukiProtocolError):
                self._plain_error(ErrorCode.BAD_PARAMETER, 0, PAIRING_GDIO)
            else:
                reply = self._pair_step(link, item, now)
                if reply is not None:
                    self._send_plain(PAIRING_GDIO, reply)

    def _pair_step(self, link: LinkState, message: Message, now: float) -> Message | None:
        world = self.world
        if isinstance(message, RequestData) and message.requested == Command.PUBLIC_KEY:
            if not world.pairing_mode(now):
                return ErrorReport(ErrorCode.NOT_PAIRING, Command.REQUEST_DATA)
            link.pair_step = PairStep.PUBLIC_KEY_SENT
            return PublicKey(crypto.public_key(world.secret_key))
        if link.pair_step is PairStep.PUBLIC_KEY_SENT and isinstance(message, PublicKey):
            link.client_public = message.value
            link.key = crypto.shared_key(message.value, world.secret_key)
            link.challenge = self._random(CHALLENGE_LEN)
            link.pair_step = PairStep.FIRST_CHALLENGE_SENT
            return Challenge(link.challenge)
        if link.pair_step is PairStep.FIRST_CHALLENGE_SENT and isinstance(
            message, AuthorizationAuthenticator
        ):
            lock_public = crypto.public_key(world.secret_key)
            parts = (link.client_public, lock_public, link.challenge)
            if not crypto.verify_authenticator(link.key, message.value, *parts):
                link.pair_step = PairStep.IDLE
                return ErrorReport(ErrorCode.BAD_AUTHENTICATOR, message.COMMAND)
            link.challenge = self._random(CHALLENGE_LEN)
            link.pair_step = PairStep.SECOND_CHALLENGE_SENT
            return Challenge(link.challenge)
        if link.pair_step is PairStep.SECOND_CHALLENGE_SENT and isinstance(
            message, AuthorizationData
        ):
            return self._authorization_data(link, message)
        if link.pair_step is PairStep.ID_SENT and isinstance(message, AuthorizationIDConfirmation):
            auth = link.pending_auth
            assert auth is not None
            signed = (struct.pack("<I", auth.auth_id), link.challenge)
            ok = message.auth_id == auth.auth_id
            if not ok or not crypto.verify_authenticator(link.key, message.authenticator, *signed):
                link.pair_step = PairStep.IDLE
                return ErrorReport(ErrorCode.BAD_AUTHENTICATOR, message.COMMAND)
            world.authorizations[auth.auth_id] = auth
            world.next_auth_id = auth.auth_id + 1
            world.pairing_until = 0.0
            world.config_update_count = (world.config_update_count + 1) % 256
            link.pair_step = PairStep.IDLE
            return Status(StatusCode.COMPLETE)
        link.pair_step = PairStep.IDLE
        return ErrorReport(ErrorCode.BAD_PARAMETER, Command(command_of(message)))

    def _authorization_data(self, link: LinkState, message: AuthorizationData) -> Message:
        world = self.world
        signed = AuthorizationData.signed(
            message.id_type, message.app_id, message.name, message.nonce
        )
        if not crypto.verify_authenticator(link.key, message.authenticator, signed, link.challenge):
            link.pair_step = PairStep.IDLE
            return ErrorReport(ErrorCode.BAD_AUTHENTICATOR, message.COMMAND)
        if len(world.authorizations) >= MAX_AUTHORIZATIONS:
            link.pair_step = PairStep.IDLE
            return ErrorReport(ErrorCode.MAX_USER, message.COMMAND)
        auth_id = world.next_auth_id
        uuid = self._random(16)
        link.pending_auth = Authorization(
            auth_id, message.id_type, message.app_id, message.name, link.key, uuid
        )
        link.challenge = self._random(CHALLENGE_LEN)
        link.pair_step = PairStep.ID_SENT
        auth = struct.pack("<I", auth_id)
        mac = crypto.authenticator(link.key, auth, uuid, link.challenge, message.nonce)
        return AuthorizationID(mac, auth_id, uuid, link.challenge)

    # --- encrypted commands --------------------------------------------------------------------

    def _encrypted_write(self, data: bytes, now: float) -> None:
        link = self.link
        assert link is not None
        try:
            _, auth_id, _ = frames.encrypted_header(data)
        except FrameError:
            self._plain_error(ErrorCode.BAD_LENGTH, 0)
            return
        auth = self.world.authorizations.get(auth_id)
        if auth is None:
            self._plain_error(ErrorCode.INVALID_AUTH_ID, 0)
            return
        try:
            _, command, payload = frames.decode_encrypted(auth.shared_key, data)
            message = parse_message(command, payload)
        except FrameError:
            self._plain_error(ErrorCode.BAD_CRC, 0)
            return
        except NukiProtocolError:
            self.send(auth_id, ErrorReport(ErrorCode.BAD_LENGTH, Command(command)))
            return
        link.auth_id = auth_id
        if self.faults.silence > 0:
            self.faults.silence -= 1
            return
        try:
            self._dispatch(auth, message, now)
        except LockRefusal as refusal:
            self.send(auth_id, ErrorReport(refusal.code, Command(command_of(message))))

    def _dispatch(self, auth: Authorization, message: Message, now: float) -> None:
        link = self.link
        assert link is not None
        if isinstance(message, RequestData):
            if message.requested == Command.CHALLENGE:
                challenge = self._random(CHALLENGE_LEN)
                link.nonce = (auth.auth_id, challenge)
                self.send(auth.auth_id, Challenge(challenge))
                return
            self.handlers.plain_request(auth, message, now)
            return
        nonce = getattr(message, "nonce", None)
        if not isinstance(nonce, bytes) or len(nonce) != CHALLENGE_LEN:
            raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)
        outstanding, link.nonce = link.nonce, None  # single use, even when it does not match
        if outstanding != (auth.auth_id, nonce):
            raise LockRefusal(ErrorCode.BAD_NONCE)
        pin = getattr(message, "pin", None)
        if isinstance(pin, int):
            self._check_pin(pin, now)
        if isinstance(message, LockAction):
            self._lock_action(auth, message, now)
        else:
            self.handlers.command(auth, message, now)

    def _check_pin(self, pin: int, now: float) -> None:
        if now < self.locked_out_until:
            raise LockRefusal(ErrorCode.TOO_MANY_PIN_ATTEMPTS)
        if pin != self.world.security_pin:
            self.pin_failures += 1
            if self.pin_failures >= MAX_PIN_ATTEMPTS:
                self.locked_out_until = now + PIN_LOCKOUT_S
                self.pin_failures = 0
            raise LockRefusal(ErrorCode.BAD_PIN)
        self.pin_failures = 0

    def _lock_action(self, auth: Authorization, message: LockAction, now: float) -> None:
        faults, world = self.faults, self.world
        if faults.drop_on_command > 0:
            faults.drop_on_command -= 1
            self.outbox.append(DropLink("fault: link dropped as the action arrived"))
            return
        if faults.busy > 0 or world.motion is not None:
            faults.busy = max(0, faults.busy - 1)
            raise LockRefusal(ErrorCode.BUSY)
        if not message.action.known:
            raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)
        if world.satisfied(message.action):
            self.send(auth.auth_id, Status(StatusCode.COMPLETE))
            return
        blocked = faults.motor_blocked > 0
        faults.motor_blocked = max(0, faults.motor_blocked - 1)
        self.send(auth.auth_id, Status(StatusCode.ACCEPTED))
        if faults.drop_after_accept > 0:
            faults.drop_after_accept -= 1
            self.outbox.append(DropLink("fault: link dropped after ACCEPTED"))
        suffix = f" {message.name_suffix}" if message.name_suffix else ""
        link = self.link

        def done(motion: Motion, at: float) -> None:
            if self.link is None or self.link is not link:
                return  # the link that asked is gone: nobody to tell
            if motion.blocked:
                self.send(auth.auth_id, ErrorReport(ErrorCode.MOTOR_BLOCKED, Command.LOCK_ACTION))
            else:
                self.send(auth.auth_id, Status(StatusCode.COMPLETE))

        world.start_motion(
            Action(message.action), Trigger.SYSTEM, now,
            auth_id=auth.auth_id, name=auth.name + suffix, blocked=blocked, done=done,
        )  # fmt: skip

    def _push_states(self, states: KeyturnerStates) -> None:
        link = self.link
        if link is not None and link.auth_id is not None:
            self.send(link.auth_id, states)

    def clear_flag_for(self, auth: Authorization) -> None:
        """A bridge read Keyturner States: the beacon's state-changed flag goes down."""
        if auth.id_type == IdType.BRIDGE:
            self.world.state_changed = False

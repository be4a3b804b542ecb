"""Async operations on one connected lock: pairing and the request patterns, with retries.

One operation at a time (the Session enforces it); BAD_NONCE gets one new challenge, BUSY a
capped jittered backoff, a mangled frame one fresh request when the request is idempotent. A
lock action is never resent once written: if the link fails afterwards the caller gets
ActionUncertain and must confirm the outcome from the lock's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from bleak.backends.device import BLEDevice

from agent.locks.nuki import operations as ops
from agent.locks.nuki.channel import EncryptedChannel, PlainChannel
from agent.locks.nuki.const import (
    KEYTURNER_GDIO,
    KEYTURNER_USDIO,
    PAIRING_GDIO,
    Action,
    IdType,
)
from agent.locks.nuki.errors import (
    ActionUncertain,
    FrameError,
    NotPairedError,
    NukiError,
    NukiLockError,
    NukiTransportError,
    PairingError,
    ReplayedFrame,
)
from agent.locks.nuki.keypad_messages import KeypadCode, KeypadCodeID, TimeWindow
from agent.locks.nuki.link import CONNECT_TIMEOUT_S, PIECE_GAP_S, NukiLink
from agent.locks.nuki.log_messages import (
    LogEntry,
)
from agent.locks.nuki.messages import (
    BatteryReport,
    Config,
    KeyturnerStates,
    Message,
)
from agent.locks.nuki.pairing import PairingClient, PairingResult
from agent.locks.nuki.retry import Decision, RetryPolicy, classify
from agent.locks.nuki.session import (
    Accepted,
    Exchange,
    Failed,
    Finished,
    Ignored,
    Outcome,
    Progress,
    Request,
    Send,
    Session,
)
from agent.locks.nuki.store import Credentials

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S: Final = 5.0  # a challenge or a state answer comes within ~1-2 s
ACTION_COMPLETE_TIMEOUT_S: Final = 20.0  # after ACCEPTED: motor ~2 s, COMPLETE after ~3-4 s
PAIRING_TIMEOUT_S: Final = 30.0  # what known clients give a pairing
KEYPAD_PAGE: Final = 100  # codes asked for per RequestKeypadCodes

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every timeout of a client, in seconds (tests shrink them)."""

    reply_s: float = REPLY_TIMEOUT_S
    complete_s: float = ACTION_COMPLETE_TIMEOUT_S
    connect_s: float = CONNECT_TIMEOUT_S
    piece_gap_s: float = PIECE_GAP_S


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How a lock action went: accepted or already satisfied, and the states pushed."""

    accepted: bool
    states: tuple[KeyturnerStates, ...]


class NukiClient:
    """Operations over one NukiLink."""

    def __init__(
        self,
        link: NukiLink,
        credentials: Credentials | None = None,
        *,
        policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.link = link
        self.credentials: Credentials | None = None
        self.policy = policy or RetryPolicy()
        timeouts = timeouts or Timeouts()
        self.reply_timeout_s = timeouts.reply_s
        self.complete_timeout_s = timeouts.complete_s
        self.last_exchange: Exchange | None = None
        self._session: Session | None = None
        if credentials is not None:
            self._use(credentials)

    def _use(self, credentials: Credentials) -> None:
        self.credentials = credentials
        channel = EncryptedChannel(credentials.shared_key, credentials.auth_id)
        self._session = Session(channel)
        self.link.attach(KEYTURNER_USDIO, channel)
        self.link.attach(KEYTURNER_GDIO, PlainChannel())

    async def authorize(self, credentials: Credentials) -> None:
        """Switch a pairing link to the keyturner service with fresh credentials."""
        self._use(credentials)
        await self.link.subscribe([KEYTURNER_USDIO, KEYTURNER_GDIO])

    @classmethod
    async def connect(
        cls,
        device: BLEDevice,
        nuki_id: str,
        credentials: Credentials | None,
        *,
        on_disconnect: Callable[[], None] | None = None,
        policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> NukiClient:
        """Connect to a lock: the keyturner characteristics when paired, else the pairing one."""
        timeouts = timeouts or Timeouts()
        link = NukiLink(
            device,
            nuki_id,
            on_disconnect=on_disconnect,
            piece_gap_s=timeouts.piece_gap_s,
            connect_timeout_s=timeouts.connect_s,
        )
        client = cls(link, credentials, policy=policy, timeouts=timeouts)
        wanted = [KEYTURNER_USDIO, KEYTURNER_GDIO] if credentials else [PAIRING_GDIO]
        await link.connect(wanted)
        return client

    async def close(self) -> None:
        """Disconnect."""
        await self.link.close()

    @property
    def round_trips(self) -> int:
        """Writes made on this link (each waits for the lock's answer)."""
        return self.link.writes

    # --- pairing -------------------------------------------------------------------------------

    async def pair(
        self, *, app_id: int, name: str, timeout_s: float = PAIRING_TIMEOUT_S
    ) -> PairingResult:
        """Pair as a bridge (the lock must be in pairing mode)."""
        channel = PlainChannel()
        self.link.attach(PAIRING_GDIO, channel)
        machine = PairingClient(app_id=app_id, name=name, id_type=IdType.BRIDGE)
        try:
            async with asyncio.timeout(timeout_s):
                message: Message | None = machine.start()
                while message is not None:
                    await self.link.send(PAIRING_GDIO, channel.encode(message))
                    message = machine.receive(await self.link.receive(self.reply_timeout_s))
        except TimeoutError:
            raise PairingError(f"pairing did not finish within {timeout_s} s") from None
        assert machine.result is not None
        return machine.result

    # --- one exchange --------------------------------------------------------------------------

    async def run(
        self, request: Request, on_progress: Callable[[Outcome], None] | None = None
    ) -> tuple[Message, ...]:
        """One attempt of a request; raise NukiLockError, a FrameError or a transport error."""
        session = self._session
        if session is None or self.credentials is None:
            raise NotPairedError(
                f"lock {self.link.nuki_id} is not paired", nuki_id=self.link.nuki_id
            )
        self.link.reset()
        frame = session.begin(request)
        exchange = self.last_exchange = session.current
        assert exchange is not None
        try:
            await self.link.send(KEYTURNER_USDIO, frame)
            while True:
                wait = self.complete_timeout_s if exchange.accepted else self.reply_timeout_s
                try:
                    message = await self.link.receive(wait)
                except ReplayedFrame as exc:
                    log.warning("lock %s: %s (dropped)", self.link.nuki_id, exc)
                    continue
                for outcome in session.handle(message):
                    if isinstance(outcome, Send):
                        await self.link.send(KEYTURNER_USDIO, outcome.frame)
                    elif isinstance(outcome, Finished):
                        return outcome.messages
                    elif isinstance(outcome, Failed):
                        outcome.error.nuki_id = self.link.nuki_id
                        raise outcome.error
                    elif isinstance(outcome, Ignored):
                        log.debug("lock %s: ignored %s", self.link.nuki_id, outcome.message)
                    elif on_progress is not None:
                        on_progress(outcome)
        finally:
            session.abort()

    async def request(self, request: Request) -> tuple[Message, ...]:
        """A request with the retry policy applied."""
        nonce_retries, busy, quick = self.policy.nonce_retries, 0, 0
        while True:
            try:
                return await self.run(request)
            except NukiError as exc:
                decision = classify(exc)
                sent = self.last_exchange is not None and self.last_exchange.command_sent
                if decision is Decision.NEW_CHALLENGE and nonce_retries > 0:
                    nonce_retries -= 1
                elif decision is Decision.BACK_OFF and busy < self.policy.busy_attempts:
                    await asyncio.sleep(self.policy.busy_delay(busy))
                    busy += 1
                elif (
                    decision is Decision.RETRY_NOW
                    and quick < self.policy.quick_attempts
                    and (request.idempotent or not sent)
                    and self.link.connected
                ):
                    quick += 1
                    await asyncio.sleep(self.policy.quick_delay())
                else:
                    raise
                log.info("lock %s: %s, retrying %s", self.link.nuki_id, exc, request.name)

    async def _one(self, request: Request, kind: type[M]) -> M:
        for message in await self.request(request):
            if isinstance(message, kind):
                return message
        raise NukiTransportError(f"{request.name} ended without a {kind.__name__}")

    # --- reads ---------------------------------------------------------------------------------

    async def keyturner_states(self) -> KeyturnerStates:
        """The lock's state (clears the beacon flag: we are a bridge)."""
        return await self._one(ops.keyturner_states(), KeyturnerStates)

    async def battery_report(self) -> BatteryReport:
        """Battery details."""
        return await self._one(ops.battery_report(), BatteryReport)

    async def config(self) -> Config:
        """The lock's configuration."""
        return await self._one(ops.config(), Config)

    def _pin(self) -> int:
        credentials = self.credentials
        if credentials is None or credentials.security_pin is None:
            raise NotPairedError("no security PIN stored: pair again with --pin")
        if credentials.pin_rejected:
            raise NotPairedError(
                "the lock rejected the stored security PIN: set it again with --pin"
            )
        return credentials.security_pin

    async def verify_pin(self) -> None:
        """Check the stored security PIN."""
        await self.request(ops.verify_pin(self._pin()))

    async def update_time(self, when: datetime) -> None:
        """Set the lock's clock."""
        await self.request(ops.update_time(when, self._pin()))

    async def log_entries(self, count: int, start_index: int = 0) -> list[LogEntry]:
        """Up to count entries, newest first, from start_index (0: the newest)."""
        messages = await self.request(ops.log_entries(start_index, count, self._pin()))
        return [m for m in messages if isinstance(m, LogEntry)]

    async def keypad_codes(self) -> list[KeypadCode]:
        """Every keypad code the lock holds."""
        codes: list[KeypadCode] = []
        while True:
            page = await self.request(ops.keypad_codes(len(codes), KEYPAD_PAGE, self._pin()))
            found = [m for m in page if isinstance(m, KeypadCode)]
            codes += found
            if len(found) < KEYPAD_PAGE:
                return codes

    async def add_keypad_code(self, code: int, name: str, window: TimeWindow) -> int:
        """Add a code; return its keypad code id."""
        reply = await self._one(ops.add_keypad_code(code, name, window, self._pin()), KeypadCodeID)
        return reply.code_id

    async def update_keypad_code(
        self, code_id: int, code: int, name: str, window: TimeWindow
    ) -> None:
        """Change a code in place."""
        await self.request(ops.update_keypad_code(code_id, code, name, window, self._pin()))

    async def remove_keypad_code(self, code_id: int) -> None:
        """Delete a code."""
        await self.request(ops.remove_keypad_code(code_id, self._pin()))

    # --- lock actions --------------------------------------------------------------------------

    async def lock_action(
        self,
        action: Action,
        *,
        name_suffix: str | None = None,
        on_state: Callable[[KeyturnerStates], None] | None = None,
    ) -> ActionResult:
        """Do an action once: retried only while the lock has provably not taken it."""
        assert self.credentials is not None
        request = ops.lock_action(action, self.credentials.app_id, name_suffix=name_suffix)
        states: list[KeyturnerStates] = []

        def progress(outcome: Outcome) -> None:
            if isinstance(outcome, Progress) and isinstance(outcome.message, KeyturnerStates):
                states.append(outcome.message)
                if on_state is not None:
                    on_state(outcome.message)
            elif isinstance(outcome, Accepted):
                log.info("lock %s: %s accepted", self.link.nuki_id, action.name)

        nonce_retries, busy, quick = self.policy.nonce_retries, 0, 0
        while True:
            try:
                await self.run(request, progress)
                exchange = self.last_exchange
                return ActionResult(bool(exchange and exchange.accepted), tuple(states))
            except NukiLockError as exc:
                if self.last_exchange is not None and self.last_exchange.accepted:
                    raise  # e.g. motor blocked: the lock tried; never repeat it
                decision = classify(exc)
                if decision is Decision.NEW_CHALLENGE and nonce_retries > 0:
                    nonce_retries -= 1
                elif decision is Decision.BACK_OFF and busy < self.policy.busy_attempts:
                    await asyncio.sleep(self.policy.busy_delay(busy))
                    busy += 1
                else:
                    raise
            except (NukiTransportError, FrameError) as exc:
                exchange = self.last_exchange
                if exchange is not None and exchange.command_sent:
                    raise ActionUncertain(
                        exc, accepted=exchange.accepted, nuki_id=self.link.nuki_id
                    ) from exc
                if not isinstance(exc, FrameError) or quick >= self.policy.quick_attempts:
                    raise
                quick += 1
            log.info("lock %s: retrying %s (not taken yet)", self.link.nuki_id, action.name)


def newest_first(entries: Sequence[LogEntry]) -> list[LogEntry]:
    """Log entries sorted newest first."""
    return sorted(entries, key=lambda e: e.index, reverse=True)

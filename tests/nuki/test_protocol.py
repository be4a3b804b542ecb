"""Pairing and request patterns, sans-IO: our client core against the emulator's lock core."""

from __future__ import annotations

import time

import pytest

from agent.clock import Clock
from agent.locks.nuki import crypto
from agent.locks.nuki import operations as ops
from agent.locks.nuki.channel import EncryptedChannel, PlainChannel, messages_only
from agent.locks.nuki.const import (
    KEYTURNER_GDIO,
    KEYTURNER_USDIO,
    PAIRING_GDIO,
    Action,
    ErrorCode,
    IdType,
    LockState,
    StatusCode,
)
from agent.locks.nuki.errors import AuthenticationFailed, PairingError
from agent.locks.nuki.keypad_messages import KeypadCode, KeypadCodeCount, TimeWindow
from agent.locks.nuki.messages import (
    AuthorizationID,
    Challenge,
    ErrorReport,
    KeyturnerStates,
    Message,
    PublicKey,
    Status,
)
from agent.locks.nuki.pairing import PairingClient, PairingResult
from agent.locks.nuki.session import (
    Accepted,
    Failed,
    Finished,
    Ignored,
    Outcome,
    Request,
    Send,
    Session,
    SessionBusy,
)
from simulator.nuki.lock import Indicate, NukiLock
from simulator.nuki.model import LockWorld

NOW = time.time()
PIN = 2468


def new_lock(**world: object) -> NukiLock:
    secret, _ = crypto.generate_keypair()
    values: dict[str, object] = {"security_pin": PIN, "motor_s": 0.0, "push_interval_s": 0.0}
    values.update(world)
    lock = NukiLock(LockWorld(0x2A3B4C5D, "Nuki_2A3B4C5D", secret, **values))  # type: ignore[arg-type]
    lock.connected()
    return lock


def indications(lock: NukiLock, characteristic: str, frame: bytes) -> list[bytes]:
    """Write a frame; return what the lock indicates, cut in 20-byte pieces."""
    out: list[bytes] = []
    for effect in lock.write(characteristic, frame, NOW) + lock.tick(NOW):
        assert isinstance(effect, Indicate)
        out += [effect.frame[i : i + 20] for i in range(0, len(effect.frame), 20)]
    return out


def pair(lock: NukiLock, id_type: IdType = IdType.BRIDGE) -> PairingResult:
    lock.world.pairing_until = NOW + 30
    client = PairingClient(app_id=5, name="Kasify", id_type=id_type)
    channel = PlainChannel()
    message: Message | None = client.start()
    while message is not None:
        replies = [
            m
            for piece in indications(lock, PAIRING_GDIO, channel.encode(message))
            for m in messages_only(channel.feed(piece))
        ]
        assert len(replies) == 1
        message = client.receive(replies[0])
    assert client.done
    assert client.result is not None
    return client.result


def run(lock: NukiLock, session: Session, request: Request) -> list[Outcome]:
    """Drive one request to its end through the lock; return every outcome."""
    outcomes: list[Outcome] = []
    frame: bytes | None = session.begin(request)
    while frame is not None:
        pending, frame = frame, None
        for piece in indications(lock, KEYTURNER_USDIO, pending):
            for message in messages_only(session.channel.feed(piece)):
                for outcome in session.handle(message):
                    outcomes.append(outcome)
                    if isinstance(outcome, Send):
                        frame = outcome.frame
    return outcomes


def session_for(result: PairingResult) -> Session:
    return Session(EncryptedChannel(result.shared_key, result.auth_id))


def test_pairing_as_a_bridge_gives_both_sides_the_same_key() -> None:
    lock = new_lock()
    result = pair(lock)
    auth = lock.world.authorizations[result.auth_id]
    assert auth.shared_key == result.shared_key
    assert auth.id_type == IdType.BRIDGE
    assert auth.name == "Kasify"
    assert result.lock_public_key == crypto.public_key(lock.world.secret_key)
    assert not lock.world.pairing_mode(NOW)  # pairing mode ends with a pairing


def test_pairing_outside_pairing_mode_is_refused_with_advice() -> None:
    lock = new_lock()
    client, channel = PairingClient(app_id=5, name="Kasify"), PlainChannel()
    [reply] = [
        m
        for piece in indications(lock, PAIRING_GDIO, channel.encode(client.start()))
        for m in messages_only(channel.feed(piece))
    ]
    with pytest.raises(PairingError, match="not in pairing mode"):
        client.receive(reply)


def test_a_lock_with_a_wrong_authenticator_is_not_trusted() -> None:
    client = PairingClient(app_id=5, name="Kasify")
    client.start()
    _lock_secret, lock_public = crypto.generate_keypair()
    client.receive(PublicKey(lock_public))
    client.receive(Challenge(bytes(32)))
    client.receive(Challenge(bytes(32)))
    with pytest.raises(AuthenticationFailed):
        client.receive(AuthorizationID(bytes(32), 3, bytes(16), bytes(32)))


def test_plain_challenge_and_pin_patterns() -> None:
    lock = new_lock()
    session = session_for(pair(lock))
    [done] = run(lock, session, ops.keyturner_states())
    assert isinstance(done, Finished)
    assert isinstance(done.messages[0], KeyturnerStates)
    assert isinstance(run(lock, session, ops.verify_pin(PIN))[-1], Finished)
    assert isinstance(run(lock, session, ops.update_time(Clock.utc(NOW + 3600), PIN))[-1], Finished)
    assert abs(lock.world.lock_time(NOW).timestamp() - (NOW + 3600)) < 3


def test_lock_action_reports_accepted_pushes_and_complete() -> None:
    lock = new_lock()
    session = session_for(pair(lock))
    outcomes = run(lock, session, ops.lock_action(Action.UNLATCH, 5))
    assert isinstance(outcomes[0], Send)
    assert isinstance(outcomes[1], Accepted)
    done = outcomes[-1]
    assert isinstance(done, Finished)
    states = [m.lock_state for m in done.messages if isinstance(m, KeyturnerStates)]
    assert states == [LockState.UNLATCHING, LockState.UNLATCHED, LockState.UNLOCKED]
    again = run(lock, session, ops.lock_action(Action.UNLOCK, 5))
    assert not any(isinstance(o, Accepted) for o in again)  # already satisfied: COMPLETE at once


def test_one_operation_at_a_time_and_interleaving_gives_bad_nonce() -> None:
    lock = new_lock()
    result = pair(lock)
    session = session_for(result)
    session.begin(ops.verify_pin(PIN))
    with pytest.raises(SessionBusy):
        session.begin(ops.keyturner_states())
    # Two clients of the same authorization interleave: the second challenge kills the first.
    first, second = session_for(result), session_for(result)
    challenges = []
    for client in (first, second):
        frame = client.begin(ops.verify_pin(PIN))
        pieces = b"".join(indications(lock, KEYTURNER_USDIO, frame))
        challenges.append(messages_only(client.channel.feed(pieces))[0])
    [send] = first.handle(challenges[0])
    assert isinstance(send, Send)
    answer = b"".join(indications(lock, KEYTURNER_USDIO, send.frame))
    [failed] = first.handle(messages_only(first.channel.feed(answer))[0])
    assert isinstance(failed, Failed)
    assert failed.error.code == ErrorCode.BAD_NONCE


def test_a_stray_status_from_a_previous_exchange_is_never_taken_as_an_answer() -> None:
    lock = new_lock()
    session = session_for(pair(lock))
    session.begin(ops.update_time(Clock.utc(NOW), PIN))
    assert session.handle(Status(StatusCode.COMPLETE)) == [Ignored(Status(StatusCode.COMPLETE))]


def test_keypad_code_list_is_counted() -> None:
    lock = new_lock()
    session = session_for(pair(lock))
    for code in (345678, 456789):
        assert isinstance(
            run(lock, session, ops.add_keypad_code(code, "g", TimeWindow(), PIN))[-1], Finished
        )
    outcomes = run(lock, session, ops.keypad_codes(0, 100, PIN))
    done = next(o for o in outcomes if isinstance(o, Finished))
    assert outcomes[-1] == Ignored(Status(StatusCode.COMPLETE))  # the lock's trailing COMPLETE
    assert isinstance(done.messages[0], KeypadCodeCount)
    assert [c.code for c in done.messages if isinstance(c, KeypadCode)] == [345678, 456789]


def test_wrong_pins_lock_every_client_out() -> None:
    lock = new_lock()
    session = session_for(pair(lock))
    codes = []
    for _ in range(4):
        failed = run(lock, session, ops.verify_pin(PIN + 1))[-1]
        assert isinstance(failed, Failed)
        codes.append(failed.error.code)
    assert codes[:3] == [ErrorCode.BAD_PIN] * 3
    assert codes[3] == ErrorCode.TOO_MANY_PIN_ATTEMPTS
    locked = run(lock, session, ops.verify_pin(PIN))[-1]  # even the right PIN, for a while
    assert isinstance(locked, Failed)
    assert locked.error.code == ErrorCode.TOO_MANY_PIN_ATTEMPTS


def test_only_a_bridge_clears_the_state_changed_flag() -> None:
    lock = new_lock()
    app = session_for(pair(lock, IdType.APP))
    bridge = session_for(pair(lock, IdType.BRIDGE))
    lock.world.manual(Action.UNLOCK, NOW)
    lock.tick(NOW)
    assert lock.world.state_changed
    run(lock, app, ops.keyturner_states())
    assert lock.world.state_changed  # an app never clears it: the battery drain of known clients
    run(lock, bridge, ops.keyturner_states())
    assert not lock.world.state_changed


def test_an_unknown_auth_id_gets_a_plaintext_error_on_gdio() -> None:
    lock = new_lock()
    stranger = EncryptedChannel(bytes(32), 99)
    effects = lock.write(KEYTURNER_USDIO, stranger.encode(Status(StatusCode.COMPLETE)), NOW)
    [effect] = effects
    assert isinstance(effect, Indicate)
    assert effect.characteristic == KEYTURNER_GDIO
    [report] = messages_only(PlainChannel().feed(effect.frame))
    assert isinstance(report, ErrorReport)
    assert report.code == ErrorCode.INVALID_AUTH_ID

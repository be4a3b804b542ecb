"""The emulated lock's answers to plain requests and to challenge (+ PIN) commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.locks.nuki.const import Command, ErrorCode, StatusCode
from agent.locks.nuki.keypad_messages import (
    AddKeypadCode,
    KeypadCode,
    KeypadCodeCount,
    KeypadCodeID,
    RemoveKeypadCode,
    RequestKeypadCodes,
    UpdateKeypadCode,
)
from agent.locks.nuki.log_messages import (
    LogEntryCount,
    RequestLogEntries,
)
from agent.locks.nuki.messages import (
    BatteryReport,
    Config,
    Message,
    RequestConfig,
    RequestData,
    Status,
    UpdateTime,
    VerifySecurityPIN,
)
from simulator.nuki.model import Authorization, StoredCode, code_rule_error

if TYPE_CHECKING:
    from simulator.nuki.lock import NukiLock

FIRMWARE = bytes([3, 6, 4])
HARDWARE = bytes([5, 1])


class LockRefusal(Exception):
    """The lock answers an ErrorReport with this code."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


class CommandHandlers:
    """Answers for one lock."""

    def __init__(self, lock: NukiLock) -> None:
        self.lock = lock

    def plain_request(self, auth: Authorization, message: RequestData, now: float) -> None:
        """RequestData for Keyturner States or the battery report."""
        world = self.lock.world
        if message.requested == Command.KEYTURNER_STATES:
            self.lock.send(auth.auth_id, world.states(now))
            self.lock.clear_flag_for(auth)
        elif message.requested == Command.BATTERY_REPORT:
            voltage = 4200 + int(world.battery_percent * 20)
            report = BatteryReport(
                battery_drain_mws=150, battery_voltage_mv=voltage, critical=world.battery_critical,
                lock_action=int(world.last_action), start_voltage_mv=voltage,
                lowest_voltage_mv=voltage - 120, lock_distance=270, start_temperature_c=21,
                max_turn_current_ma=400, battery_resistance_mohm=210,
            )  # fmt: skip
            self.lock.send(auth.auth_id, report)
        else:
            raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)

    def command(self, auth: Authorization, message: Message, now: float) -> None:
        """A command whose challenge (and PIN) already checked out."""
        world, send = self.lock.world, self.lock.send
        if isinstance(message, VerifySecurityPIN):
            send(auth.auth_id, Status(StatusCode.COMPLETE))
        elif isinstance(message, UpdateTime):
            if message.time is None:
                raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)
            world.set_time(message.time, now)
            send(auth.auth_id, Status(StatusCode.COMPLETE))
        elif isinstance(message, RequestConfig):
            send(auth.auth_id, self._config(now))
        elif isinstance(message, RequestLogEntries):
            self._logs(auth, message)
        elif isinstance(message, AddKeypadCode):
            self._add_code(auth, message, now)
        elif isinstance(message, UpdateKeypadCode):
            self._update_code(auth, message)
        elif isinstance(message, RemoveKeypadCode):
            if world.codes.pop(message.code_id, None) is None:
                raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)
            send(auth.auth_id, Status(StatusCode.COMPLETE))
        elif isinstance(message, RequestKeypadCodes):
            self._list_codes(auth, message)
        else:
            raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)

    def _config(self, now: float) -> Config:
        world = self.lock.world
        rest = bytes([0, 0, 0, 0, 0, 0, 0, 1]) + FIRMWARE + HARDWARE + bytes([0, 0, 0])
        return Config(
            world.nuki_id, world.name, 52.52, 13.40, False, world.pairing_mode(now), True, True, 3,
            world.lock_time(now), 0, rest,
        )  # fmt: skip

    def _logs(self, auth: Authorization, request: RequestLogEntries) -> None:
        world, send = self.lock.world, self.lock.send
        entries = sorted(world.log, key=lambda e: e.index, reverse=request.descending)
        if request.start_index:
            if request.descending:
                entries = [e for e in entries if e.index <= request.start_index]
            else:
                entries = [e for e in entries if e.index >= request.start_index]
        if request.total_count:
            send(auth.auth_id, LogEntryCount(True, len(world.log), True, True))
        for entry in entries[: request.count]:
            send(auth.auth_id, entry)
        send(auth.auth_id, Status(StatusCode.COMPLETE))

    def _check_code(self, code: int, code_id: int | None) -> None:
        if code_rule_error(code) is not None:
            raise LockRefusal(ErrorCode.CODE_INVALID)
        for stored in self.lock.world.codes.values():
            if stored.code == code and stored.code_id != code_id:
                raise LockRefusal(ErrorCode.CODE_ALREADY_EXISTS)

    def _add_code(self, auth: Authorization, message: AddKeypadCode, now: float) -> None:
        world = self.lock.world
        self._check_code(message.code, None)
        if len(world.codes) >= world.capacity:
            raise LockRefusal(ErrorCode.TOO_MANY_ENTRIES)
        code_id = world.next_code_id
        world.next_code_id += 1
        created = world.lock_time(now)
        world.codes[code_id] = StoredCode(
            code_id, message.code, message.name, True, message.window, created
        )
        self.lock.send(auth.auth_id, KeypadCodeID(code_id, created))

    def _update_code(self, auth: Authorization, message: UpdateKeypadCode) -> None:
        stored = self.lock.world.codes.get(message.code_id)
        if stored is None:
            raise LockRefusal(ErrorCode.KEYTURNER_BAD_PARAMETER)
        self._check_code(message.code, message.code_id)
        stored.code, stored.name = message.code, message.name
        stored.enabled, stored.window = message.enabled, message.window
        self.lock.send(auth.auth_id, Status(StatusCode.COMPLETE))

    def _list_codes(self, auth: Authorization, request: RequestKeypadCodes) -> None:
        world, send = self.lock.world, self.lock.send
        codes = sorted(world.codes.values(), key=lambda c: c.code_id)
        send(auth.auth_id, KeypadCodeCount(len(codes)))
        for c in codes[request.offset : request.offset + request.count]:
            send(
                auth.auth_id,
                KeypadCode(
                    c.code_id,
                    c.code,
                    c.name,
                    c.enabled,
                    c.window,
                    c.created,
                    c.last_active,
                    c.lock_count,
                ),
            )
        send(auth.auth_id, Status(StatusCode.COMPLETE))

"""What the dashboard says: states, activity, attention items and errors, in a host's words."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_api.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceError,
    ServiceUnavailable,
    Unauthorized,
)
from cloud_api.models import Role
from cloud_api.schemas.activity import ActivityPublic
from cloud_api.services.access import Permission, roles_with
from cloud_api.services.overview import Attention, AttentionKind
from sync_protocol.models import CodeKind, DeliveryState, DoorState, LockState

LOCK_STATES = {
    LockState.LOCKED: "Locked",
    LockState.UNLOCKING: "Unlocking…",
    LockState.UNLOCKED: "Unlocked",
    LockState.LOCKING: "Locking…",
    LockState.UNLATCHED: "Unlatched",
    LockState.JAMMED: "Jammed",
    LockState.UNKNOWN: "Unknown",
}
DOOR_STATES = {
    DoorState.OPEN: "Open",
    DoorState.CLOSED: "Closed",
    DoorState.NO_SENSOR: "No sensor",
    DoorState.UNKNOWN: "Unknown",
}
# A code's state on a lock, as shown next to it; `unknown` while the gateway cannot tell.
DELIVERY_STATES = {
    DeliveryState.UNSET: "waiting",
    DeliveryState.SETTING: "setting",
    DeliveryState.SET: "set",
    DeliveryState.REMOVING: "removing",
    DeliveryState.FAILED: "failed",
    DeliveryState.UNKNOWN: "not known right now",
}
ROLES = {
    Role.OWNER: "owner",
    Role.MANAGER: "manager",
    Role.CREW: "crew",
    Role.CONTRACTOR: "contractor",
}
METHODS = {
    "gateway_keypad": "at the door keypad",
    "nuki_keypad": "at the Nuki Keypad",
    "unifi_pin": "at the UniFi reader",
    "remote": "remotely",
    "manual": "by hand",
    "auto": "automatically",
}
DENIALS = {
    "unknown_code": "not a valid code",
    "not_yet_valid": "the code is not valid yet",
    "expired": "the code has expired",
    "wrong_lock": "the code does not open this door",
    "no_lock": "no lock is set up for this keypad",
    "clock_untrusted": "the gateway's clock is not confirmed, so time-limited codes wait",
    "locked_out": "the keypad is locked after too many wrong codes",
    "malformed_entry": "the entry was incomplete",
}
FIELDS = {
    "guestName": "Guest name",
    "from": "Check-in",
    "to": "Check-out",
    "guestCount": "Guests",
    "guestEmail": "Guest email",
    "guestPhone": "Guest phone",
    "name": "Name",
    "pin": "PIN",
    "email": "Email",
    "password": "Password",
    "property": "Property",
}


@dataclass(frozen=True, slots=True)
class Line:
    """An activity entry in words; `tone` is ok, deny, warn or info."""

    title: str
    detail: str
    tone: str


def code_owner(entry: ActivityPublic) -> str:
    """Whose code an entry is about."""
    kind = entry.code_kind
    if kind is CodeKind.GUEST and entry.guest_name:
        return entry.guest_name
    if kind is CodeKind.BACKUP:
        return f"{entry.guest_name} (backup code)" if entry.guest_name else "A backup code"
    if kind is CodeKind.CREW:
        return "Crew code"
    if kind is CodeKind.MANAGER:
        return "A manager code"
    return "A code"


def describe(entry: ActivityPublic) -> Line:
    """One activity entry: who, what and how."""
    lock = entry.lock_name or "the door"
    gateway = entry.gateway_name
    details = entry.details
    how = METHODS.get(entry.method or "", "")
    kind = entry.type
    if kind == "access_granted":
        if entry.result == "error":
            error = str(details.get("error", "the lock did not answer"))
            return Line(f"{code_owner(entry)}: code accepted, door did not open", error, "warn")
        return Line(f"{code_owner(entry)} opened {lock}", f"Code typed {how}".strip(), "ok")
    if kind == "access_denied":
        reason = DENIALS.get(str(details.get("reason", "")), "the code was refused")
        who = "" if entry.code_id is None else f" ({code_owner(entry)})"
        return Line(f"Code refused at {lock}{who}", reason.capitalize(), "deny")
    if kind == "keypad_lockout":
        if entry.result == "ended":
            refused = details.get("refused_entries", 0)
            return Line("Keypad unlocked again", f"{refused} entries refused meanwhile", "info")
        seconds = details.get("duration_s")
        wait = f" for {duration(float(seconds))}" if isinstance(seconds, int | float) else ""
        failures = details.get("failures")
        after = f"after {failures} wrong codes" if failures else "after wrong codes"
        return Line(f"Keypad locked{wait}", f"{after.capitalize()} at {lock}", "deny")
    if kind in ("locked", "unlocked"):
        return _lock_action(entry, lock, how)
    if kind == "code_failed":
        error = str(details.get("error") or "no reason given")
        return Line(f"{code_owner(entry)}: code could not be set on {lock}", error, "warn")
    if kind == "backup_code_handed_out":
        guest = entry.guest_name or "A booking"
        return Line(f"{guest} got a backup code", "Their own code could not be set", "info")
    simple = SIMPLE.get(kind)
    if simple is not None:
        title, tone = simple
        return Line(title.format(lock=lock, gateway=gateway), _extra(entry), tone)
    return Line(kind.replace("_", " ").capitalize(), _extra(entry), "info")


SIMPLE = {
    "door_opened": ("{lock}: door opened", "info"),
    "door_closed": ("{lock}: door closed", "info"),
    "tamper": ("Tamper alarm at {lock}", "warn"),
    "keypad_connected": ("Keypad at {lock} connected", "info"),
    "keypad_disconnected": ("Keypad at {lock} disconnected", "warn"),
    "lock_jammed": ("{lock} is jammed", "warn"),
    "lock_online": ("{lock} is reachable again", "info"),
    "lock_offline": ("{lock} cannot be reached", "warn"),
    "battery_low": ("Battery critical on {lock}", "warn"),
    "clock_untrusted": ("Gateway {gateway}: clock not confirmed", "warn"),
    "store_recovered": ("Gateway {gateway} recovered its storage", "warn"),
    "desired_applied": ("Gateway {gateway} has the latest codes", "info"),
    "desired_rejected": ("Gateway {gateway} refused an update", "warn"),
    "command_rejected": ("Gateway {gateway} refused a remote command", "warn"),
    "events_dropped": ("Gateway {gateway} dropped old entries (storage full)", "warn"),
    "gateway_online": ("Gateway {gateway} is online", "ok"),
    "gateway_offline": ("Gateway {gateway} went offline", "warn"),
}


def _extra(entry: ActivityPublic) -> str:
    detail = entry.details.get("detail") or entry.details.get("problem")
    return str(detail) if detail else ""


def _lock_action(entry: ActivityPublic, lock: str, how: str) -> Line:
    details = entry.details
    verb = "locked" if entry.type == "locked" else str(details.get("action") or "unlocked")
    verb = {"unlock": "unlocked", "lock": "locked", "unlatch": "unlatched"}.get(verb, verb)
    by = details.get("requested_by")
    who = f" by {by}" if by else ""
    if entry.result == "failed":
        why = str(details.get("detail") or details.get("reason") or "no reason given")
        return Line(f"Remote action on {lock} failed", why, "warn")
    return Line(f"{lock} {verb}", f"{how}{who}".strip().capitalize(), "info")


def attention_text(item: Attention) -> Line:
    """An attention item: what is wrong and what to do."""
    if item.kind is AttentionKind.GATEWAY_OFFLINE:
        return Line(
            f"Gateway {item.gateway_name} is offline",
            "Codes already on the doors keep working. Check the property's internet and the "
            "gateway's power.",
            "warn",
        )
    if item.kind is AttentionKind.CODE_FAILED:
        whose = item.guest_name or item.task_title or item.code_label or "A code"
        kind = KIND_WORDS.get(item.code_kind, "code") if item.code_kind else "code"
        return Line(
            f"{whose}: {kind} could not be set on {item.lock_name}",
            item.error or "The lock gave no reason.",
            "deny",
        )
    if item.kind is AttentionKind.BATTERY_CRITICAL:
        return Line(
            f"Battery critical on {item.lock_name}",
            "Replace the batteries soon; the lock may stop answering.",
            "warn",
        )
    if item.kind is AttentionKind.LOCK_UNREACHABLE:
        return Line(
            f"{item.lock_name} cannot be reached",
            f"Gateway {item.gateway_name} lost contact with it; check the lock's batteries and "
            "distance.",
            "warn",
        )
    return Line(
        f"Gateway {item.gateway_name}: clock not confirmed",
        "Until it is, time-limited codes follow the gateway's setting for an unconfirmed clock.",
        "warn",
    )


KIND_WORDS = {
    CodeKind.GUEST: "guest code",
    CodeKind.CREW: "crew code",
    CodeKind.MANAGER: "manager code",
    CodeKind.BACKUP: "backup code",
}


def duration(seconds: float) -> str:
    """A span in the largest sensible units: '45 s', '12 min', '3 h 5 min', '2 days 4 h'."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        rest = minutes - hours * 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours - days * 24
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {rest} h" if rest else f"{days} {unit}"


def needed_roles(permission: Permission) -> str:
    """'owner or manager' for MANAGE, and so on."""
    return " or ".join(ROLES[r] for r in roles_with(permission))


def say(exc: ServiceError, subject: str = "it") -> str:
    """An error from a service in words a host acts on; `subject` names what was asked for."""
    if isinstance(exc, PermissionDenied):
        return (
            f"Your role does not allow this. Ask an owner or manager of the property if "
            f"{subject} needs changing."
        )
    if isinstance(exc, NotFound):
        return (
            f"We could not find {subject}. It may have been removed, or you are no longer a "
            "member of its property."
        )
    if isinstance(exc, InvalidInput):
        return f"{FIELDS.get(exc.field, exc.field)}: {exc.message}"
    if isinstance(exc, ServiceUnavailable):
        return "The cloud cannot reach the gateways right now. Please try again in a few seconds."
    if isinstance(exc, Unauthorized):
        return "Your session has ended. Please log in again."
    if isinstance(exc, Conflict):
        return _conflict(exc.detail)
    return exc.detail


def _conflict(detail: str) -> str:
    """Conflicts name API fields and ids; keep the part a host needs."""
    if " is cancelled" in detail:
        return "This booking is cancelled, so it cannot get a code."
    if "no backup code left" in detail:
        return "No backup code is left at this property."
    if "free PIN" in detail:
        return "No free PIN could be found for these dates. Try again, or change the dates."
    if "is offline" in detail:
        return (
            "The gateway is offline, so the door cannot be operated remotely. Check the "
            "property's internet and the gateway's power."
        )
    if "not enrolled" in detail:
        return "The gateway has not been installed yet (see Gateways)."
    if "is already a member of property" in detail:
        return f"{detail.split(' is already', 1)[0]} is already a member of this property."
    if "you are already a member" in detail:
        return "You are already a member of this property."
    if "must keep an owner" in detail:
        return "The property must keep an owner: make another member owner first."
    return detail[:1].upper() + detail[1:]

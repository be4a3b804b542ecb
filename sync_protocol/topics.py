"""MQTT topics of the sync contract, all under ``kasify/v1/gw/{gateway_id}/``."""

from __future__ import annotations

import re
from enum import StrEnum

from sync_protocol.errors import ProtocolError, Reason

PREFIX = "kasify/v1/gw"
SHARED_GROUP = "cloud"
# Gateway ids become MQTT topic levels and certificate CNs: no wildcards, separators or spaces.
GATEWAY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CLOUD_USERNAME = "cloud"


class Channel(StrEnum):
    """The per-gateway topics and who writes them."""

    DESIRED = "desired"  # cloud -> agent, QoS 1, retained, signed DesiredState
    REPORTED = "reported"  # agent -> cloud, QoS 1, retained
    EVENTS = "events"  # agent -> cloud, QoS 1
    PRESENCE = "presence"  # agent -> cloud, QoS 1, retained, last will "offline"
    CMD = "cmd"  # cloud -> agent, QoS 1, signed Command
    CMD_RESULT = "cmd/result"  # agent -> cloud, QoS 1
    ACK = "ack"  # cloud -> agent, QoS 1, signed EventAck: these events are stored


AGENT_WRITES = frozenset({Channel.REPORTED, Channel.EVENTS, Channel.PRESENCE, Channel.CMD_RESULT})
AGENT_READS = frozenset({Channel.DESIRED, Channel.CMD, Channel.ACK})


def check_gateway_id(gateway_id: str) -> str:
    """Return the id if it is safe as a topic level and certificate CN, else raise."""
    if not GATEWAY_ID_RE.fullmatch(gateway_id) or gateway_id == CLOUD_USERNAME:
        raise ProtocolError(
            Reason.WRONG_GATEWAY,
            f"gateway id {gateway_id!r} must be 1-64 letters, digits, '-' or '_' and not "
            f"{CLOUD_USERNAME!r}",
        )
    return gateway_id


def topic(gateway_id: str, channel: Channel) -> str:
    """The topic of one gateway's channel."""
    return f"{PREFIX}/{check_gateway_id(gateway_id)}/{channel.value}"


def parse_topic(name: str) -> tuple[str, Channel]:
    """Split a concrete topic into (gateway id, channel); raise ProtocolError if it is not ours."""
    head = PREFIX + "/"
    if not name.startswith(head):
        raise ProtocolError(Reason.BAD_TOPIC, f"topic {name!r} is not under {head!r}")
    gateway_id, sep, rest = name[len(head) :].partition("/")
    if not sep:
        raise ProtocolError(Reason.BAD_TOPIC, f"topic {name!r} has no channel")
    try:
        channel = Channel(rest)
    except ValueError:
        raise ProtocolError(Reason.BAD_TOPIC, f"topic {name!r}: unknown channel {rest!r}") from None
    return check_gateway_id(gateway_id), channel


def all_gateways(channel: Channel) -> str:
    """A filter matching one channel of every gateway."""
    return f"{PREFIX}/+/{channel.value}"


def shared(topic_filter: str, group: str = SHARED_GROUP) -> str:
    """A shared-subscription filter so several cloud workers split the ingest."""
    return f"$share/{group}/{topic_filter}"

"""Protocol constants of the keypad serial link; PROTOCOL.md is the normative text."""

from __future__ import annotations

from typing import Final

# -- physical ---------------------------------------------------------------------------------
BAUDRATE: Final = 115200  # 8N1 over USB CDC ACM; the rate only matters for a real UART bridge

# -- framing ----------------------------------------------------------------------------------
PROTOCOL_VERSION: Final = 1
DELIMITER: Final = 0x00
HEADER_LEN: Final = 3  # version u8 | type u8 | seq u8
CRC_LEN: Final = 2
MAX_PAYLOAD_LEN: Final = 64  # keeps a frame in one USB full-speed packet and in a small MCU buffer
MIN_FRAME_LEN: Final = HEADER_LEN + CRC_LEN
MAX_FRAME_LEN: Final = HEADER_LEN + MAX_PAYLOAD_LEN + CRC_LEN
# COBS adds one byte per started 254-byte block; a 69-byte frame needs exactly one.
MAX_ENCODED_LEN: Final = MAX_FRAME_LEN + 1
# Types below this value are unreliable (never ACKed or NAKed) in every protocol version.
FIRST_RELIABLE_TYPE: Final = 0x10

# -- reliability ------------------------------------------------------------------------------
SEQ_MODULUS: Final = 256
# Session numbers tell a new session from a retransmitted hello; 16 bits make a restarted peer
# (which picks a random start) unlikely to reuse the session number of its predecessor.
SESSION_MODULUS: Final = 65536
WINDOW: Final = 8  # reliable frames in flight per direction; a relay pulse and feedback go together
MAX_QUEUED: Final = 32  # reliable frames accepted by a sender (in flight + waiting for the window)
# A USB CDC round trip is a few ms; 200 ms absorbs a busy device main loop or a loaded Pi
# without spurious retransmissions, and still retries a lost relay pulse well within a second.
RETRANSMIT_TIMEOUT_S: Final = 0.200
MAX_TRANSMISSIONS: Final = 5  # first transmission + 4 retries: give up after ~1 s of silence

# -- device behaviour -------------------------------------------------------------------------
HEARTBEAT_INTERVAL_S: Final = 1.0  # device status report period; also the host's liveness probe
# The host calls the link down after three missed heartbeats plus scheduling slack.
LINK_TIMEOUT_S: Final = 3.5
KEY_INACTIVITY_TIMEOUT_S: Final = 10.0  # a half-typed code is forgotten after 10 s without keys
RESULT_TIMEOUT_S: Final = 5.0  # a submitted code with no RESULT by then shows "host unreachable"
MIN_CODE_LENGTH: Final = 4  # shorter entries are rejected on the device and never sent
MAX_CODE_LENGTH: Final = 12  # longest code a guest can type; also the KEY_ENTRY payload bound
MIN_PULSE_MS: Final = 50  # shorter pulses do not reliably release a strike
MAX_PULSE_MS: Final = 10_000  # longer pulses overheat a fail-secure strike coil
MAX_INDICATE_MS: Final = 10_000  # bound on an LED indication from the host
MAX_RELAYS: Final = 8  # relay index range on the wire (HEARTBEAT reports relays as a u8 bitmask)

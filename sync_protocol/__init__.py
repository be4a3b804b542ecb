"""The contract between the cloud and the agent: topics, message models, signing and sealing."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1

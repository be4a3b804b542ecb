"""The `[unifi]` table of agent.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenUnavailable(Exception):
    """No usable API token: not configured, or the token file cannot be read."""


class UnifiConfig(BaseModel):
    """The UniFi Access controller on the LAN."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None,
        description="controller base URL, e.g. https://192.168.1.10:12445; when unset, the URL "
        "recorded by `kasify-agent unifi trust` is used",
    )
    token: str | None = Field(default=None, repr=False, description="API token (Bearer)")
    token_file: Path | None = Field(
        default=None, description="file holding the API token (instead of `token`)"
    )
    lock_rule: Literal["lock_now", "keep_lock"] = Field(
        default="lock_now",
        description="what a remote 'lock' asks the controller for: lock_now ends a temporary "
        "unlock, keep_lock keeps the door locked until someone resets the rule",
    )

    def load_token(self) -> str:
        """The configured token (from `token` or `token_file`), stripped; raise TokenUnavailable."""
        raw = self.token
        if raw is None and self.token_file is not None:
            try:
                raw = self.token_file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise TokenUnavailable(
                    f"[unifi] token_file {self.token_file}: cannot read it ({exc})"
                ) from None
        token = (raw or "").strip()
        if token.lower().startswith("bearer "):  # pasted with its header prefix
            token = token[7:].strip()
        if not token:
            raise TokenUnavailable(
                "no UniFi Access API token: set [unifi] token or token_file in agent.toml "
                "(or KASIFY_AGENT_UNIFI__TOKEN); create the token in the UniFi Access app under "
                "Settings > Advanced > API Token"
            )
        return token

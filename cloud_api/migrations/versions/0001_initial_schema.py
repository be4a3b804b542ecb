"""Initial schema: users, tokens, properties, members, gateways, locks, bookings, codes, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(length=36)
ENUM = sa.String(length=16)  # StrEnum values; new members need no migration


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the first cut."""
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "properties",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("check_in_time", sa.Time(), nullable=False),
        sa.Column("check_out_time", sa.Time(), nullable=False),
        sa.Column("early_buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("late_buffer_minutes", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_properties"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("role", ENUM, nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name="fk_memberships_property_id_properties",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_memberships_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "property_id", name="pk_memberships"),
    )
    op.create_index("ix_memberships_property_id", "memberships", ["property_id"])

    op.create_table(
        "gateways",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("enrollment_token_hash", sa.String(length=64), nullable=True),
        _at("enrollment_expires_at", nullable=True),
        _at("enrollment_used_at", nullable=True),
        _at("enrolled_at", nullable=True),
        sa.Column("agent_version", sa.String(length=40), nullable=True),
        sa.Column("cert_serial", sa.String(length=40), nullable=True),
        _at("cert_revoked_at", nullable=True),
        sa.Column("seal_public_key", sa.String(length=64), nullable=True),
        sa.Column("desired_version", sa.Integer(), nullable=False),
        sa.Column("desired_document", sa.LargeBinary(), nullable=True),
        sa.Column("desired_dirty", sa.Boolean(), nullable=False),
        _at("desired_refresh_at", nullable=True),
        _at("desired_published_at", nullable=True),
        sa.Column("reported_state", sa.JSON(), nullable=True),
        _at("reported_at", nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        _at("last_seen_at", nullable=True),
        _at("created_at"),
        _at("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_gateways_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gateways"),
    )
    op.create_index("ix_gateways_property_id", "gateways", ["property_id"])

    op.create_table(
        "smart_locks",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("gateway_id", ID, nullable=False),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("device_ref", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        _at("created_at"),
        _at("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_smart_locks_gateway_id_gateways"
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_smart_locks_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_smart_locks"),
    )
    op.create_index("ix_smart_locks_gateway_id", "smart_locks", ["gateway_id"])
    op.create_index("ix_smart_locks_property_id", "smart_locks", ["property_id"])

    op.create_table(
        "bookings",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("guest_name", sa.String(length=120), nullable=False),
        sa.Column("guest_email", sa.String(length=254), nullable=True),
        sa.Column("guest_phone", sa.String(length=40), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_bookings_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
    )
    op.create_index("ix_bookings_property_id_check_in", "bookings", ["property_id", "check_in"])

    op.create_table(
        "access_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("pin", sa.String(length=12), nullable=False),
        _at("starts_at", nullable=True),
        _at("ends_at", nullable=True),
        sa.Column("status", ENUM, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_access_codes_booking_id_bookings"
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_access_codes_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_access_codes"),
    )
    op.create_index("ix_access_codes_booking_id", "access_codes", ["booking_id"])
    op.create_index("ix_access_codes_property_id_status", "access_codes", ["property_id", "status"])

    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("gateway_id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        _at("occurred_at"),
        _at("received_at"),
        sa.Column("clock_trusted", sa.Boolean(), nullable=False),
        sa.Column("lock_id", ID, nullable=True),
        sa.Column("code_id", ID, nullable=True),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=True),
        sa.Column("result", sa.String(length=40), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_events_booking_id_bookings"
        ),
        sa.ForeignKeyConstraint(
            ["code_id"], ["access_codes.id"], name="fk_events_code_id_access_codes"
        ),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_events_gateway_id_gateways"
        ),
        sa.ForeignKeyConstraint(
            ["lock_id"], ["smart_locks.id"], name="fk_events_lock_id_smart_locks"
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_events_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_gateway_id", "events", ["gateway_id"])
    op.create_index("ix_events_property_id_occurred_at", "events", ["property_id", "occurred_at"])


def downgrade() -> None:
    """Drop every table, dependents first."""
    for table in (
        "events",
        "access_codes",
        "bookings",
        "smart_locks",
        "gateways",
        "memberships",
        "properties",
        "api_tokens",
        "users",
    ):
        op.drop_table(table)

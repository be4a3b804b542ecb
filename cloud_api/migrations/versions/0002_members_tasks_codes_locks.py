"""Members and invitations, tasks, guests, per-lock code state, lock status, integrations,
remote commands, event counts; property settings for check-in gating and backup codes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(length=36)
ENUM = sa.String(length=16)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _new_tables() -> None:
    op.create_table(
        "event_counts",
        sa.Column("property_id", ID, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_event_counts_property_id_properties"
        ),
        sa.PrimaryKeyConstraint("property_id", name="pk_event_counts"),
    )
    op.create_table(
        "invitations",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", ENUM, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", ID, nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("accepted_at", nullable=True),
        sa.Column("accepted_by", ID, nullable=True),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name="fk_invitations_property_id_properties",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name="fk_invitations_invited_by_users"
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["users.id"], name="fk_invitations_accepted_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
    )
    op.create_index("ix_invitations_property_id", "invitations", ["property_id"])
    op.create_table(
        "tasks",
        sa.Column("id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("type", ENUM, nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("notes", sa.String(length=2000), nullable=False),
        _at("starts_at"),
        _at("ends_at"),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("assigned_to", ID, nullable=True),
        sa.Column("needs_access", sa.Boolean(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        _at("started_at", nullable=True),
        _at("completed_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_tasks_property_id_properties"
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_tasks_booking_id_bookings"
        ),
        sa.ForeignKeyConstraint(["assigned_to"], ["users.id"], name="fk_tasks_assigned_to_users"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_tasks_created_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_property_id_start_day", "tasks", ["property_id", "start_day"])
    op.create_index("ix_tasks_assigned_to", "tasks", ["assigned_to"])
    op.create_table(
        "guests",
        sa.Column("id", ID, nullable=False),
        sa.Column("booking_id", ID, nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("last_name", sa.String(length=120), nullable=False),
        sa.Column("document_type", sa.String(length=16), nullable=False),
        sa.Column("document_number", sa.String(length=40), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("registered_by", ID, nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_guests_booking_id_bookings"
        ),
        sa.ForeignKeyConstraint(
            ["registered_by"], ["users.id"], name="fk_guests_registered_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_guests"),
    )
    op.create_index("ix_guests_booking_id", "guests", ["booking_id"])


def _more_tables() -> None:
    op.create_table(
        "code_deliveries",
        sa.Column("code_id", ID, nullable=False),
        sa.Column("lock_id", ID, nullable=False),
        sa.Column("gateway_id", ID, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["code_id"], ["access_codes.id"], name="fk_code_deliveries_code_id_access_codes"
        ),
        sa.ForeignKeyConstraint(
            ["lock_id"], ["smart_locks.id"], name="fk_code_deliveries_lock_id_smart_locks"
        ),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_code_deliveries_gateway_id_gateways"
        ),
        sa.PrimaryKeyConstraint("code_id", "lock_id", name="pk_code_deliveries"),
    )
    op.create_index("ix_code_deliveries_gateway_id", "code_deliveries", ["gateway_id"])
    op.create_table(
        "integrations",
        sa.Column("id", ID, nullable=False),
        sa.Column("type", ENUM, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("gateway_id", ID, nullable=False),
        sa.Column("created_by", ID, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_integrations_gateway_id_gateways"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_integrations_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_integrations"),
        sa.UniqueConstraint("type", "gateway_id", name="uq_integrations_type_gateway_id"),
    )
    op.create_index("ix_integrations_gateway_id", "integrations", ["gateway_id"])
    op.create_table(
        "commands",
        sa.Column("id", ID, nullable=False),
        sa.Column("gateway_id", ID, nullable=False),
        sa.Column("property_id", ID, nullable=False),
        sa.Column("lock_id", ID, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("requested_by", ID, nullable=False),
        _at("issued_at"),
        _at("expires_at"),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        _at("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_commands_gateway_id_gateways"
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_commands_property_id_properties"
        ),
        sa.ForeignKeyConstraint(
            ["lock_id"], ["smart_locks.id"], name="fk_commands_lock_id_smart_locks"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name="fk_commands_requested_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
    )
    op.create_index("ix_commands_gateway_id", "commands", ["gateway_id"])
    op.create_index("ix_commands_lock_id", "commands", ["lock_id"])


def _new_columns() -> None:
    false = sa.false()
    with op.batch_alter_table("properties") as batch:
        batch.add_column(
            sa.Column(
                "guest_registration_required", sa.Boolean(), nullable=False, server_default=false
            )
        )
        batch.add_column(
            sa.Column("backup_code_count", sa.Integer(), nullable=False, server_default="2")
        )
        batch.add_column(_at("deleted_at", nullable=True))
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("guest_count", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(_at("registration_completed_at", nullable=True))
    with op.batch_alter_table("smart_locks") as batch:
        batch.add_column(sa.Column("lock_state", ENUM, nullable=True))
        batch.add_column(sa.Column("battery_charge", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("battery_critical", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("door_state", ENUM, nullable=True))
        batch.add_column(sa.Column("reachable", sa.Boolean(), nullable=False, server_default=false))
        batch.add_column(_at("last_seen_at", nullable=True))
        batch.add_column(_at("status_reported_at", nullable=True))
    with op.batch_alter_table("access_codes") as batch:
        batch.add_column(sa.Column("task_id", ID, nullable=True))
        batch.add_column(sa.Column("holder_user_id", ID, nullable=True))
        batch.add_column(
            sa.Column("label", sa.String(length=40), nullable=False, server_default="")
        )
        batch.add_column(_at("handed_out_at", nullable=True))
        batch.create_foreign_key("fk_access_codes_task_id_tasks", "tasks", ["task_id"], ["id"])
        batch.create_foreign_key(
            "fk_access_codes_holder_user_id_users", "users", ["holder_user_id"], ["id"]
        )
        batch.create_index("ix_access_codes_task_id", ["task_id"])
        batch.create_index("ix_access_codes_holder_user_id", ["holder_user_id"])
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_property_id_occurred_at")
        batch.create_index(
            "ix_events_property_id_occurred_at_id", ["property_id", "occurred_at", "id"]
        )
        batch.create_index("ix_events_task_id", ["task_id"])
    # Existing properties start with the counts of the events they already have.
    op.execute(
        "INSERT INTO event_counts (property_id, count) "
        "SELECT property_id, COUNT(*) FROM events GROUP BY property_id"
    )


def upgrade() -> None:
    """Add the tables and columns of the second cut."""
    _new_tables()
    _more_tables()
    _new_columns()


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_task_id")
        batch.drop_index("ix_events_property_id_occurred_at_id")
        batch.create_index("ix_events_property_id_occurred_at", ["property_id", "occurred_at"])
    with op.batch_alter_table("access_codes") as batch:
        batch.drop_index("ix_access_codes_holder_user_id")
        batch.drop_index("ix_access_codes_task_id")
        batch.drop_constraint("fk_access_codes_holder_user_id_users", type_="foreignkey")
        batch.drop_constraint("fk_access_codes_task_id_tasks", type_="foreignkey")
        for column in ("handed_out_at", "label", "holder_user_id", "task_id"):
            batch.drop_column(column)
    with op.batch_alter_table("smart_locks") as batch:
        for column in (
            "status_reported_at",
            "last_seen_at",
            "reachable",
            "door_state",
            "battery_critical",
            "battery_charge",
            "lock_state",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("registration_completed_at")
        batch.drop_column("guest_count")
    with op.batch_alter_table("properties") as batch:
        for column in ("deleted_at", "backup_code_count", "guest_registration_required"):
            batch.drop_column(column)
    for table in (
        "commands",
        "integrations",
        "code_deliveries",
        "guests",
        "tasks",
        "invitations",
        "event_counts",
    ):
        op.drop_table(table)

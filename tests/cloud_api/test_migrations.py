"""The hand-written migrations produce exactly the models' schema, on each database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cloud_api.db import Base, alembic_config, make_engine, migrate
from tests.cloud_api.conftest import Cloud


def test_migrated_schema_matches_the_models(cloud: Cloud) -> None:
    with cloud.ctx.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == "0002"


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    migrate(engine)
    assert "bookings" in inspect(engine).get_table_names()
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(engine)
    migrate(engine)  # a second upgrade is a no-op
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()

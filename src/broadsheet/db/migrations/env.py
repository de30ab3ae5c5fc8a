"""Alembic environment: runs migrations on the engine handed over in ``config.attributes``."""

from alembic import context

from broadsheet.db.engine import make_engine
from broadsheet.db.schema import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()

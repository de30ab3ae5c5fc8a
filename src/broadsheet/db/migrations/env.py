"""Alembic environment: runs migrations on the engine handed over in ``config.attributes``.

On SQLite foreign keys go unchecked while migrations run (and are checked at the end of a
migration that rebuilds tables): dropping a table to rebuild it would otherwise delete the
rows that refer to it.
"""

from alembic import context

from broadsheet.db.engine import foreign_keys_unchecked, make_engine
from broadsheet.db.schema import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection, foreign_keys_unchecked(connection), connection.begin():
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()

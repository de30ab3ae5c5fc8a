"""Alembic environment: runs migrations on the engine handed over in ``config.attributes``.

On SQLite foreign keys go unchecked while migrations run (and are checked at the end of a
migration that rebuilds tables): dropping a table to rebuild it would otherwise delete the
rows that refer to it.

A run that has work to do holds the migration lock (``db/migrating.py``) from before it reads
the store's revision to its commit, so machines starting on one new store migrate it once.
"""

from alembic import context

from broadsheet.db.engine import foreign_keys_unchecked, make_engine
from broadsheet.db.migrating import FOUND, hold_migration_lock
from broadsheet.db.schema import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection, foreign_keys_unchecked(connection), connection.begin():
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    migration = context.get_context()
    found = migration.get_current_heads()
    heads = set(context.script.get_heads())
    target = context.get_revision_argument()  # "head" comes resolved to the head's revision
    wanted = {target} if isinstance(target, str) else set(target or ())
    if not (set(found) == heads and wanted <= heads | {"head", "heads"}):  # work to do
        hold_migration_lock(connection)
        found = migration.get_current_heads()  # another machine may have migrated meanwhile
    config.attributes[FOUND] = found
    context.run_migrations()

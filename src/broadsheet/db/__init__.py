"""The store: schema, migrations and engine."""

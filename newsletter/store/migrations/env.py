"""Alembic environment: migrations run on the connection the store hands over.

`newsletter` applies migrations automatically when it opens a store (see store/engine.py), so
there is no alembic.ini: the script location and connection come from the Config attributes.
"""

from alembic import context

from newsletter.store.schema import metadata

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()

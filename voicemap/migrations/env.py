"""Alembic's environment: migrates the connection ``voicemap.db`` hands over.

``voicemap.db.upgrade`` (``voicemap db upgrade``, ``db.init_schema``) opens a connection on
the app's engine (SpatiaLite loaded), takes the migration lock and a transaction, and passes
the connection in ``config.attributes["connection"]``; this file only configures Alembic on
it. Batch mode ("move and copy") is on for SQLite, whose ALTER TABLE is limited.
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from voicemap import models
from voicemap.migrations import include_object


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("voicemap's migrations run through voicemap: use `voicemap db "
                           "upgrade` (or voicemap.db.upgrade), not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=models.Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():  # voicemap.db's transaction: nothing of its own
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("voicemap's migrations run on a live database only (they call "
                       "SpatiaLite and PostGIS functions): no --sql mode")
run_migrations_online()

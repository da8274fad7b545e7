"""Alembic environment: run by `storage.migrate.migrate` and by the `alembic` command line.

`migrate` hands over an open connection in `config.attributes["connection"]`. From the command
line (`alembic upgrade head`, `alembic revision --autogenerate -m ...` in the repository root)
the URL comes from `-x url=...`, else `sqlalchemy.url` in alembic.ini, else the bot's settings.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from storage.models import Base

config = context.config
if config.config_file_name is not None:  # the command line: log as alembic.ini says
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite changes columns by copying the table
        transactional_ddl=True,  # the caller wraps everything in one BEGIN IMMEDIATE
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def command_line_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from settings import get_settings  # only the command line reads the settings

    return get_settings().database_url


if context.is_offline_mode():
    context.configure(
        url=command_line_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    from storage.migrate import run_in_migration_transaction

    asyncio.run(run_in_migration_transaction(command_line_url(), run_migrations))

"""Migrates one service database, as its own role: the framework's chain (services/db), the
saga store's chain where the service is the saga store, the service's own chain, then what is
derived from the declarations (publication and grants, replica tables). Each chain keeps its
own version table, so a framework change is one revision for every service."""
from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config

from services.registry import ServiceSpec

FRAMEWORK_MIGRATIONS = Path(__file__).resolve().parent / "db" / "migrations"
VERSION_TABLES = {"framework": "cdc_framework_version", "store": "cdc_saga_store_version", "service": "alembic_version"}


def sqlalchemy_url(dsn: str) -> str:
    """libpq DSN (what `make env` prints) -> SQLAlchemy URL with the psycopg 3 driver."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def alembic_config(script_location: Path, dsn: str, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    cfg.set_main_option("version_table", version_table)
    return cfg


def chains(service: ServiceSpec) -> list[tuple[Path, str]]:
    found = [(FRAMEWORK_MIGRATIONS, VERSION_TABLES["framework"])]
    if service.framework_migrations:
        found.append((service.framework_migrations, VERSION_TABLES["store"]))
    if service.migrations:
        found.append((service.migrations, VERSION_TABLES["service"]))
    return found


def upgrade(service: ServiceSpec, dsn: str) -> None:
    from services.db import publication, replicas
    from streams import spec

    for location, version_table in chains(service):
        command.upgrade(alembic_config(location, dsn, version_table), "head")
    with psycopg.connect(dsn) as conn:
        replicas.sync(conn, [p for p in spec.load_enabled().pairs if p.target.service == service.name])
        publication.sync(conn, service)


def run_env() -> None:
    """Body of every alembic env.py: online migrations, one transaction per migration."""
    from alembic import context
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "alembic config without sqlalchemy.url"
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True,
                          version_table=context.config.get_main_option("version_table") or "alembic_version")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()

"""Runs each service's alembic migrations against its own database, as its own role."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from services.catalog import Service

SERVICES_DIR = Path(__file__).resolve().parent


def sqlalchemy_url(dsn: str) -> str:
    """libpq DSN (what `make env` prints) -> SQLAlchemy URL with the psycopg 3 driver."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def alembic_config(service: Service, dsn: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service.name / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    return cfg


def upgrade(service: Service, dsn: str) -> None:
    command.upgrade(alembic_config(service, dsn), "head")


def run_env() -> None:
    """Body of every service's alembic env.py: online migrations, one transaction."""
    from alembic import context
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "alembic config without sqlalchemy.url"
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()

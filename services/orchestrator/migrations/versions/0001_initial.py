"""orchestrator: business tables, outbox, Debezium signal/heartbeat tables and the publication.

Revision ID: 0001
"""
from alembic import op

from services import catalog
from services.cdc_tables import create_cdc_tables, publish

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SERVICE = catalog.get("orchestrator")


def upgrade() -> None:
    op.execute("""
CREATE TABLE saga_instances (
    id         uuid PRIMARY KEY,
    saga_type  text NOT NULL,
    state      text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
""")
    create_cdc_tables()
    publish(SERVICE.publication, SERVICE.captured_tables)

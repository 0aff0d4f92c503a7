"""The e-commerce example domain: orders owns customer data; payments, inventory, invoicing and
shipping keep what they need of it, keyed by the soft reference orders_customer_id; the
place-order saga runs through all five."""
from __future__ import annotations

from pathlib import Path

from services.ecommerce.orders.events import CUSTOMER_AGGREGATE, ORDER_AGGREGATE
from services.ecommerce.place_order import PLACE_ORDER_SAGA
from services.registry import Domain, ServiceSpec

HERE = Path(__file__).resolve().parent


def _service(name: str, captured: tuple[str, ...], **kw) -> ServiceSpec:
    return ServiceSpec(name, captured_tables=captured, migrations=HERE / name / "migrations", **kw)


def _demo(ctx) -> None:
    from services.ecommerce.demo import run

    run(ctx)


DOMAIN = Domain(
    name="ecommerce",
    description="place-order saga over orders, payments, inventory, invoicing and shipping; customers replicated",
    services=(
        _service("orders", ("customers", "orders", "order_items"), aggregates=(ORDER_AGGREGATE, CUSTOMER_AGGREGATE),
                 private_columns={"customers": ("document_number", "phone")}),
        _service("payments", ("payments",)),
        _service("inventory", ("stock_items",)),
        _service("invoicing", ("invoices",)),
        _service("shipping", ("shipments",)),
    ),
    replication=HERE / "replication.json",
    sagas=(PLACE_ORDER_SAGA,),
    demo=_demo,
)


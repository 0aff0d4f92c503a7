"""Place order, as the business reads it. A failure at any step compensates the steps before
it in reverse; a step that timed out is compensated too (its command may still arrive)."""
from __future__ import annotations

from services.ecommerce.inventory.handlers import HANDLERS as INVENTORY
from services.ecommerce.invoicing.handlers import HANDLERS as INVOICING
from services.ecommerce.orders.events import ORDER_AGGREGATE, OrderPlaced
from services.ecommerce.orders.handlers import HANDLERS as ORDERS
from services.ecommerce.payments.handlers import HANDLERS as PAYMENTS
from services.ecommerce.shipping.handlers import HANDLERS as SHIPPING
from streams.sagas.definition import SagaDefinition, Step
from streams.sagas.plugin import SagaPlugin, SagaStart

PLACE_ORDER = SagaDefinition(
    name="place-order",
    steps=(
        #    step                 participant   command             compensation      what its command carries
        Step(name="create_order", participant="orders", command=None, compensation="RejectOrder",
             carries=("order_id",)),
        Step(name="charge_payment", participant="payments", command="ChargePayment", compensation="RefundPayment",
             carries=("order_id", "customer_id", "total", "credit_limit")),
        Step(name="reserve_stock", participant="inventory", command="ReserveStock", compensation="ReleaseStock",
             carries=("items",)),
        Step(name="issue_invoice", participant="invoicing", command="IssueInvoice", compensation="CancelInvoice",
             carries=("order_id", "customer_id", "total")),
        Step(name="schedule_shipment", participant="shipping", command="ScheduleShipment",
             compensation="CancelShipment", carries=("order_id", "customer_id", "country")),
        Step(name="approve_order", participant="orders", command="ApproveOrder", pivot=True, retries=10,
             carries=("order_id",)),
    ),
)

PLACE_ORDER_SAGA = SagaPlugin(
    definition=PLACE_ORDER,
    start=SagaStart(aggregate=ORDER_AGGREGATE, event_type="OrderPlaced", model=OrderPlaced, key="order_id"),
    handlers={"orders": ORDERS, "payments": PAYMENTS, "inventory": INVENTORY, "invoicing": INVOICING,
              "shipping": SHIPPING},
)

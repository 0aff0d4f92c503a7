"""Place order, as the business reads it. A failure at any step compensates the steps before
it in reverse; a step that timed out is compensated too (its command may still arrive)."""
from __future__ import annotations

from streams.sagas.definition import SagaDefinition, Step

PLACE_ORDER = SagaDefinition(
    name="place-order",
    steps=(
        #    step                 participant   command             compensation
        Step(name="create_order", participant="orders", command=None, compensation="RejectOrder"),
        Step(name="charge_payment", participant="payments", command="ChargePayment", compensation="RefundPayment"),
        Step(name="reserve_stock", participant="inventory", command="ReserveStock", compensation="ReleaseStock"),
        Step(name="issue_invoice", participant="invoicing", command="IssueInvoice", compensation="CancelInvoice"),
        Step(name="schedule_shipment", participant="shipping", command="ScheduleShipment",
             compensation="CancelShipment"),
        Step(name="approve_order", participant="orders", command="ApproveOrder", pivot=True, retries=10),
    ),
)

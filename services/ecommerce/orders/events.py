"""Domain events of the orders service, as its outbox publishes them."""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

ORDER_AGGREGATE = "order"        # outbox.event.order: OrderPlaced
CUSTOMER_AGGREGATE = "customer"  # outbox.event.customer: CustomerRegistered


class OrderLineEvent(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal


class OrderPlaced(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: int
    customer_id: int
    total: Decimal
    country: str
    credit_limit: Decimal
    items: list[OrderLineEvent] = Field(min_length=1)

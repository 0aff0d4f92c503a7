"""The example shop's load for a chaos run and what must hold after it: customers churned in the
orders service (replicated to several services) and place-order sagas whose data says how each
must end (the demo's stories: succeeds, card over its limit, not enough stock, invoice needs
approval, carrier does not serve the country). Every order has its own stock item, so how it
ends depends on its data only, never on the faults or on other orders."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

from services.ecommerce.demo import ORDERS as STORIES
from services.ecommerce.orders.commands import OrderLine, place_order, register_customer

STOCK = 100   # on hand per order's item: the "not enough stock" story orders more
ENDED = ("COMPLETED", "COMPENSATED", "FAILED")


@dataclass(frozen=True)
class Placed:
    order_id: int
    story: str
    sku: str

    @property
    def succeeds(self) -> bool:
        return self.story == "succeeds"


@dataclass
class ShopLoad:
    """Writes in a thread until stopped; a write refused because a database is down is counted
    and tried again later (an order whose commit answer was lost is not counted as placed: the
    saga check covers every saga started during the run)."""

    env: dict[str, str]
    tag: str
    seed: int
    pace_s: float = 1.0
    placed: list[Placed] = field(default_factory=list)
    customer_writes: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _plain: list[int] = field(default_factory=list)  # customers without orders

    def start(self) -> ShopLoad:
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        customers: list[int] = []
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                if rng.random() < 0.5 or not customers:
                    self._order(rng, n, customers)
                else:
                    self._churn(rng, n, customers)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # a database of the shop is down
                self.refused += 1
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {str(exc).strip()[:120]}")
                self._stop.wait(1.0)
            self._stop.wait(self.pace_s)

    def _order(self, rng: random.Random, n: int, customers: list[int]) -> None:
        story, credit, qty, price, country = rng.choice(STORIES)
        sku = f"CHAOS-{self.tag}-{n}"
        with psycopg.connect(self.env["INVENTORY_DATABASE_URL"], autocommit=True, connect_timeout=3) as conn:
            conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, %s)", (sku, STOCK))
        with psycopg.connect(self.env["ORDERS_DATABASE_URL"], connect_timeout=3) as conn:
            cid = register_customer(conn, f"chaos {self.tag} {n}", f"chaos-{self.tag}-{n}@example.org", country,
                                    Decimal(credit))
            customers.append(cid)
            order_id = place_order(conn, cid, [OrderLine(sku, qty, Decimal(price))], country)
        self.placed.append(Placed(order_id, story, sku))

    def _churn(self, rng: random.Random, n: int, customers: list[int]) -> None:
        """A customer of this run inserted, updated (sometimes several times in a row) or deleted
        (only those without orders: an order keeps its customer)."""
        with psycopg.connect(self.env["ORDERS_DATABASE_URL"], autocommit=True, connect_timeout=3) as conn:
            roll = rng.random()
            if roll < 0.3 or not self._plain:
                row = conn.execute("INSERT INTO customers (name, email, country, address) VALUES (%s, %s, %s, %s) "
                                   "RETURNING id", (f"chaos {self.tag} {n}", f"chaos-{self.tag}-{n}@example.org",
                                                    rng.choice(("ES", "GB", "FR")), f"{n} Chaos Road")).fetchone()
                assert row is not None
                self._plain.append(int(row[0]))
            elif roll < 0.85:
                cid = rng.choice(customers + self._plain)
                for i in range(rng.choice((1, 1, 3))):
                    conn.execute("UPDATE customers SET name = %s, address = %s, updated_at = now() WHERE id = %s",
                                 (f"chaos {self.tag} {n}.{i}", rng.choice((None, f"{n} Chaos Street")), cid))
            else:
                conn.execute("DELETE FROM customers WHERE id = %s", (self._plain.pop(rng.randrange(len(self._plain))),))
            self.customer_writes += 1


def _rows(url: str, query: str, params: tuple) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def saga_states(env: dict[str, str], placed: list[Placed]) -> dict[int, str]:
    ids = [str(p.order_id) for p in placed]
    return {int(k): s for k, s in _rows(env["ORCHESTRATOR_OBSERVER_URL"],
                                        "SELECT payload->>'order_id', state FROM saga_instances "
                                        "WHERE payload->>'order_id' = ANY(%s)", (ids,))}


def violations(env: dict[str, str], placed: list[Placed]) -> dict[str, list[str]]:
    """invariant -> what broke it (empty: held), over every order the run placed."""
    ids = [str(p.order_id) for p in placed]
    skus = [p.sku for p in placed]
    sagas = saga_states(env, placed)
    orders = {i: (s, t) for i, s, t in _rows(env["ORDERS_OBSERVER_URL"],
                                             "SELECT id, status, total FROM orders WHERE id::text = ANY(%s)", (ids,))}
    charged: dict[int, Decimal] = {}
    for oid, amount in _rows(env["PAYMENTS_OBSERVER_URL"], "SELECT orders_order_id, amount FROM payments "
                             "WHERE orders_order_id::text = ANY(%s) AND status = 'CHARGED'", (ids,)):
        charged[oid] = charged.get(oid, Decimal(0)) + amount
    stock = {s: (h, r) for s, h, r in _rows(env["INVENTORY_OBSERVER_URL"],
                                            "SELECT sku, on_hand, reserved FROM stock_items WHERE sku = ANY(%s)", (skus,))}
    held: dict[str, int] = {}
    for sku, qty in _rows(env["INVENTORY_OBSERVER_URL"], "SELECT sku, quantity FROM stock_reservations "
                          "WHERE sku = ANY(%s) AND status = 'RESERVED'", (skus,)):
        held[sku] = held.get(sku, 0) + qty
    issued = {o: c for o, c in _rows(env["INVOICING_OBSERVER_URL"], "SELECT orders_order_id, count(*) FROM invoices "
                                     "WHERE orders_order_id::text = ANY(%s) AND status = 'ISSUED' GROUP BY 1", (ids,))}
    shipped = {o: c for o, c in _rows(env["SHIPPING_OBSERVER_URL"], "SELECT orders_order_id, count(*) FROM shipments "
                                      "WHERE orders_order_id::text = ANY(%s) AND status = 'SCHEDULED' GROUP BY 1",
                                      (ids,))}
    out: dict[str, list[str]] = {k: [] for k in (
        "every saga ended", "each order ended as its data says (none that would succeed rejected)",
        "money: charged = total if approved, else 0", "stock: on hand + reserved intact, held = reserved",
        "invoices and shipments: one each if approved, none if rejected")}
    for p in placed:
        saga = sagas.get(p.order_id)
        status, total = orders.get(p.order_id, (None, None))
        if saga not in ENDED:
            out["every saga ended"].append(f"order {p.order_id}: saga {saga}")
            continue
        want = ("COMPLETED", "APPROVED") if p.succeeds else ("COMPENSATED", "REJECTED")
        if (saga, status) != want:
            out["each order ended as its data says (none that would succeed rejected)"].append(
                f"order {p.order_id} ({p.story}): {saga}/{status}, expected {want[0]}/{want[1]}")
        approved = status == "APPROVED"
        if charged.get(p.order_id, Decimal(0)) != (total if approved else Decimal(0)):
            out["money: charged = total if approved, else 0"].append(
                f"order {p.order_id} ({status}): charged {charged.get(p.order_id, 0)}, total {total}")
        on_hand, reserved = stock.get(p.sku, (None, None))
        if on_hand is None or on_hand + reserved != STOCK or held.get(p.sku, 0) != reserved \
                or (not approved and reserved != 0):
            out["stock: on hand + reserved intact, held = reserved"].append(
                f"{p.sku} ({status}): on hand {on_hand}, reserved {reserved}, held {held.get(p.sku, 0)}")
        one = 1 if approved else 0
        if issued.get(p.order_id, 0) != one or shipped.get(p.order_id, 0) != one:
            out["invoices and shipments: one each if approved, none if rejected"].append(
                f"order {p.order_id} ({status}): {issued.get(p.order_id, 0)} issued, "
                f"{shipped.get(p.order_id, 0)} scheduled")
    return out


def wait_ended(env: dict[str, str], placed: list[Placed], within: float) -> dict[int, str]:
    deadline = time.monotonic() + within
    while True:
        states = saga_states(env, placed)
        if all(states.get(p.order_id) in ENDED for p in placed) or time.monotonic() > deadline:
            return states
        time.sleep(2)

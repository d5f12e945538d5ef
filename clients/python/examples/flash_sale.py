"""A show's flash sale, as a partner runs it against caravan.

With `caravan up` running (its development keys in data/dev-keys.txt):

    python clients/python/examples/flash_sale.py --dev-keys data/dev-keys.txt

First, as the organiser's operator, it sets up a small show of its own (two
products, stock, a campaign, a Hema channel, a host, the show with three
units of saffron and two of walnuts) and starts it. Then, as the Hema
partner, it sells it:

1. follows the show's stock live (WatchStock with `show` set);
2. places orders for its buyers — each with a `request_id`, retried with the
   same id, so an order is never placed twice — until saffron sells out;
3. hears INSUFFICIENT_STOCK, decoded from ErrorInfo, for the buyer too late;
4. pays one order, cancels another, and sees the cancelled unit come back on
   the stream and go to the buyer who retried;
5. reads the show's sales report.

Every step checks what caravan answered; the script exits 1 if anything
differs from the contract. Each run uses fresh ids, so it can run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import queue
import sys
import threading
import time

import grpc

from caravan.catalog.v1 import catalog_pb2
from caravan.inventory.v1 import inventory_pb2
from caravan.orders.v1 import orders_pb2
from caravan.scheduling.v1 import scheduling_pb2
from caravan.type.v1 import types_pb2
from caravan_client import ApiKey, Caravan, CaravanError, call, stream

Order = orders_pb2.Order


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"  ok  {what}")


def set_up_show(operator: Caravan, run: str) -> tuple[str, str, str]:
    """The operator's part: products, stock, campaign, channel, host, and
    the show, started. Returns the show's and the two products' names."""
    products = {}
    for slug, title, zh, price in [
        ("saffron", "Saffron, 5 g", "藏红花 5克", 9900),
        ("walnuts", "Walnuts, 500 g", "核桃 500克", 2990),
    ]:
        product = call(
            operator.catalog.CreateProduct,
            catalog_pb2.CreateProductRequest(
                product_id=f"py-{run}-{slug}",
                product=catalog_pb2.Product(
                    country="countries/UZ",
                    category=catalog_pb2.CATEGORY_FOOD,
                    title=types_pb2.LocalizedText(en=title, zh_cn=zh),
                    description=types_pb2.LocalizedText(en=f"{title}, from Uzbekistan", zh_cn=f"乌兹别克斯坦{zh}"),
                    list_price=types_pb2.Money(currency_code="CNY", minor_units=price),
                    unit="jar",
                ),
            ),
        )
        call(operator.catalog.ActivateProduct, catalog_pb2.ActivateProductRequest(name=product.name))
        products[slug] = product.name
    warehouse = call(
        operator.inventory.CreateWarehouse,
        inventory_pb2.CreateWarehouseRequest(
            warehouse_id=f"py-{run}", warehouse=inventory_pb2.Warehouse(display_name="Bonded", priority=1)
        ),
    )
    for name in products.values():
        call(
            operator.inventory.ReceiveStock,
            inventory_pb2.ReceiveStockRequest(product=name, warehouse=warehouse.name, quantity=20),
        )
    today = dt.datetime.now(dt.timezone.utc).date()
    tomorrow = today + dt.timedelta(days=1)
    campaign = call(
        operator.scheduling.CreateCampaign,
        scheduling_pb2.CreateCampaignRequest(
            campaign_id=f"py-{run}",
            campaign=scheduling_pb2.Campaign(
                title=types_pb2.LocalizedText(en="National Nianhuo Festival"),
                organiser="MOFCOM",
                start_date=types_pb2.Date(year=today.year, month=today.month, day=today.day),
                end_date=types_pb2.Date(year=tomorrow.year, month=tomorrow.month, day=tomorrow.day),
                time_zone="UTC",
            ),
        ),
    )
    channel = call(
        operator.scheduling.CreateChannel,
        scheduling_pb2.CreateChannelRequest(
            channel_id=f"py-{run}-hema",
            channel=scheduling_pb2.Channel(platform="hema", display_name="Hema SCO", partner="hema"),
        ),
    )
    host = call(
        operator.scheduling.CreateHost,
        scheduling_pb2.CreateHostRequest(
            host_id=f"py-{run}",
            host=scheduling_pb2.Host(display_name="Akmalkhon Olimkhonov", country="countries/UZ"),
        ),
    )
    start = time.time() + 60
    show = scheduling_pb2.Show(
        campaign=campaign.name,
        channel=channel.name,
        host=host.name,
        title=types_pb2.LocalizedText(en="Uzbekistan on Hema"),
        offers=[
            scheduling_pb2.Offer(
                product=products["saffron"],
                show_price=types_pb2.Money(currency_code="CNY", minor_units=7900),
                allocated_quantity=3,
                per_buyer_limit=2,
            ),
            scheduling_pb2.Offer(
                product=products["walnuts"],
                show_price=types_pb2.Money(currency_code="CNY", minor_units=2490),
                allocated_quantity=2,
            ),
        ],
    )
    show.start_time.FromSeconds(int(start))
    show.end_time.FromSeconds(int(start) + 3600)
    created = call(operator.scheduling.CreateShow, scheduling_pb2.CreateShowRequest(show_id=f"py-{run}", show=show))
    live = call(operator.scheduling.StartShow, scheduling_pb2.StartShowRequest(name=created.name))
    check(live.state == scheduling_pb2.Show.STATE_LIVE, f"the operator started {live.name}")
    return live.name, products["saffron"], products["walnuts"]


def watch(hema: Caravan, show: str, into: "queue.Queue[inventory_pb2.AllocationLine]", stop: threading.Event) -> None:
    """Puts every state of the show's lines into `into` until `stop`."""
    try:
        for message in stream(hema.inventory.WatchStock, inventory_pb2.WatchStockRequest(show=show), timeout=120):
            into.put(message.allocation_line)
            if stop.is_set():
                return
    except CaravanError as error:
        if not stop.is_set():
            print(f"  the stock stream ended: {error}", file=sys.stderr)


def wait_for(lines: "queue.Queue[inventory_pb2.AllocationLine]", product: str, available: int) -> None:
    """Reads the stream until `product`'s line has `available` units left."""
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            break
        if line.product == product and line.available == available:
            check(True, f"the stream showed {product} at {available} left{' (sold out)' if line.sold_out else ''}")
            return
    raise SystemExit(f"FAILED: the stream never showed {product} at {available} left")


def place(hema: Caravan, show: str, buyer: str, product: str, quantity: int, request_id: str) -> Order:
    request = orders_pb2.PlaceOrderRequest(
        buyer=buyer,
        show=show,
        lines=[orders_pb2.PlaceOrderLine(product=product, quantity=quantity)],
        request_id=request_id,
    )
    return call(hema.orders.PlaceOrder, request)


def sell(hema: Caravan, show: str, saffron: str, run: str) -> None:
    lines: "queue.Queue[inventory_pb2.AllocationLine]" = queue.Queue()
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(hema, show, lines, stop), daemon=True)
    watcher.start()
    wait_for(lines, saffron, 3)

    # Buyer 1 takes two; the answer is lost and the partner retries with the
    # same request id: the same order comes back, nothing is placed twice.
    first = place(hema, show, "buyer-1", saffron, 2, f"{run}-order-1")
    check(first.state == Order.STATE_AWAITING_PAYMENT, f"buyer-1's order {first.name} awaits payment")
    check(first.totals[0].minor_units == 2 * 7900, "at the show price: 2 × 79.00 CNY")
    check(first.request_id == f"{run}-order-1", "the order names the request that placed it")
    again = place(hema, show, "buyer-1", saffron, 2, f"{run}-order-1")
    check(again.name == first.name, "the retry with the same request_id answered the same order")

    # Buyer 1 is at the offer's limit of two.
    try:
        place(hema, show, "buyer-1", saffron, 1, f"{run}-order-1b")
        raise SystemExit("FAILED: a third unit was sold to buyer-1")
    except CaravanError as error:
        check(error.reason == "PER_BUYER_LIMIT", f"a third unit for buyer-1: {error.code.name} {error.reason}")

    second = place(hema, show, "buyer-2", saffron, 1, f"{run}-order-2")
    check(second.state == Order.STATE_AWAITING_PAYMENT, "buyer-2 took the last unit")
    wait_for(lines, saffron, 0)

    # Buyer 3 is too late: refused at once, with what is left in ErrorInfo.
    try:
        place(hema, show, "buyer-3", saffron, 1, f"{run}-order-3")
        raise SystemExit("FAILED: an order was accepted for a sold-out offer")
    except CaravanError as error:
        check(
            error.code == grpc.StatusCode.FAILED_PRECONDITION and error.reason == "INSUFFICIENT_STOCK",
            f"buyer-3 refused: {error.reason}, {error.metadata.get('available')} available",
        )
        check(error.metadata.get("product") == saffron and error.metadata.get("show") == show, "ErrorInfo names it")

    paid = call(
        hema.orders.ConfirmPayment, orders_pb2.ConfirmPaymentRequest(name=first.name, payment_reference=f"alipay-{run}")
    )
    check(paid.state == Order.STATE_PAID, f"{paid.name} is paid")
    cancelled = call(hema.orders.CancelOrder, orders_pb2.CancelOrderRequest(name=second.name, reason="changed mind"))
    check(cancelled.state == Order.STATE_CANCELLED, f"{cancelled.name} is cancelled")
    wait_for(lines, saffron, 1)

    # The unit came back: buyer 3's retry (same request id) is evaluated
    # afresh, and placed — once orders has seen the unit back too (within a
    # second, on every replica).
    deadline = time.time() + 5
    while True:
        try:
            third = place(hema, show, "buyer-3", saffron, 1, f"{run}-order-3")
            break
        except CaravanError as error:
            if error.reason != "INSUFFICIENT_STOCK" or time.time() > deadline:
                raise
            time.sleep(0.2)
    check(third.state == Order.STATE_AWAITING_PAYMENT, "buyer-3's retry got the returned unit")
    stop.set()

    report = call(hema.orders.GetShowSalesReport, orders_pb2.GetShowSalesReportRequest(show=show))
    line = next(p for p in report.products if p.product == saffron)
    check(
        (report.units_paid, report.units_awaiting_payment) == (2, 1),
        f"the report: {report.units_paid} units paid, {report.units_awaiting_payment} awaiting payment",
    )
    check(report.revenue_paid[0].minor_units == 15800, "revenue paid: 158.00 CNY")
    # Demand (sell-out time, buyers turned away) is counted in memory and
    # written about once a second: it may lag the orders by a second.
    deadline = time.time() + 5
    while not line.HasField("sold_out_time") and time.time() < deadline:
        time.sleep(0.3)
        report = call(hema.orders.GetShowSalesReport, orders_pb2.GetShowSalesReportRequest(show=show))
        line = next(p for p in report.products if p.product == saffron)
    check(line.HasField("sold_out_time"), "the report says when saffron sold out")
    check(line.turned_away >= 1, f"and that {line.turned_away} order(s) were turned away for lack of it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-keys", default="data/dev-keys.txt", type=pathlib.Path)
    for service, target in Caravan.DEFAULT_TARGETS.items():
        parser.add_argument(f"--{service}", default=target, help=f"{service}'s address (default {target})")
    parser.add_argument("--run", default=str(int(time.time() * 1000) % 10**9), help="suffix of every id created")
    args = parser.parse_args()
    targets = {s: getattr(args, s) for s in Caravan.DEFAULT_TARGETS}
    with Caravan(ApiKey.from_dev_keys(args.dev_keys, "operator"), targets) as operator, Caravan(
        ApiKey.from_dev_keys(args.dev_keys, "partner:hema"), targets
    ) as hema:
        print("setting up a show (operator)")
        show, saffron, _walnuts = set_up_show(operator, args.run)
        print(f"selling {show} (partner hema)")
        sell(hema, show, saffron, args.run)
        call(operator.scheduling.EndShow, scheduling_pb2.EndShowRequest(name=show))
    print("flash sale: every step answered as the contract says")
    return 0


if __name__ == "__main__":
    sys.exit(main())

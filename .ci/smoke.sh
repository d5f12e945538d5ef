#!/usr/bin/env bash
# Starts `caravan up` on spare ports and checks it the way a partner and an SRE
# would: grpcurl (reflection v1alpha) lists each service, health says SERVING,
# and the README's example calls work.
set -euo pipefail
CARAVAN=$1
GRPCURL=$2
DIR=$3
DATASET=$4
cd "$DIR"

# Ports below the ephemeral range (32768+), which outgoing connections of the
# test phases before may still hold.
"$CARAVAN" up --catalog-port 31051 --scheduling-port 31052 --inventory-port 31053 --orders-port 31054 \
  --metrics-port 31464 >up.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT

for port in 31051 31052 31053 31054; do
  for _ in $(seq 1 100); do
    "$GRPCURL" -plaintext -max-time 1 localhost:$port list >/dev/null 2>&1 && break
    sleep 0.1
  done
done

expect() { # expect <port> <service> <words…>
  local port=$1 service=$2
  shift 2
  local out
  out=$("$GRPCURL" -plaintext localhost:$port list)
  for word in "$service" grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection; do
    grep -qx "$word" <<<"$out" || { echo "port $port does not list $word:"; echo "$out"; exit 1; }
  done
  out=$("$GRPCURL" -plaintext -d '{"service":""}' localhost:$port grpc.health.v1.Health/Check)
  grep -q SERVING <<<"$out" || { echo "port $port health: $out"; exit 1; }
}
# Development keys were created on first start; the plain ones are for their owner only.
[ "$(stat -c %a data/dev-keys.txt)" = 600 ] || { echo "data/dev-keys.txt is not mode 0600"; exit 1; }
OPERATOR=$(awk '$1 == "operator" {print $2}' data/dev-keys.txt)
HEMA=$(awk '$1 == "partner:hema" {print $2}' data/dev-keys.txt)
grep -q "$OPERATOR" data/keys.txt && { echo "a plain key is stored in keys.txt"; exit 1; }

expect 31051 caravan.catalog.v1.CatalogService
expect 31052 caravan.scheduling.v1.SchedulingService
expect 31053 caravan.inventory.v1.InventoryService
expect 31054 caravan.orders.v1.OrdersService

# No key: refused; a partner may read the catalog but not create hosts.
if out=$("$GRPCURL" -plaintext -d '{"name":"countries/IR"}' localhost:31051 caravan.catalog.v1.CatalogService/GetCountry 2>&1); then
  echo "GetCountry without a key succeeded: $out"; exit 1
fi
grep -q Unauthenticated <<<"$out" || { echo "GetCountry without a key: $out"; exit 1; }
out=$("$GRPCURL" -plaintext -H "authorization: Bearer $HEMA" -d '{"name":"countries/IR","as_of":{"year":2022,"month":1,"day":10}}' \
  localhost:31051 caravan.catalog.v1.CatalogService/GetCountry)
grep -q SCO_STATUS_OBSERVER <<<"$out" || { echo "GetCountry: $out"; exit 1; }
if out=$("$GRPCURL" -plaintext -H "authorization: Bearer $HEMA" -d '{"host":{"display_name":"X","country":"countries/UZ"}}' \
  localhost:31052 caravan.scheduling.v1.SchedulingService/CreateHost 2>&1); then
  echo "a partner created a host: $out"; exit 1
fi
grep -q PermissionDenied <<<"$out" || { echo "CreateHost as a partner: $out"; exit 1; }
out=$("$GRPCURL" -plaintext -H "authorization: Bearer $OPERATOR" -d '{"host_id":"olimkhonov","host":{"display_name":"Akmalkhon Olimkhonov","title":"Economic Counselor","country":"countries/UZ","embassy":"Embassy of Uzbekistan in China"}}' \
  localhost:31052 caravan.scheduling.v1.SchedulingService/CreateHost)
grep -q '"name": "hosts/olimkhonov"' <<<"$out" || { echo "CreateHost: $out"; exit 1; }
if out=$("$GRPCURL" -plaintext -H "authorization: Bearer $OPERATOR" -d '{"host":{"display_name":"Nobody","country":"countries/ZZ"}}' \
  localhost:31052 caravan.scheduling.v1.SchedulingService/CreateHost 2>&1); then
  echo "CreateHost with an unknown country succeeded: $out"; exit 1
fi
grep -q InvalidArgument <<<"$out" && grep -q '"field":"host.country"' <<<"$out" ||
  { echo "CreateHost unknown country: $out"; exit 1; }

# The festival's dataset loads, and partners page it by country.
"$CARAVAN" catalog import "$DATASET" --catalog localhost:31051 --key "$OPERATOR" --activate >import.txt
grep -q "rows refused 0" import.txt || { echo "import: $(cat import.txt)"; exit 1; }
out=$("$GRPCURL" -plaintext -H "authorization: Bearer $HEMA" -d '{"country":"countries/PK","page_size":500}' \
  localhost:31051 caravan.catalog.v1.CatalogService/ListProducts)
pk=$(grep -c '"name": "products/pk-' <<<"$out" || true)
[ "$pk" -ge 20 ] || { echo "ListProducts by country found $pk Pakistani products"; exit 1; }

# Inventory: the README's receipt, a live watch that sees it, and a flash
# sale of 150 units to 200 reservations through the load generator.
SVC_ORDERS=$(awk '$1 == "service:orders" {print $2}' data/dev-keys.txt)
"$GRPCURL" -plaintext -H "authorization: Bearer $OPERATOR" \
  -d '{"warehouse_id":"sh-bonded","warehouse":{"display_name":"Shanghai bonded warehouse","location":"Waigaoqiao, Shanghai","priority":1}}' \
  localhost:31053 caravan.inventory.v1.InventoryService/CreateWarehouse >/dev/null
"$GRPCURL" -plaintext -H "authorization: Bearer $OPERATOR" \
  -d '{"product":"products/uz-walnuts-organic-500g","warehouse":"warehouses/sh-bonded","quantity":300,"request_id":"receipt-0117"}' \
  localhost:31053 caravan.inventory.v1.InventoryService/ReceiveStock >/dev/null
out=$("$GRPCURL" -plaintext -max-time 2 -H "authorization: Bearer $HEMA" -d '{"products":["products/uz-walnuts-organic-500g"]}' \
  localhost:31053 caravan.inventory.v1.InventoryService/WatchStock 2>&1 || true)
grep -q '"kind": "KIND_SNAPSHOT"' <<<"$out" && grep -q '"available": "300"' <<<"$out" ||
  { echo "WatchStock: $out"; exit 1; }
"$CARAVAN" loadgen --scenario reserve --inventory localhost:31053 --key "$SVC_ORDERS" --operator-key "$OPERATOR" \
  --stock 150 --count 200 --warmup 0s --concurrency 16 >reserve.txt
grep -q "granted 150 of 150" reserve.txt && grep -q "oversold: 0" reserve.txt ||
  { echo "reserve scenario: $(cat reserve.txt)"; exit 1; }

# The flash sale end to end through the load generator: 200 buyers for a
# show offer of 150, checked against the sales report and inventory.
"$CARAVAN" loadgen --scenario order --catalog localhost:31051 --scheduling localhost:31052 --inventory localhost:31053 \
  --orders localhost:31054 --key "$HEMA" --operator-key "$OPERATOR" --stock 150 --count 200 --warmup 0s \
  --concurrency 16 >order.txt
grep -q "placed 150 orders of 150" order.txt && grep -q "oversold: 0" order.txt ||
  { echo "order scenario: $(cat order.txt)"; exit 1; }

# Scheduling: a campaign of today, Hema's channel, the Uzbekistan show with
# two of its specialties starting in 3 s for 7 s; the clock puts it live, the
# host pins a product, and at the end the allocation comes back.
today=$(date -u +%Y-%m-%d)
y=${today:0:4}; m=$((10#${today:5:2})); d=$((10#${today:8:2}))
call() { "$GRPCURL" -plaintext -H "authorization: Bearer $OPERATOR" -d "$2" localhost:$1 "$3"; }
call 31052 "{\"campaign_id\":\"nianhuo\",\"campaign\":{\"title\":{\"en\":\"National Nianhuo Festival\"},\"organiser\":\"MOFCOM\",\"start_date\":{\"year\":$y,\"month\":$m,\"day\":$d},\"end_date\":{\"year\":$y,\"month\":$m,\"day\":$d},\"time_zone\":\"UTC\"}}" \
  caravan.scheduling.v1.SchedulingService/CreateCampaign >/dev/null
call 31052 '{"channel_id":"hema-sco","channel":{"platform":"hema","display_name":"Hema SCO","partner":"hema"}}' \
  caravan.scheduling.v1.SchedulingService/CreateChannel >/dev/null
walnuts=$(grep -o '"id":"uz-walnuts[^"]*"' "$DATASET" | head -1 | cut -d'"' -f4)
raisins=$(grep -o '"id":"uz-raisins[^"]*"' "$DATASET" | head -1 | cut -d'"' -f4)
for p in "$walnuts" "$raisins"; do
  call 31053 "{\"product\":\"products/$p\",\"warehouse\":\"warehouses/sh-bonded\",\"quantity\":100,\"request_id\":\"smoke-$p\"}" \
    caravan.inventory.v1.InventoryService/ReceiveStock >/dev/null
done
start=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ); end=$(date -u -d '+10 seconds' +%Y-%m-%dT%H:%M:%SZ)
# Just before midnight the show would leave today's campaign: skip rather than fail.
if [ "${end:0:10}" = "$today" ]; then
  call 31052 "{\"show_id\":\"uz-on-hema\",\"show\":{\"campaign\":\"campaigns/nianhuo\",\"channel\":\"channels/hema-sco\",\"host\":\"hosts/olimkhonov\",\"title\":{\"en\":\"Uzbekistan on Hema\"},\"start_time\":\"$start\",\"end_time\":\"$end\",\"offers\":[{\"product\":\"products/$walnuts\",\"show_price\":{\"currency_code\":\"CNY\",\"minor_units\":\"2990\"},\"allocated_quantity\":\"40\",\"per_buyer_limit\":\"2\"},{\"product\":\"products/$raisins\",\"show_price\":{\"currency_code\":\"CNY\",\"minor_units\":\"1990\"},\"allocated_quantity\":\"30\"}]}}" \
    caravan.scheduling.v1.SchedulingService/CreateShow >show.json
  grep -q '"state": "STATE_SCHEDULED"' show.json || { echo "CreateShow: $(cat show.json)"; exit 1; }
  state() { call 31052 '{"name":"shows/uz-on-hema"}' caravan.scheduling.v1.SchedulingService/GetShow | grep -o '"state": "[A-Z_]*"'; }
  for _ in $(seq 1 60); do [ "$(state)" = '"state": "STATE_LIVE"' ] && break; sleep 0.2; done
  [ "$(state)" = '"state": "STATE_LIVE"' ] || { echo "the show did not go live: $(state)"; exit 1; }
  call 31052 "{\"name\":\"shows/uz-on-hema\",\"product\":\"products/$walnuts\"}" caravan.scheduling.v1.SchedulingService/PinProduct |
    grep -q "\"pinnedProduct\": \"products/$walnuts\"\|\"pinned_product\": \"products/$walnuts\"" || { echo "PinProduct failed"; exit 1; }
  # The flash sale as a partner runs it: an order at the show price, the
  # per-buyer limit, the payment, and the live sales report.
  hema() { "$GRPCURL" -plaintext -H "authorization: Bearer $HEMA" -d "$2" localhost:$1 "$3"; }
  out=$(hema 31054 "{\"buyer\":\"buyer-42\",\"show\":\"shows/uz-on-hema\",\"lines\":[{\"product\":\"products/$walnuts\",\"quantity\":2}],\"request_id\":\"smoke-order-1\"}" \
    caravan.orders.v1.OrdersService/PlaceOrder)
  grep -q STATE_AWAITING_PAYMENT <<<"$out" && grep -q '"minorUnits": "5980"' <<<"$out" || { echo "PlaceOrder: $out"; exit 1; }
  order=$(grep -o '"name": "orders/[a-z0-9-]*"' <<<"$out" | cut -d'"' -f4)
  again=$(hema 31054 "{\"buyer\":\"buyer-42\",\"show\":\"shows/uz-on-hema\",\"lines\":[{\"product\":\"products/$walnuts\",\"quantity\":2}],\"request_id\":\"smoke-order-1\"}" \
    caravan.orders.v1.OrdersService/PlaceOrder)
  grep -q "\"name\": \"$order\"" <<<"$again" || { echo "a retried PlaceOrder made another order: $again"; exit 1; }
  if out=$(hema 31054 "{\"buyer\":\"buyer-42\",\"show\":\"shows/uz-on-hema\",\"lines\":[{\"product\":\"products/$walnuts\",\"quantity\":1}],\"request_id\":\"smoke-order-2\"}" \
    caravan.orders.v1.OrdersService/PlaceOrder 2>&1); then
    echo "a third unit for buyer-42 was sold: $out"; exit 1
  fi
  grep -q FailedPrecondition <<<"$out" && grep -q PER_BUYER_LIMIT <<<"$out" || { echo "per-buyer limit: $out"; exit 1; }
  out=$(hema 31054 "{\"name\":\"$order\",\"payment_reference\":\"alipay-0001\"}" caravan.orders.v1.OrdersService/ConfirmPayment)
  grep -q STATE_PAID <<<"$out" || { echo "ConfirmPayment: $out"; exit 1; }
  out=$(call 31054 '{"show":"shows/uz-on-hema"}' caravan.orders.v1.OrdersService/GetShowSalesReport)
  grep -q '"unitsPaid": "2"' <<<"$out" && grep -q '"country": "countries/UZ"' <<<"$out" ||
    { echo "GetShowSalesReport: $out"; exit 1; }
  for _ in $(seq 1 100); do
    out=$(call 31053 '{"name":"allocations/uz-on-hema"}' caravan.inventory.v1.InventoryService/GetAllocation)
    grep -q STATE_CLOSED <<<"$out" && break; sleep 0.2
  done
  grep -q STATE_CLOSED <<<"$out" || { echo "the allocation did not come back: $out"; exit 1; }
  [ "$(state)" = '"state": "STATE_ENDED"' ] || { echo "the show did not end: $(state)"; exit 1; }
fi

# The Python partner client's example: a flash sale of its own show, set up
# as the operator and sold as Hema (place, retry, pay, cancel, watch, report).
if [ -n "${PYTHON:-}" ]; then
  "$PYTHON" "$FLASH_SALE" --dev-keys data/dev-keys.txt --catalog localhost:31051 --scheduling localhost:31052 \
    --inventory localhost:31053 --orders localhost:31054 >flash_sale.txt 2>&1 ||
    { echo "the Python flash sale failed:"; cat flash_sale.txt; exit 1; }
  grep -q "every step answered as the contract says" flash_sale.txt || { cat flash_sale.txt; exit 1; }
fi

# One Prometheus endpoint for the process, a service label per service.
curl -fsS http://127.0.0.1:31464/metrics >metrics.txt
for want in 'rpc_server_duration_seconds_count{code="OK",method="caravan.catalog.v1.CatalogService/GetCountry",service="catalog"}' \
            'rpc_client_duration_seconds_count{code="OK",method="caravan.catalog.v1.CatalogService/GetCountry",service="scheduling"}' \
            'rpc_server_duration_seconds_count{code="INVALID_ARGUMENT",method="caravan.scheduling.v1.SchedulingService/CreateHost",service="scheduling"}' \
            'caravan_orders_total{event="accepted"}' 'caravan_stock_units_total{event="reserved"}' \
            'caravan_sold_out_total{pool="show"}' 'caravan_allocations_total{event="returned"}' 'caravan_shows_live' \
            'caravan_db_connections{service="inventory",state="idle"}'; do
  grep -qF "$want" metrics.txt || { echo "metrics lack $want:"; grep rpc_ metrics.txt | head -20; exit 1; }
done
if [ -n "${PROMTOOL:-}" ]; then
  "$PROMTOOL" check metrics <metrics.txt
fi
# Every metric an alert or a dashboard panel queries is on this page.
if [ -n "${CHECK_METRICS:-}" ]; then
  $CHECK_METRICS metrics.txt
fi

kill -TERM $PID
wait $PID || { echo "caravan up did not exit cleanly:"; tail -20 up.log; exit 1; }
trap - EXIT
[ -f data/catalog.db ] && [ -f data/orders.db ] || { echo "no SQLite files under ./data"; exit 1; }
echo "smoke: 4 services listed, SERVING, examples answered, no oversell, metrics scraped, clean exit"

//! Every RPC of every service, fuzzed from the contracts themselves: the
//! test walks caravan's descriptor set, so a new RPC (or a new field) is
//! fuzzed without anyone touching this file.
//!
//! For each RPC and each kind of key, requests are generated and mutated —
//! empty, fields missing, boundary and overflowing integers, huge and
//! NUL-bearing strings, invalid names, forged page tokens, unknown enum
//! values, undecodable bytes — and sent to the four services running on a
//! festival with a live show. Every answer must be a deliberate one: never
//! `INTERNAL` or `UNKNOWN`, never a hang, never a panic, an error reply of a
//! few KiB at most; a refused mutation writes nothing in any database; every
//! service stays SERVING.
//!
//! Deterministic: the generator is seeded (`CARAVAN_FUZZ_SEED` overrides the
//! seed, `CARAVAN_FUZZ_ROUNDS` the requests per RPC and key).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    hash::{Hash as _, Hasher as _},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf as _, BufMut as _};
use caravan_platform::db::Db;
use caravan_platform::{config::ServiceKind, db::query, metrics::code_name};
use caravan_proto::scheduling::v1::StartShowRequest;
use caravan_testkit::{Caller, KeyedChannel, health_status};
use common::festival::{create, festival, show, uzbek_products};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, MethodDescriptor, Value};
use sea_orm_migration::sea_orm::{ConnectionTrait as _, DbBackend};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};
use tonic_health::pb::health_check_response::ServingStatus;

/// A codec that sends and receives bytes as they are, so the test can send
/// any message of any RPC — or bytes that are no message at all.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// A small deterministic generator (xorshift64*).
struct Gen {
    state: u64,
    /// Hostile strings.
    strings: Vec<String>,
    /// Valid names of what the festival holds, by collection.
    names: HashMap<&'static str, Vec<String>>,
    /// Ids handed out for creations.
    fresh: usize,
}

impl Gen {
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn string(&mut self, field: &FieldDescriptor) -> String {
        if field.name() == "request_id" && !self.one_in(4) {
            // A few ids, reused across RPCs and bodies.
            return format!("fuzz-{}", self.below(3));
        }
        let i = self.below(self.strings.len());
        self.strings[i].clone()
    }

    fn single(&mut self, field: &FieldDescriptor, kind: &Kind, depth: u32) -> Value {
        match kind {
            Kind::String => Value::String(self.string(field)),
            Kind::Bytes => Value::Bytes(bytes::Bytes::from(self.string(field).into_bytes())),
            Kind::Bool => Value::Bool(self.one_in(2)),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                Value::I32(self.pick(&[0, 1, -1, 2, 7, 50, 51, 100, 1000, 1001, i32::MAX, i32::MIN]))
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(self.pick(&[
                0,
                1,
                -1,
                2,
                100,
                2990,
                i64::from(i32::MAX) + 1,
                10_000_000_001,
                1 << 62,
                i64::MAX,
                i64::MIN,
                -10_000_000_001,
                1_641_744_000,
                253_402_300_800,
            ])),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(self.pick(&[0, 1, u32::MAX])),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(self.pick(&[0, 1, u64::MAX])),
            Kind::Float => Value::F32(self.pick(&[0.0, -1.0, f32::NAN, f32::INFINITY, 20.5])),
            Kind::Double => Value::F64(self.pick(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1e308, 20.5])),
            Kind::Enum(descriptor) => {
                let mut numbers: Vec<i32> = descriptor.values().map(|v| v.number()).collect();
                numbers.extend([99, -7]);
                Value::EnumNumber(self.pick(&numbers))
            }
            Kind::Message(descriptor) => Value::Message(if depth > 4 {
                DynamicMessage::new(descriptor.clone())
            } else {
                self.message(descriptor, depth + 1)
            }),
        }
    }

    /// A request as a careful partner would write it: names of what exists,
    /// fresh ids, small quantities, dates and instants of the festival.
    fn plausible(&mut self, descriptor: &MessageDescriptor, depth: u32) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields() {
            if field.is_map() || depth > 3 || (field.name().ends_with("etag") || self.one_in(8)) {
                continue;
            }
            let value = if field.is_list() {
                let n = if field.name() == "paths" { 1 } else { 1 + self.below(2) };
                Value::List((0..n).map(|_| self.plausible_single(&field, descriptor, depth)).collect())
            } else {
                self.plausible_single(&field, descriptor, depth)
            };
            message.set_field(&field, value);
        }
        message
    }

    fn plausible_single(&mut self, field: &FieldDescriptor, parent: &MessageDescriptor, depth: u32) -> Value {
        let name = field.name();
        match field.kind() {
            Kind::String => Value::String(self.plausible_string(name, parent)),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(match (parent.name(), name) {
                ("Date", "year") => 2022,
                ("Date", "month") => 1,
                ("Date", "day") => i32::try_from(10 + self.below(20)).unwrap(),
                (_, "nanos") => 0,
                _ => i32::try_from(1 + self.below(5)).unwrap(),
            }),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(match name {
                // 2022-01-10T08:00+08:00 onwards, by the hour.
                "seconds" => 1_641_772_800 + 3600 * i64::try_from(self.below(30)).unwrap(),
                "minor_units" => 2990,
                _ => 1 + i64::try_from(self.below(5)).unwrap(),
            }),
            Kind::Enum(descriptor) => {
                let numbers: Vec<i32> = descriptor.values().map(|v| v.number()).filter(|n| *n != 0).collect();
                Value::EnumNumber(if numbers.is_empty() { 0 } else { self.pick(&numbers) })
            }
            Kind::Message(descriptor) => Value::Message(self.plausible(&descriptor, depth + 1)),
            kind => self.single(field, &kind, depth),
        }
    }

    fn plausible_string(&mut self, field: &str, parent: &MessageDescriptor) -> String {
        let collection = match field {
            "name" => {
                // GetShowRequest → shows, Show → shows, StockLevel → stockLevels.
                let resource = parent.name().trim_end_matches("Request");
                let resource = [
                    "Get", "Update", "Start", "End", "Cancel", "Pin", "Activate", "Retire", "Confirm", "Commit",
                    "Release", "Watch", "Return",
                ]
                .iter()
                .find_map(|verb| resource.strip_prefix(verb))
                .unwrap_or(resource);
                let resource = if resource == "Payment" { "Order" } else { resource };
                let mut plural = resource[..1].to_ascii_lowercase() + &resource[1..];
                plural.push('s');
                return self.name_in(&plural);
            }
            "request_id" => return format!("fuzz-{}", self.below(3)),
            "currency_code" => return "CNY".into(),
            "time_zone" => return "Asia/Shanghai".into(),
            "partner" | "platform" => return "hema".into(),
            "paths" => return "display_name".into(),
            f if f.ends_with("_id") => {
                self.fresh += 1;
                return format!("fz-{}", self.fresh);
            }
            "show" | "shows" => "shows",
            "product" | "products" | "names" | "pinned_product" => "products",
            "country" => "countries",
            "host" => "hosts",
            "channel" => "channels",
            "campaign" => "campaigns",
            "warehouse" => "warehouses",
            "order" => "orders",
            _ => return "Plain text".into(),
        };
        self.name_in(collection)
    }

    /// A name in `collection` the festival holds (else one it does not).
    fn name_in(&mut self, collection: &str) -> String {
        match self.names.get(collection).cloned() {
            Some(names) => self.pick(&names),
            None => format!("{collection}/fz-1"),
        }
    }

    /// A plausible request with one field (at the top or one level down)
    /// set to a hostile value, or left out.
    fn mutated(&mut self, descriptor: &MessageDescriptor) -> DynamicMessage {
        let mut message = self.plausible(descriptor, 0);
        let fields: Vec<FieldDescriptor> = descriptor.fields().collect();
        if fields.is_empty() {
            return message;
        }
        let field = self.pick(&fields);
        if let Kind::Message(inner) = field.kind()
            && !field.is_list()
            && !field.is_map()
            && inner.fields().len() > 0
            && self.one_in(2)
        {
            let mut nested = self.plausible(&inner, 1);
            let target = self.pick(&inner.fields().collect::<Vec<_>>());
            let value = self.hostile(&target, 2);
            nested.set_field(&target, value);
            message.set_field(&field, Value::Message(nested));
        } else if self.one_in(5) {
            message.clear_field(&field);
        } else {
            let value = self.hostile(&field, 1);
            message.set_field(&field, value);
        }
        message
    }

    /// A hostile value for `field`, of its type (a list of them for a
    /// repeated field).
    fn hostile(&mut self, field: &FieldDescriptor, depth: u32) -> Value {
        if field.is_map() {
            return Value::Map(HashMap::new());
        }
        if field.is_list() {
            let n = self.pick(&[0, 1, 2, 120]);
            return Value::List((0..n).map(|_| self.single(field, &field.kind(), depth)).collect());
        }
        self.single(field, &field.kind(), depth)
    }

    /// A message of `descriptor` with some fields set, each to a value from
    /// the pools (a third are left missing).
    fn message(&mut self, descriptor: &MessageDescriptor, depth: u32) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields() {
            if self.one_in(3) {
                continue;
            }
            let value = if field.is_map() {
                let Kind::Message(entry) = field.kind() else { continue };
                let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                let mut map = HashMap::new();
                for _ in 0..self.below(3) {
                    let key = match self.single(&key, &key.kind(), depth) {
                        Value::String(s) => MapKey::String(s),
                        Value::I32(n) => MapKey::I32(n),
                        Value::I64(n) => MapKey::I64(n),
                        Value::U32(n) => MapKey::U32(n),
                        Value::U64(n) => MapKey::U64(n),
                        Value::Bool(b) => MapKey::Bool(b),
                        _ => continue,
                    };
                    map.insert(key, self.single(&value, &value.kind(), depth));
                }
                Value::Map(map)
            } else if field.is_list() {
                let n = self.pick(&[0, 1, 2, 3, 17, 120]);
                Value::List((0..n).map(|_| self.single(&field, &field.kind(), depth)).collect())
            } else {
                self.single(&field, &field.kind(), depth)
            };
            message.set_field(&field, value);
        }
        message
    }
}

/// Strings a partner might send: names of what the festival holds and of
/// nothing, malformed names, NULs, control characters, huge texts, forged
/// page tokens, codes and zones real and not.
fn string_pool(products: &[String]) -> Vec<String> {
    let mut pool: Vec<String> = [
        "",
        " ",
        "a",
        "uz-on-hema",
        "fuzz-new-1",
        "shows/uz-on-hema",
        "shows/nope",
        "countries/UZ",
        "countries/ZZ",
        "countries/uz",
        "hosts/olimkhonov",
        "hosts/nope",
        "channels/hema-sco",
        "campaigns/nianhuo-2022",
        "warehouses/sh-bonded",
        "warehouses/nope",
        "orders/o123",
        "reservations/r1",
        "movements/1",
        "products/",
        "products/a/b",
        "PRODUCTS/X",
        "../../etc/passwd",
        "a\u{0}b",
        "shows/uz-on-hema\u{0}",
        "\u{7}\r\n",
        "🍵 茶",
        "'; DROP TABLE orders; --",
        "%s%n%x",
        "-1",
        "99999999999999999999",
        "CNY",
        "XXX",
        "cny",
        "UZ",
        "Asia/Shanghai",
        "Mars/Olympus",
        "hema",
        "douyin",
        "display_name",
        "*",
        "title.en",
        "zz",
        "2022-01-10",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for product in products.iter().take(3) {
        pool.push(format!("products/{product}"));
        pool.push(format!("stockLevels/{product}"));
    }
    pool.push(format!("shows/{}", "x".repeat(300)));
    pool.push("x".repeat(70_000));
    pool.push("é".repeat(5_000));
    // Page tokens: not hex, hex of a key without a filter, a forged digest.
    pool.push(hex::encode("k1:zzz"));
    pool.push(hex::encode("k1:0000000000000000|zzz"));
    pool.push(hex::encode("k1:\u{0}"));
    pool
}

/// Requests that are no message of their RPC: truncated, bad wire types,
/// invalid UTF-8 in a string field.
const UNDECODABLE: [&[u8]; 4] = [&[0xff, 0xff, 0xff, 0xff], &[0x0a, 0x80], &[0x0a, 0x02, 0xc3, 0x28], &[0x08]];

/// Largest error reply (message + details) the test accepts.
const MAX_ERROR_REPLY: usize = 8 * 1024;

fn service_of(service: &str) -> Option<ServiceKind> {
    match service.split('.').nth(1)? {
        "catalog" => Some(ServiceKind::Catalog),
        "scheduling" => Some(ServiceKind::Scheduling),
        "inventory" => Some(ServiceKind::Inventory),
        "orders" => Some(ServiceKind::Orders),
        _ => None,
    }
}

/// Whether a method only reads (its refusal cannot have written anything
/// either way, so it is not checked against the databases).
fn reads_only(method: &MethodDescriptor) -> bool {
    ["Get", "List", "Watch", "BatchGet", "Search"].iter().any(|prefix| method.name().starts_with(prefix))
}

/// Tables whose rows a refusal may legitimately write: request ids'
/// records (a refusal is an outcome to replay), the demand turned away,
/// and the migrations' bookkeeping.
fn is_bookkeeping(table: &str) -> bool {
    table == "idempotency_records" || table == "offer_demand" || table.ends_with("migrations")
}

/// A digest of every row of every table of a service's database (but its
/// bookkeeping), in one query.
struct Digest {
    db: Db,
    query: String,
}

impl Digest {
    async fn new(db: Db) -> Digest {
        let backend = db.get_database_backend();
        let tables_sql = match backend {
            DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            _ => "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
        };
        let mut parts = Vec::new();
        for row in query(&db, tables_sql, Vec::new()).await.unwrap() {
            let table: String = row.try_get_by_index(0).unwrap();
            if is_bookkeeping(&table) {
                continue;
            }
            let columns_sql = match backend {
                DbBackend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
                _ => format!(
                    "SELECT column_name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
                ),
            };
            let columns: Vec<String> = query(&db, &columns_sql, Vec::new())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect();
            let row = columns
                .iter()
                .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '~')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            parts.push(format!("SELECT '{table}|' || {row} FROM \"{table}\""));
        }
        assert!(!parts.is_empty(), "the database has tables to watch");
        Digest { db, query: parts.join(" UNION ALL ") }
    }

    async fn take(&self) -> u64 {
        let mut rows: Vec<String> = query(&self.db, &self.query, Vec::new())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect();
        rows.sort();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        rows.hash(&mut hasher);
        hasher.finish()
    }
}

/// The digests of all four databases.
async fn digests(all: &[(ServiceKind, Digest)]) -> Vec<u64> {
    let mut taken = Vec::with_capacity(all.len());
    for (_, digest) in all {
        taken.push(digest.take().await);
    }
    taken
}

/// Waits until what an accepted call set off in the background (a saga, a
/// flush) has settled: two digests in a row agree.
async fn settled(all: &[(ServiceKind, Digest)]) -> Vec<u64> {
    let started = Instant::now();
    let mut last = digests(all).await;
    loop {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let now = digests(all).await;
        if now == last || started.elapsed() > Duration::from_secs(3) {
            return now;
        }
        last = now;
    }
}

/// Sends `body` to `path` as `caller` (or with no key); the answer's code
/// and, for an error, its reply size.
async fn send(
    addr: std::net::SocketAddr,
    caller: Option<Caller>,
    path: &str,
    streaming: bool,
    body: Vec<u8>,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(KeyedChannel::new(addr, caller));
    grpc.ready().await.unwrap();
    let path = PathAndQuery::try_from(path.to_owned()).unwrap();
    let mut request = tonic::Request::new(body);
    request.set_timeout(Duration::from_secs(10));
    let call = async {
        if streaming {
            let mut stream = grpc.server_streaming(request, path, Raw).await?.into_inner();
            // The first message (a snapshot), or an error; an open stream
            // with nothing to say yet is fine.
            match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
                Ok(Err(status)) => Err(status),
                _ => Ok(()),
            }
        } else {
            grpc.unary(request, path, Raw).await.map(|_| ())
        }
    };
    match tokio::time::timeout(Duration::from_secs(15), call).await {
        Ok(Ok(())) => Status::ok(""),
        Ok(Err(status)) => status,
        Err(_) => Status::deadline_exceeded("the test gave up waiting: the server hung"),
    }
}

#[tokio::test]
async fn every_rpc_answers_every_malformed_request_deliberately() {
    let seed: u64 = std::env::var("CARAVAN_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x00c0_ffee);
    let rounds: usize = std::env::var("CARAVAN_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);

    // A handler that panics would be caught by the server and answered
    // somehow; counting panics makes one fail the test.
    let panics = Arc::new(AtomicUsize::new(0));
    let previous = std::panic::take_hook();
    let counted = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    // A festival with a live show on Hema: names in the pools point at real things.
    let mut festival = festival().await;
    let products = uzbek_products();
    let line_up = [(products[0].as_str(), 5), (products[1].as_str(), 3)];
    festival.scheduling.create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &line_up))).await.unwrap();
    festival
        .scheduling
        .start_show(StartShowRequest { name: "shows/uz-on-hema".into(), request_id: String::new() })
        .await
        .unwrap();
    let suite = &festival.running.suite;
    let mut all = Vec::new();
    for kind in ServiceKind::ALL {
        let db = festival.running.database(kind).connect().await.unwrap();
        all.push((kind, Digest::new(db).await));
    }

    let names: HashMap<&'static str, Vec<String>> = HashMap::from([
        ("shows", vec!["shows/uz-on-hema".to_owned()]),
        ("products", products.iter().take(3).map(|p| format!("products/{p}")).collect()),
        ("stockLevels", products.iter().take(3).map(|p| format!("stockLevels/{p}")).collect()),
        ("allocations", vec!["allocations/uz-on-hema".to_owned()]),
        ("countries", vec!["countries/UZ".to_owned(), "countries/PK".to_owned()]),
        ("hosts", vec!["hosts/olimkhonov".to_owned(), "hosts/khan".to_owned()]),
        ("channels", vec!["channels/hema-sco".to_owned()]),
        ("campaigns", vec!["campaigns/nianhuo-2022".to_owned()]),
        ("warehouses", vec!["warehouses/sh-bonded".to_owned()]),
    ]);
    let declared = common::reasons::declared();
    let mut generator =
        Gen { state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, strings: string_pool(&products), names, fresh: 0 };
    let callers = [Caller::Hema, Caller::Operator, Caller::Service(ServiceKind::Orders)];
    let pool = caravan_proto::codec::descriptor_pool();
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut rpcs, mut requests) = (0, 0);
    let started = Instant::now();
    let mut before = settled(&all).await;
    // The digests see a write (else "a refusal wrote nothing" would hold
    // whatever happened).
    let receipt = caravan_proto::inventory::v1::ReceiveStockRequest {
        product: format!("products/{}", products[2]),
        warehouse: "warehouses/sh-bonded".into(),
        quantity: 1,
        request_id: "digest-check".into(),
        reference: String::new(),
    };
    festival.inventory.receive_stock(receipt).await.unwrap();
    let after = settled(&all).await;
    assert_ne!(after[2], before[2], "inventory's digest changed with a receipt");
    before = after;
    for service in pool.services() {
        let Some(kind) = service_of(service.full_name()) else { continue };
        let addr = suite.addr(kind);
        for method in service.methods() {
            rpcs += 1;
            let path = format!("/{}/{}", service.full_name(), method.name());
            let streaming = method.is_server_streaming();
            let input = method.input();
            // Without a key, then as each kind of caller: the empty
            // request, undecodable bytes, and generated ones.
            // A kind of caller the access table refuses gets one request
            // (refused before any handler runs); the others get them all:
            // plausible requests with one hostile field, and wholly
            // hostile ones.
            let allowed = caravan_platform::auth::access::allowed(path.trim_start_matches('/')).unwrap_or(&[]);
            let mut cases: Vec<(Option<Caller>, Vec<u8>)> = vec![(None, Vec::new())];
            for caller in callers {
                cases.push((Some(caller), Vec::new()));
                if !allowed.contains(&caller.principal().kind) {
                    continue;
                }
                cases.extend(UNDECODABLE.iter().map(|bytes| (Some(caller), bytes.to_vec())));
                cases.push((Some(caller), generator.plausible(&input, 0).encode_to_vec()));
                for round in 0..rounds {
                    let message = if round % 3 == 2 { generator.message(&input, 0) } else { generator.mutated(&input) };
                    cases.push((Some(caller), message.encode_to_vec()));
                }
            }
            for (caller, body) in cases {
                requests += 1;
                let status = send(addr, caller, &path, streaming, body.clone()).await;
                *counts.entry(code_name(status.code())).or_default() += 1;
                let reply = status.message().len() + status.details().len();
                let what = || {
                    let shown: String = format!("{body:02x?}").chars().take(300).collect();
                    format!(
                        "{path} as {caller:?}: {:?} {:?} (request {shown})",
                        status.code(),
                        caravan_platform::error::clip(status.message())
                    )
                };
                if matches!(status.code(), Code::Internal | Code::Unknown | Code::DeadlineExceeded | Code::DataLoss) {
                    problems.push(what());
                }
                if let Some(problem) = undeclared(&status, &declared) {
                    problems.push(format!("{problem}: {}", what()));
                }
                if reply > MAX_ERROR_REPLY {
                    problems.push(format!("a {reply}-byte error reply: {}", what()));
                }
                if reads_only(&method) {
                    continue;
                }
                if status.code() == Code::Ok {
                    before = settled(&all).await;
                } else {
                    let after = digests(&all).await;
                    if after != before {
                        let changed: Vec<ServiceKind> = all
                            .iter()
                            .zip(before.iter().zip(&after))
                            .filter(|(_, (b, a))| b != a)
                            .map(|((kind, _), _)| *kind)
                            .collect();
                        problems.push(format!("a refused call wrote to {changed:?}: {}", what()));
                        before = settled(&all).await;
                    }
                }
            }
        }
        assert_eq!(health_status(addr, "").await.unwrap(), ServingStatus::Serving, "{kind} after its fuzzing");
    }
    for kind in ServiceKind::ALL {
        assert_eq!(health_status(suite.addr(kind), "").await.unwrap(), ServingStatus::Serving, "{kind} at the end");
    }
    eprintln!(
        "fuzzed {rpcs} RPCs with {requests} requests in {:.1}s (seed {seed}, {rounds} rounds): {counts:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(rpcs >= 40, "the descriptor set holds every RPC ({rpcs})");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a handler panicked (see the output above)");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    festival.running.token.cancel();
}

/// How an answer departs from the declared reasons: a reason not in
/// errors.proto, under another code, with metadata keys it does not
/// declare, or a refusal a client cannot switch on (no reason at all).
fn undeclared(status: &Status, declared: &BTreeMap<String, common::reasons::Declared>) -> Option<String> {
    use tonic_types::StatusExt as _;
    let code = code_name(status.code());
    let details = status.get_error_details();
    let Some(info) = details.error_info() else {
        let needs_reason = matches!(status.code(), Code::FailedPrecondition | Code::Aborted | Code::ResourceExhausted);
        return needs_reason.then(|| format!("a {code} without ErrorInfo"));
    };
    let Some(reason) = declared.get(&info.reason) else {
        return Some(format!("reason {} is not declared in errors.proto", info.reason));
    };
    if reason.code != code {
        return Some(format!("{} answered as {code}, declared {}", info.reason, reason.code));
    }
    let extra: Vec<&String> = info.metadata.keys().filter(|k| !reason.metadata.contains(*k)).collect();
    (!extra.is_empty()).then(|| format!("{} carries undeclared metadata {extra:?}", info.reason))
}

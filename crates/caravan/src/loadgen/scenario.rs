//! Scenarios: what one unit of load is. Each service issue adds its own here
//! (a struct, its `call`, its `check`) and a line in [`by_name`].

use std::future::Future;

use caravan_proto::{
    catalog::v1::{GetProductRequest, ListProductsRequest, catalog_service_client::CatalogServiceClient},
    loadgen::v1::{EchoRequest, echo_service_client::EchoServiceClient},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::Status;

use super::channel::Authed;

/// One unit of load and the check of the run.
pub trait Scenario: Send + Sync + 'static {
    /// Short name, as on the command line.
    fn name(&self) -> &str;

    /// One call (or short sequence of calls); `worker` picks the channel.
    fn call(&self, worker: usize, seq: u64) -> impl Future<Output = Result<(), Status>> + Send;

    /// A correctness line for the report (e.g. oversell count), checked
    /// after the run.
    fn check(&self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send {
        async { Ok(None) }
    }
}

/// The echo baseline: one unary call that does nothing.
#[derive(Debug)]
pub struct Echo {
    clients: Vec<EchoServiceClient<Authed>>,
}

impl Echo {
    /// Echo calls spread over `channels`.
    pub fn new(channels: Vec<Authed>) -> Self {
        Echo { clients: channels.into_iter().map(EchoServiceClient::new).collect() }
    }
}

impl Scenario for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let payload = b"caravan".to_vec();
        let response = client.echo(EchoRequest { payload: payload.clone() }).await?.into_inner();
        if response.payload != payload {
            return Err(Status::data_loss("echo answered other bytes"));
        }
        Ok(())
    }
}

/// `read`: GetProduct on the catalog's products, the partner's browsing load
/// during a show (the hottest partner traffic).
#[derive(Debug)]
pub struct Read {
    clients: Vec<CatalogServiceClient<Authed>>,
    names: Vec<String>,
}

impl Read {
    /// Reads spread over `channels`, cycling through the first 500 products.
    pub async fn prepare(channels: Vec<Authed>) -> anyhow::Result<Self> {
        let mut clients: Vec<_> = channels.into_iter().map(CatalogServiceClient::new).collect();
        let page = clients[0]
            .list_products(ListProductsRequest { page_size: 500, ..Default::default() })
            .await
            .map_err(|s| anyhow::anyhow!("listing products to read: {}", s.message()))?
            .into_inner();
        let names: Vec<String> = page.products.into_iter().map(|p| p.name).collect();
        anyhow::ensure!(!names.is_empty(), "the catalog has no products: import the dataset first");
        Ok(Read { clients, names })
    }
}

impl Scenario for Read {
    fn name(&self) -> &str {
        "read"
    }

    async fn call(&self, worker: usize, seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let name = &self.names[(seq % self.names.len() as u64) as usize];
        let product = client.get_product(GetProductRequest { name: name.clone() }).await?;
        if &product.into_inner().name != name {
            return Err(Status::data_loss("catalog answered another product"));
        }
        Ok(())
    }
}

/// `list`: the first page of ListProducts, optionally filtered by country
/// (keyset pages cost the same at any catalog size).
#[derive(Debug)]
pub struct List {
    clients: Vec<CatalogServiceClient<Authed>>,
    country: String,
}

impl List {
    /// Pages of 50, filtered by `country` (`countries/XX`) when not empty.
    pub fn new(channels: Vec<Authed>, country: String) -> Self {
        List { clients: channels.into_iter().map(CatalogServiceClient::new).collect(), country }
    }
}

impl Scenario for List {
    fn name(&self) -> &str {
        "list"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let request = ListProductsRequest { page_size: 50, country: self.country.clone(), ..Default::default() };
        let page = client.list_products(request).await?.into_inner();
        if page.products.is_empty() {
            return Err(Status::data_loss("an empty page"));
        }
        Ok(())
    }
}

/// The database baseline: the raw single-row conditional decrement, one
/// statement per transaction — the ceiling of a hot product done naively.
#[derive(Debug)]
pub struct DbDecrement {
    db: DatabaseConnection,
    start: i64,
}

const DB_TABLE: &str = "caravan_loadgen_baseline";

impl DbDecrement {
    /// Creates the baseline's one-row table with `start` units.
    pub async fn prepare(db: DatabaseConnection, start: i64) -> anyhow::Result<Self> {
        let backend = db.get_database_backend();
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {DB_TABLE}")).await?;
        db.execute_unprepared(&format!("CREATE TABLE {DB_TABLE} (id INTEGER PRIMARY KEY, available BIGINT NOT NULL)"))
            .await?;
        db.execute_raw(Statement::from_string(
            backend,
            format!("INSERT INTO {DB_TABLE} (id, available) VALUES (1, {start})"),
        ))
        .await?;
        Ok(DbDecrement { db, start })
    }

    /// Drops the table.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        self.db.execute_unprepared(&format!("DROP TABLE IF EXISTS {DB_TABLE}")).await?;
        Ok(())
    }
}

impl Scenario for DbDecrement {
    fn name(&self) -> &str {
        "db"
    }

    async fn call(&self, _worker: usize, _seq: u64) -> Result<(), Status> {
        let sql = format!("UPDATE {DB_TABLE} SET available = available - 1 WHERE id = 1 AND available >= 1");
        let result = self.db.execute_unprepared(&sql).await.map_err(|e| Status::unavailable(e.to_string()))?;
        if result.rows_affected() != 1 {
            return Err(Status::failed_precondition("sold out"));
        }
        Ok(())
    }

    /// Units taken must equal successful decrements: the row never went below zero.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT available FROM {DB_TABLE} WHERE id = 1"),
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("baseline row missing"))?;
        let available: i64 = row.try_get_by_index(0)?;
        Ok(Some(format!("units taken: {} of {}; below zero: {}", self.start - available, self.start, available < 0)))
    }
}

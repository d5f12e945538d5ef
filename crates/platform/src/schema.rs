//! Schema versions across releases: expand, then contract.
//!
//! A migration either **expands** the schema (a table, a nullable column, an
//! index: nothing an older binary reads changes) or **contracts** it (drops
//! or renames what an older binary still reads). A release applies its
//! expanding migrations first, while the previous release's replicas keep
//! serving; so rolling back is redeploying the previous image. A contracting
//! migration ships in a release *after* the one whose code stopped using what
//! it removes, and says so with [`require_binaries_from`]: the database then
//! records the oldest migration a binary must know to run on it.
//!
//! So a binary runs on a schema when
//! - every migration it knows is applied (else it is **behind**: its
//!   migration job has not run), and
//! - it knows the oldest migration the schema requires (else the schema is
//!   **too new** for it: a later release contracted it).
//!
//! Migrations it does not know — a later release's expansions — are fine.
//! That is the compatibility window: from the binary that wrote the last
//! contracting migration's predecessor onwards.
//!
//! The check only reads (the runtime role needs no DDL right), and
//! [`migrate`] runs every pending migration in one transaction under a lock
//! (PostgreSQL: an advisory lock; SQLite: its single writer), so concurrent
//! migration jobs wait for each other and the later ones find nothing to do.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait};
use sea_orm_migration::{
    MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait,
    prelude::{Alias, ColumnDef, Table},
};

use crate::db::Db;

/// The table holding the oldest migration a binary must know.
const TABLE: &str = "schema_compatibility";

/// Where a database's schema stands for this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaCheck {
    /// Migrations this binary knows that are not applied.
    pub pending: usize,
    /// Applied migrations this binary does not know (a later release's).
    pub newer: usize,
    /// The oldest migration a binary must know, when the schema requires one
    /// this binary does not know.
    pub requires: Option<String>,
    /// This binary's newest migration.
    pub newest_known: String,
}

impl SchemaCheck {
    /// `Ok` when this binary may serve on the schema; else why not, in one
    /// line for health and the log.
    pub fn verdict(&self) -> Result<(), String> {
        if let Some(required) = &self.requires {
            return Err(format!(
                "schema too new for this binary: it requires one that knows migration {required} \
                 (this binary's newest is {}); deploy a newer release",
                self.newest_known
            ));
        }
        if self.pending > 0 {
            return Err(format!(
                "schema too old for this binary: {} of its migration(s) are not applied (newest {}); \
                 run the migration job",
                self.pending, self.newest_known
            ));
        }
        Ok(())
    }
}

/// Where the schema of `db` stands for the migrations of `M`, by reading
/// only (no `CREATE TABLE IF NOT EXISTS`, as sea-orm's own status does).
pub async fn check<M: MigratorTrait>(db: &impl ConnectionTrait) -> Result<SchemaCheck, DbErr> {
    let known: Vec<String> = M::migrations().iter().map(|m| m.name().to_owned()).collect();
    let table = M::migration_table_name().to_string();
    let applied: HashSet<String> = if has_table(db, &table).await? {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), format!("SELECT version FROM {table}")))
            .await?;
        rows.iter().map(|r| r.try_get::<String>("", "version")).collect::<Result<_, _>>()?
    } else {
        HashSet::new()
    };
    let required = if has_table(db, TABLE).await? {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT oldest_binary FROM {TABLE}"),
            ))
            .await?;
        rows.first().map(|r| r.try_get::<String>("", "oldest_binary")).transpose()?.unwrap_or_default()
    } else {
        String::new()
    };
    Ok(SchemaCheck {
        pending: known.iter().filter(|k| !applied.contains(*k)).count(),
        newer: applied.iter().filter(|a| !known.contains(a)).count(),
        requires: (!required.is_empty() && !known.contains(&required)).then_some(required),
        newest_known: known.last().cloned().unwrap_or_default(),
    })
}

/// Whether the table exists (read from the catalog, never created).
async fn has_table(db: &impl ConnectionTrait, table: &str) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
        _ => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?1",
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()])).await?;
    Ok(rows.first().map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) > 0)
}

/// What a [`migrate`] run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Migrations it applied (0 when another run had, or nothing was pending).
    pub applied: usize,
    /// Applied migrations this binary does not know (a later release's),
    /// left as they are.
    pub newer: usize,
}

/// Applies `M`'s pending migrations, all in one transaction, under a lock
/// that concurrent runs wait for. A schema already ahead of this binary (a
/// later release migrated it) is left alone if it is compatible; one this
/// binary cannot run on, or that lacks some of its migrations while
/// carrying unknown ones, is an error that says which.
pub async fn migrate<M: MigratorTrait>(db: &Db) -> Result<Migrated, DbErr> {
    let table = M::migration_table_name().to_string();
    if db.get_database_backend() == DbBackend::Sqlite {
        // Before the transaction: in it, a statement that only reads (the
        // table exists) would start it as a reader, and a reader cannot wait
        // for the write lock — SQLite answers "database is locked" at once if
        // another connection wrote since (a replica's worker, as a second
        // replica starts).
        db.execute_unprepared("CREATE TABLE IF NOT EXISTS schema_migration_lock (id INTEGER)").await?;
    }
    let txn = db.begin().await?;
    lock(&txn, &table).await?;
    let before = check::<M>(&txn).await?;
    if let Some(required) = &before.requires {
        txn.rollback().await?;
        return Err(DbErr::Custom(format!(
            "the schema requires a binary that knows migration {required}; this one's newest is {}",
            before.newest_known
        )));
    }
    if before.pending == 0 {
        txn.commit().await?;
        return Ok(Migrated { applied: 0, newer: before.newer });
    }
    if before.newer > 0 {
        txn.rollback().await?;
        return Err(DbErr::Custom(format!(
            "the schema carries {} migration(s) this binary does not know and lacks {} it knows: \
             apply the newer release's migrations instead",
            before.newer, before.pending
        )));
    }
    M::up(&txn, None).await?;
    txn.commit().await?;
    Ok(Migrated { applied: before.pending, newer: 0 })
}

/// Takes the migration lock for the rest of `txn`.
async fn lock(txn: &impl ConnectionTrait, table: &str) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    match backend {
        DbBackend::Postgres => {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [format!("caravan migrate {table}").into()],
            ))
            .await?;
        }
        _ => {
            // SQLite: the transaction's first statement writes, taking the
            // database's one write lock (other writers wait out the busy
            // timeout).
            txn.execute_unprepared("DELETE FROM schema_migration_lock").await?;
        }
    }
    Ok(())
}

/// For a contracting migration's `up`: binaries that do not know migration
/// `name` (normally the contracting migration itself) can no longer run on
/// this schema. Never lowers the requirement.
pub async fn require_binaries_from(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!("UPDATE {TABLE} SET oldest_binary = $1 WHERE oldest_binary < $1"),
        _ => format!("UPDATE {TABLE} SET oldest_binary = ?1 WHERE oldest_binary < ?1"),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [name.into()])).await?;
    Ok(())
}

/// The migration creating the compatibility record; every service lists it
/// among its own migrations.
pub fn migration() -> Box<dyn MigrationTrait> {
    Box::new(CreateSchemaCompatibility)
}

struct CreateSchemaCompatibility;

impl MigrationName for CreateSchemaCompatibility {
    fn name(&self) -> &str {
        "m20261207_100000_schema_compatibility"
    }
}

#[allow(elided_lifetimes_in_paths)] // async_trait: the lifetime must stay elided.
#[async_trait::async_trait]
impl MigrationTrait for CreateSchemaCompatibility {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TABLE))
                    .col(ColumnDef::new(Alias::new("id")).integer().not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("oldest_binary")).string_len(200).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!("INSERT INTO {TABLE} (id, oldest_binary) VALUES (1, '')"))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new(TABLE)).to_owned()).await
    }
}

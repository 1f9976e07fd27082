//! Small builders shared by the migrations.

use sea_orm_migration::prelude::*;

/// `<col> UUID NOT NULL PRIMARY KEY`.
pub(crate) fn uuid_pk<C: IntoIden>(col: C) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().primary_key().take()
}

/// `<col> TIMESTAMPTZ NOT NULL` (no DB default: the entities fill it).
pub(crate) fn timestamp<C: IntoIden>(col: C) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().not_null().take()
}

/// `<col> TIMESTAMPTZ NULL`.
pub(crate) fn timestamp_null<C: IntoIden>(col: C) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().null().take()
}

/// `<col> INTEGER NULL`.
pub(crate) fn int_null<C: IntoIden>(col: C) -> ColumnDef {
    ColumnDef::new(col).integer().null().take()
}

/// `<col> BOOLEAN NULL`.
pub(crate) fn bool_null<C: IntoIden>(col: C) -> ColumnDef {
    ColumnDef::new(col).boolean().null().take()
}

/// The constraint name `ck_<table>_<column>`.
fn check_name<T: Iden, C: Iden>(table: &T, col: &C) -> String {
    format!("ck_{}_{}", Iden::to_string(table), Iden::to_string(col))
}

/// `CONSTRAINT ck_<table>_<col> CHECK (col IS NULL OR col BETWEEN lo AND hi)`.
pub(crate) fn range_check<T, C>(table: T, col: C, lo: i32, hi: i32) -> Check
where
    T: Iden + Copy,
    C: Iden + IntoIden + Copy,
{
    let name = check_name(&table, &col);
    Check::named(name, Expr::col(col).is_null().or(Expr::col(col).between(lo, hi)))
}

/// `CONSTRAINT ck_<table>_<col> CHECK (col IN (values...))`, plus
/// `col IS NULL OR` when `nullable`.
pub(crate) fn in_check<T, C>(table: T, col: C, values: &[&str], nullable: bool) -> Check
where
    T: Iden + Copy,
    C: Iden + IntoIden + Copy,
{
    let name = check_name(&table, &col);
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    let within = Expr::col(col).is_in(values);
    let expr = if nullable {
        Expr::col(col).is_null().or(within)
    } else {
        within
    };
    Check::named(name, expr)
}

/// A (non-unique) `CREATE INDEX <name> ON <table> (<cols>)`.
pub(crate) fn index<T, I>(name: &str, table: T, cols: I) -> IndexCreateStatement
where
    T: IntoTableRef,
    I: IntoIterator,
    I::Item: IntoIndexColumn,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    stmt.take()
}

/// A table-level `CONSTRAINT <name> UNIQUE (<cols>)`, for use inside
/// `CREATE TABLE` via `TableCreateStatement::index`.
pub(crate) fn unique<I>(name: &str, cols: I) -> IndexCreateStatement
where
    I: IntoIterator,
    I::Item: IntoIndexColumn,
{
    let mut stmt = Index::create();
    stmt.name(name).unique();
    for col in cols {
        stmt.col(col);
    }
    stmt.take()
}

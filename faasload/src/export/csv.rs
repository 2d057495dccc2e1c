//! Writes a [`Table`] as CSV (RFC 4180, a header row of column names), streaming row by
//! row. Nulls are empty fields, booleans `true`/`false`, floats keep a decimal point
//! (`2.0`) so readers infer a float column, timestamps are their integer epoch value in
//! the column's unit.
use std::io::Write;

use anyhow::{Context, Result, anyhow};

use super::table::{Cell, Table};

/// Writes `table` to `out`; returns the number of rows written.
pub fn write<R, W: Write>(table: &Table<'_, R>, out: W) -> Result<u64> {
    let ctx = || format!("writing the {} table as CSV", table.what);
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(table.columns.iter().map(|c| c.name.as_str()))
        .with_context(ctx)?;
    let mut field = String::new();
    for (i, r) in table.rows.iter().enumerate() {
        for c in &table.columns {
            let cell = c
                .cell(r)
                .map_err(|e| anyhow!("row {i}: {e}"))
                .with_context(ctx)?;
            field.clear();
            match cell {
                Cell::Null => {}
                Cell::Int(v) => field.push_str(&v.to_string()),
                // Debug keeps the ".0" of integral values and round-trips exactly.
                Cell::Float(v) => field.push_str(&format!("{v:?}")),
                Cell::Bool(b) => field.push_str(if b { "true" } else { "false" }),
                Cell::Str(s) => field.push_str(s),
            }
            w.write_field(&field).with_context(ctx)?;
        }
        w.write_record(None::<&[u8]>).with_context(ctx)?;
    }
    w.flush().with_context(ctx)?;
    Ok(table.rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::table::{ColType, Column};

    #[test]
    fn nulls_floats_bools_and_quoting() {
        let rows = [(1i64, Some(2.0f64), Some("a,b")), (2, None, None)];
        let t = Table {
            what: "test",
            rows: &rows,
            columns: vec![
                Column::new(
                    "n",
                    ColType::Int64,
                    false,
                    |r: &(i64, Option<f64>, Option<&str>)| Cell::Int(r.0),
                ),
                Column::new(
                    "f",
                    ColType::Float64,
                    true,
                    |r: &(i64, Option<f64>, Option<&str>)| r.1.into(),
                ),
                Column::new(
                    "s",
                    ColType::Utf8,
                    true,
                    |r: &(i64, Option<f64>, Option<&str>)| r.2.into(),
                ),
                Column::new(
                    "b",
                    ColType::Bool,
                    false,
                    |r: &(i64, Option<f64>, Option<&str>)| Cell::Bool(r.0 == 1),
                ),
            ],
        };
        let mut out = Vec::new();
        assert_eq!(write(&t, &mut out).unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "n,f,s,b\n1,2.0,\"a,b\",true\n2,,,false\n"
        );
    }
}

//! Writes [`Table`]s as CSV (RFC 4180, a header row of column names), a page of rows at
//! a time, streaming row by row. Nulls are empty fields, booleans `true`/`false`, floats keep a decimal point
//! (`2.0`) so readers infer a float column, timestamps are their integer epoch value in
//! the column's unit.
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};

use super::table::{Cell, Column, Table};

/// A CSV file being written, a page of rows at a time.
pub(super) struct CsvSink<W: Write> {
    what: &'static str,
    w: ::csv::Writer<W>,
    /// The header, to check every page's columns against.
    names: Vec<String>,
    field: String,
    rows: u64,
}

impl<W: Write> CsvSink<W> {
    /// Starts the file with the header row of `columns`' names.
    pub(super) fn new<R>(
        what: &'static str,
        columns: &[Column<'_, R>],
        out: W,
    ) -> Result<CsvSink<W>> {
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(&names)
            .with_context(|| format!("writing the {what} table as CSV"))?;
        Ok(CsvSink {
            what,
            w,
            names,
            field: String::new(),
            rows: 0,
        })
    }

    /// Writes `table`'s rows (its columns must be the header's).
    pub(super) fn write<R>(&mut self, table: &Table<'_, R>) -> Result<()> {
        let what = self.what;
        let ctx = || format!("writing the {what} table as CSV");
        if table.columns.len() != self.names.len()
            || table
                .columns
                .iter()
                .zip(&self.names)
                .any(|(c, n)| &c.name != n)
        {
            bail!("{}: the columns changed between pages", ctx());
        }
        for (i, r) in table.rows.iter().enumerate() {
            for c in &table.columns {
                let cell = c
                    .cell(r)
                    .map_err(|e| anyhow!("row {}: {e}", self.rows + i as u64))
                    .with_context(ctx)?;
                self.field.clear();
                match cell {
                    Cell::Null => {}
                    Cell::Int(v) => self.field.push_str(&v.to_string()),
                    // Debug keeps the ".0" of integral values and round-trips exactly.
                    Cell::Float(v) => self.field.push_str(&format!("{v:?}")),
                    Cell::Bool(b) => self.field.push_str(if b { "true" } else { "false" }),
                    Cell::Str(s) => self.field.push_str(s),
                }
                self.w.write_field(&self.field).with_context(ctx)?;
            }
            self.w.write_record(None::<&[u8]>).with_context(ctx)?;
        }
        self.rows += table.rows.len() as u64;
        Ok(())
    }

    /// Flushes; returns the number of rows written.
    pub(super) fn finish(mut self) -> Result<u64> {
        let what = self.what;
        self.w
            .flush()
            .with_context(|| format!("writing the {what} table as CSV"))?;
        Ok(self.rows)
    }
}

/// Writes all of `table` to `out`; returns the number of rows written (the tests' way to
/// write a whole table at once; exports go through the sink page by page).
#[cfg(test)]
fn write<R, W: Write>(table: &Table<'_, R>, out: W) -> Result<u64> {
    let mut sink = CsvSink::new("test", &table.columns, out)?;
    sink.write(table)?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::table::ColType;

    #[test]
    fn nulls_floats_bools_and_quoting() {
        let rows = [(1i64, Some(2.0f64), Some("a,b")), (2, None, None)];
        let t = Table {
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

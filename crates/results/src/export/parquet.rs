//! Writes [`Table`]s as a Parquet file (Snappy-compressed), one row group per
//! [`ROWS_PER_GROUP`] rows or per page of rows given, so only one row group's rows and
//! column values are in memory at a time. Types: `Int64` → INT64, `Float64` → DOUBLE, `Bool` →
//! BOOLEAN, `Utf8` → BYTE_ARRAY (STRING), timestamps → INT64 (TIMESTAMP(MILLIS|NANOS,
//! UTC)); nullable columns are OPTIONAL, the others REQUIRED.
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::table::{Cell, ColType, Column, Table};

/// Rows per row group by default, and runs per page read from the store (exporting a
/// 200,000-run SQLite load, the process peaked at about 370 MB with pages of 16Ki runs,
/// 1 GB with 64Ki).
pub(super) const ROWS_PER_GROUP: usize = 16 * 1024;

/// The Parquet schema of `columns`.
pub(super) fn schema<R>(columns: &[Column<'_, R>]) -> Result<Type> {
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        let (physical, logical) = match c.ty {
            ColType::Int64 => (Physical::INT64, None),
            ColType::Float64 => (Physical::DOUBLE, None),
            ColType::Bool => (Physical::BOOLEAN, None),
            ColType::Utf8 => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            ColType::TimestampMs => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
            ),
            ColType::TimestampNs => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::NANOS)),
            ),
        };
        let rep = if c.nullable {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        let f = Type::primitive_type_builder(&c.name, physical)
            .with_repetition(rep)
            .with_logical_type(logical)
            .build()
            .with_context(|| format!("Parquet type of column {}", c.name))?;
        fields.push(Arc::new(f));
    }
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .context("Parquet schema")
}

/// A Parquet file being written, one row group at a time.
pub(super) struct ParquetSink<W: Write + Send> {
    what: &'static str,
    writer: SerializedFileWriter<W>,
    /// (name, type, nullable) of each column, to check every row group against.
    spec: Vec<(String, ColType, bool)>,
    /// Rows per row group, at most.
    group_rows: usize,
    rows: u64,
}

impl<W: Write + Send> ParquetSink<W> {
    /// Starts the file: `columns` give the schema, `metadata` the file's key-value
    /// metadata; row groups hold at most `group_rows` rows.
    pub(super) fn new<R>(
        what: &'static str,
        columns: &[Column<'_, R>],
        metadata: Vec<(String, String)>,
        group_rows: usize,
        out: W,
    ) -> Result<ParquetSink<W>> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("faasload {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(
                metadata
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
            ))
            .build();
        let schema = Arc::new(schema(columns)?);
        let writer = SerializedFileWriter::new(out, schema, Arc::new(props))
            .with_context(|| format!("starting the {what} table's Parquet file"))?;
        Ok(ParquetSink {
            what,
            writer,
            spec: columns
                .iter()
                .map(|c| (c.name.clone(), c.ty, c.nullable))
                .collect(),
            group_rows: group_rows.max(1),
            rows: 0,
        })
    }

    /// Writes `table`'s rows as row groups of at most `group_rows` rows (its
    /// columns must be the ones the file was started with).
    pub(super) fn write<R>(&mut self, table: &Table<'_, R>) -> Result<()> {
        let what = self.what;
        let ctx = || format!("writing the {what} table as Parquet");
        let spec: Vec<(String, ColType, bool)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable))
            .collect();
        if spec != self.spec {
            bail!("{}: the columns changed between row groups", ctx());
        }
        for (g, chunk) in table.rows.chunks(self.group_rows).enumerate() {
            let mut rg = self.writer.next_row_group().with_context(ctx)?;
            for c in &table.columns {
                let mut cw = rg
                    .next_column()
                    .with_context(ctx)?
                    .ok_or_else(|| anyhow!("Parquet writer has no column {}", c.name))
                    .with_context(ctx)?;
                write_column(c, chunk, &mut cw)
                    .with_context(|| format!("row group {g}, column {}", c.name))
                    .with_context(ctx)?;
                cw.close().with_context(ctx)?;
            }
            rg.close().with_context(ctx)?;
            self.rows += chunk.len() as u64;
        }
        Ok(())
    }

    /// Writes the footer; returns the number of rows written.
    pub(super) fn finish(self) -> Result<u64> {
        let what = self.what;
        self.writer
            .close()
            .with_context(|| format!("finishing the {what} table's Parquet file"))?;
        Ok(self.rows)
    }
}

/// Writes all of `table` to `out` with `metadata` as the file's key-value metadata;
/// returns the number of rows written (the tests' way to write a whole table at once;
/// exports go through the sink page by page).
#[cfg(test)]
fn write<R, W: Write + Send>(
    table: &Table<'_, R>,
    metadata: Vec<(String, String)>,
    out: W,
) -> Result<u64> {
    let mut sink = ParquetSink::new("test", &table.columns, metadata, ROWS_PER_GROUP, out)?;
    sink.write(table)?;
    sink.finish()
}

/// The values of column `c` in `rows` with their definition levels (1: present, 0: null;
/// `None` for a REQUIRED column).
struct Values<T> {
    values: Vec<T>,
    defs: Option<Vec<i16>>,
}

fn collect<'r, R, T>(
    c: &Column<'_, R>,
    rows: &'r [R],
    mut take: impl FnMut(Cell<'r>) -> Option<T>,
) -> Result<Values<T>> {
    let mut values = Vec::with_capacity(rows.len());
    let mut defs = c.nullable.then(|| Vec::with_capacity(rows.len()));
    for (i, r) in rows.iter().enumerate() {
        let cell = c.cell(r).map_err(|e| anyhow!("row {i}: {e}"))?;
        let v = match cell {
            Cell::Null => None,
            other => Some(take(other).ok_or_else(|| anyhow!("row {i}: {other:?} in {:?}", c.ty))?),
        };
        if let Some(d) = defs.as_mut() {
            d.push(i16::from(v.is_some()));
        }
        values.extend(v);
    }
    Ok(Values { values, defs })
}

fn write_column<R>(
    c: &Column<'_, R>,
    rows: &[R],
    cw: &mut parquet::file::writer::SerializedColumnWriter<'_>,
) -> Result<()> {
    match c.ty {
        ColType::Int64 | ColType::TimestampMs | ColType::TimestampNs => {
            let v = collect(c, rows, |x| match x {
                Cell::Int(i) => Some(i),
                _ => None,
            })?;
            cw.typed::<Int64Type>()
                .write_batch(&v.values, v.defs.as_deref(), None)?;
        }
        ColType::Float64 => {
            let v = collect(c, rows, |x| match x {
                Cell::Float(f) => Some(f),
                _ => None,
            })?;
            cw.typed::<DoubleType>()
                .write_batch(&v.values, v.defs.as_deref(), None)?;
        }
        ColType::Bool => {
            let v = collect(c, rows, |x| match x {
                Cell::Bool(b) => Some(b),
                _ => None,
            })?;
            cw.typed::<BoolType>()
                .write_batch(&v.values, v.defs.as_deref(), None)?;
        }
        ColType::Utf8 => {
            let v = collect(c, rows, |x| match x {
                Cell::Str(s) => Some(ByteArray::from(s)),
                _ => None,
            })?;
            cw.typed::<ByteArrayType>()
                .write_batch(&v.values, v.defs.as_deref(), None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    struct R {
        a: i64,
        b: Option<f64>,
        s: Option<String>,
        t: bool,
    }

    fn table(rows: &[R]) -> Table<'_, R> {
        Table {
            rows,
            columns: vec![
                Column::new("a", ColType::Int64, false, |r: &R| Cell::Int(r.a)),
                Column::new("b", ColType::Float64, true, |r: &R| r.b.into()),
                Column::new("s", ColType::Utf8, true, |r: &R| r.s.as_deref().into()),
                Column::new("t", ColType::Bool, false, |r: &R| Cell::Bool(r.t)),
                Column::new("at", ColType::TimestampNs, false, |r: &R| {
                    Cell::Int(r.a * 10)
                }),
            ],
        }
    }

    #[test]
    fn round_trips_through_the_reader_in_several_row_groups() {
        let n = ROWS_PER_GROUP + 10;
        let rows: Vec<R> = (0..n as i64)
            .map(|i| R {
                a: i,
                b: (i % 3 != 0).then_some(i as f64 / 2.0),
                s: (i % 5 == 0).then(|| format!("s{i}")),
                t: i % 2 == 0,
            })
            .collect();
        let mut buf = Vec::new();
        let n_written = write(&table(&rows), vec![("k".into(), "v".into())], &mut buf).unwrap();
        assert_eq!(n_written, n as u64);
        let r = SerializedFileReader::new(bytes::Bytes::from(buf)).unwrap();
        let md = r.metadata();
        assert_eq!(md.file_metadata().num_rows(), n as i64);
        assert_eq!(md.num_row_groups(), 2);
        let kv = md.file_metadata().key_value_metadata().unwrap();
        assert_eq!(
            (kv[0].key.as_str(), kv[0].value.as_deref()),
            ("k", Some("v"))
        );
        let s = md.file_metadata().schema_descr();
        let cols: Vec<_> = s
            .columns()
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.physical_type(),
                    c.self_type().is_optional(),
                )
            })
            .collect();
        assert_eq!(
            cols,
            vec![
                ("a".into(), Physical::INT64, false),
                ("b".into(), Physical::DOUBLE, true),
                ("s".into(), Physical::BYTE_ARRAY, true),
                ("t".into(), Physical::BOOLEAN, false),
                ("at".into(), Physical::INT64, false),
            ]
        );
        assert_eq!(
            s.column(4).logical_type_ref(),
            Some(&LogicalType::timestamp(true, TimeUnit::NANOS))
        );
        use parquet::record::RowAccessor;
        for (i, row) in r.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let w = &rows[i];
            assert_eq!(row.get_long(0).unwrap(), w.a);
            assert_eq!(row.get_double(1).ok(), w.b);
            assert_eq!(row.get_string(2).ok(), w.s.as_ref());
            assert_eq!(row.get_bool(3).unwrap(), w.t);
            assert_eq!(row.get_long(4).unwrap(), w.a * 10);
        }
    }

    #[test]
    fn a_null_in_a_required_column_is_an_error() {
        let rows = [R {
            a: 1,
            b: None,
            s: None,
            t: true,
        }];
        let mut t = table(&rows);
        t.columns[0] = Column::new("a", ColType::Int64, false, |_: &R| Cell::Null);
        let e = write(&t, vec![], Vec::new()).unwrap_err();
        assert!(format!("{e:#}").contains("column a"), "{e:#}");
    }
}

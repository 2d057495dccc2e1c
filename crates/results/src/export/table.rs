//! The column model shared by the exporters: a table is a list of typed, named columns,
//! each reading one value out of a row; the Parquet and CSV writers only walk it.

/// The type of a column, mapped to a Parquet physical/logical type by the Parquet writer
/// (CSV writes the value's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ColType {
    /// 64-bit signed integer.
    Int64,
    /// IEEE 754 double.
    Float64,
    Bool,
    /// UTF-8 text.
    Utf8,
    /// Unix epoch in milliseconds (UTC), an `Int64` underneath.
    TimestampMs,
    /// Unix epoch in nanoseconds (UTC), an `Int64` underneath.
    TimestampNs,
}

/// One value of a row in a column (borrowed from the row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cell<'r> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'r str),
}

impl<'r> From<Option<i64>> for Cell<'r> {
    fn from(v: Option<i64>) -> Cell<'r> {
        v.map_or(Cell::Null, Cell::Int)
    }
}

impl<'r> From<Option<f64>> for Cell<'r> {
    fn from(v: Option<f64>) -> Cell<'r> {
        v.map_or(Cell::Null, Cell::Float)
    }
}

impl<'r> From<Option<bool>> for Cell<'r> {
    fn from(v: Option<bool>) -> Cell<'r> {
        v.map_or(Cell::Null, Cell::Bool)
    }
}

impl<'r> From<Option<&'r str>> for Cell<'r> {
    fn from(v: Option<&'r str>) -> Cell<'r> {
        v.map_or(Cell::Null, Cell::Str)
    }
}

/// Reads a column's value out of a row of type `R`.
pub(super) type Getter<'a, R> = Box<dyn for<'r> Fn(&'r R) -> Cell<'r> + 'a>;

/// One column: its name, type, whether it may hold nulls, and how to read it.
pub(super) struct Column<'a, R> {
    pub name: String,
    pub ty: ColType,
    /// False where the store's column is `NOT NULL` (a Parquet `REQUIRED` column).
    pub nullable: bool,
    pub get: Getter<'a, R>,
}

impl<'a, R> Column<'a, R> {
    pub(super) fn new(
        name: impl Into<String>,
        ty: ColType,
        nullable: bool,
        get: impl for<'r> Fn(&'r R) -> Cell<'r> + 'a,
    ) -> Column<'a, R> {
        Column {
            name: name.into(),
            ty,
            nullable,
            get: Box::new(get),
        }
    }

    /// The value of this column in `row`, checked against the column's type and
    /// nullability (a mismatch is a bug in the column set, reported, never written).
    pub(super) fn cell<'r>(&self, row: &'r R) -> Result<Cell<'r>, String> {
        let c = (self.get)(row);
        let ok = match (c, self.ty) {
            (Cell::Null, _) => self.nullable,
            (Cell::Int(_), ColType::Int64 | ColType::TimestampMs | ColType::TimestampNs) => true,
            (Cell::Float(_), ColType::Float64) => true,
            (Cell::Bool(_), ColType::Bool) => true,
            (Cell::Str(_), ColType::Utf8) => true,
            _ => false,
        };
        if ok {
            Ok(c)
        } else {
            Err(format!(
                "column {} ({:?}, {}) got {c:?}",
                self.name,
                self.ty,
                if self.nullable {
                    "nullable"
                } else {
                    "not null"
                }
            ))
        }
    }
}

/// A table to write: its rows and its columns.
pub(super) struct Table<'a, R> {
    pub rows: &'a [R],
    pub columns: Vec<Column<'a, R>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_checked_against_the_column() {
        let c: Column<'_, (Option<i64>,)> =
            Column::new("x", ColType::Int64, false, |r: &(Option<i64>,)| r.0.into());
        assert_eq!(c.cell(&(Some(3),)), Ok(Cell::Int(3)));
        let e = c.cell(&(None,)).unwrap_err();
        assert!(e.contains("column x") && e.contains("not null"), "{e}");
        let t: Column<'_, ()> = Column::new("t", ColType::TimestampNs, true, |_: &()| Cell::Int(1));
        assert_eq!(t.cell(&()), Ok(Cell::Int(1)));
        let s: Column<'_, ()> = Column::new("s", ColType::Utf8, true, |_: &()| Cell::Int(1));
        assert!(s.cell(&()).is_err());
    }
}

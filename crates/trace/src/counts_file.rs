//! The counts file a YAML trace may reference (`counts: {file: ...}`): one line per
//! (user, function) stream, `USER<TAB>FUNCTION<TAB>BIN:COUNT,BIN:COUNT,...` with bins in
//! increasing order and zero bins left out. It is what `faasload trace convert` writes
//! for per-minute (Azure) and per-second (Huawei) traces: a day of 50k functions stays a
//! compact table, and the replay generates arrivals from it lazily.
use std::io::{BufRead, Write};

use super::error::{Errors, TraceError};

/// One row of a counts file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CountsRow {
    pub line: usize,
    pub user: String,
    pub function: String,
    /// `(bin, count)`, bins strictly increasing, counts > 0.
    pub counts: Vec<(u32, u32)>,
}

/// Writes one row (`counts` in increasing bin order; zero counts are skipped).
pub(crate) fn write_row(
    w: &mut impl Write,
    user: &str,
    function: &str,
    counts: impl IntoIterator<Item = (u32, u64)>,
) -> std::io::Result<()> {
    w.write_all(user.as_bytes())?;
    w.write_all(b"\t")?;
    w.write_all(function.as_bytes())?;
    w.write_all(b"\t")?;
    let mut first = true;
    let mut buf = itoa_buf();
    for (b, c) in counts {
        if c == 0 {
            continue;
        }
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        w.write_all(fmt_u64(&mut buf, u64::from(b)))?;
        w.write_all(b":")?;
        w.write_all(fmt_u64(&mut buf, c))?;
    }
    w.write_all(b"\n")
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Reads every row, calling `row` for each; defects are collected as `file:line:col`.
pub(crate) fn read_rows(
    r: impl BufRead,
    file: &str,
    mut row: impl FnMut(CountsRow),
) -> Result<(), TraceError> {
    let mut errors = Errors::default();
    for (n, line) in r.lines().enumerate() {
        let line_no = n + 1;
        let line = line.map_err(|e| TraceError::file(file, format!("cannot read: {e}")))?;
        if line.is_empty() {
            continue;
        }
        match parse_row(&line) {
            Ok((user, function, counts)) => row(CountsRow {
                line: line_no,
                user,
                function,
                counts,
            }),
            Err((col, m)) => {
                errors.push(TraceError::at(file, line_no, col, m));
                if errors.is_full() {
                    break;
                }
            }
        }
    }
    errors.into_result()
}

type RowParts = (String, String, Vec<(u32, u32)>);

fn parse_row(line: &str) -> Result<RowParts, (usize, String)> {
    let mut parts = line.splitn(3, '\t');
    let user = parts.next().unwrap_or_default();
    let (Some(function), Some(rest)) = (parts.next(), parts.next()) else {
        return Err((1, "expected USER<TAB>FUNCTION<TAB>BIN:COUNT,...".into()));
    };
    if user.is_empty() || function.is_empty() {
        return Err((1, "empty user or function name".into()));
    }
    let mut col = user.len() + function.len() + 3;
    let mut counts = Vec::new();
    let mut last: Option<u32> = None;
    if !rest.is_empty() {
        for pair in rest.split(',') {
            let bad = || {
                (
                    col,
                    format!("expected BIN:COUNT (integers), found '{pair}'"),
                )
            };
            let (b, c) = pair.split_once(':').ok_or_else(bad)?;
            let b: u32 = b.parse().map_err(|_| bad())?;
            let c: u32 = c.parse().map_err(|_| bad())?;
            if last.is_some_and(|l| b <= l) {
                return Err((col, format!("bin {b} is not after the previous bin")));
            }
            last = Some(b);
            counts.push((b, c));
            col += pair.len() + 1;
        }
    }
    Ok((user.to_string(), function.to_string(), counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_defects_are_located() {
        let mut out = Vec::new();
        write_row(&mut out, "u", "f", [(0, 3), (1, 0), (7, 12)]).unwrap();
        write_row(&mut out, "u", "g", []).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "u\tf\t0:3,7:12\nu\tg\t\n"
        );
        let mut rows = Vec::new();
        read_rows(&out[..], "c", |r| rows.push(r)).unwrap();
        assert_eq!(rows[0].counts, [(0, 3), (7, 12)]);
        assert_eq!(rows[1].counts, []);
        let e = read_rows(&b"u\tf\t0:1,x:2\nu\tf\n\nu\tf\t3:1,2:1\n"[..], "c", |_| {})
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c:1:9: expected BIN:COUNT (integers), found 'x:2'\n\
             c:2:1: expected USER<TAB>FUNCTION<TAB>BIN:COUNT,...\n\
             c:4:9: bin 2 is not after the previous bin"
        );
    }
}

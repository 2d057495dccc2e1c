//! Identifiers and timestamps of the platform: activation ids (32 lowercase hex),
//! transaction ids (the `code` of error bodies and `X-Request-ID`), epoch milliseconds and
//! the RFC 3339 nanosecond timestamps of activation log lines.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: valid buffer of the given length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let s = u64::from_ne_bytes(b);
    if n == 8 && s != 0 {
        s
    } else {
        faasload_os::clock::epoch_ns() | 1
    }
}

/// A fast random u64 (xorshift64*, seeded from getrandom per thread): ids, not secrets.
fn next() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A new activation id: 32 lowercase hex digits.
pub(crate) fn activation_id() -> String {
    format!("{:016x}{:016x}", next(), next())
}

/// Is `s` a well-formed activation id?
pub fn is_activation_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new transaction id: 32 letters and digits.
pub(crate) fn transaction_id() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(32);
    let (mut a, mut b) = (next(), next());
    for i in 0..32 {
        let r = if i < 16 { &mut a } else { &mut b };
        s.push(A[(*r % 62) as usize] as char);
        *r /= 62;
        if i % 8 == 7 {
            *r = next();
        }
    }
    s
}

/// Wall-clock epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats epoch nanoseconds like Go's RFC3339Nano in UTC (trailing zeros of the fraction
/// dropped): `2024-05-01T12:00:00.1234Z`.
pub(crate) fn rfc3339_nano(epoch_ns: u64) -> String {
    let secs = epoch_ns / 1_000_000_000;
    let nanos = epoch_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 -> (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shape() {
        let a = activation_id();
        assert!(is_activation_id(&a) && a == a.to_lowercase(), "{a}");
        assert_ne!(a, activation_id());
        let t = transaction_id();
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_714_564_800_123_400_000),
            "2024-05-01T12:00:00.1234Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}

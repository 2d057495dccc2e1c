//! Random streams: one PCG generator pair per (user, function) stream, derived from the
//! run seed and the pair's names (not their positions), so adding a user or a function
//! leaves every other stream's draws unchanged.
use rand_pcg::Pcg64;

/// The original FaaSLoad's default seed.
pub const DEFAULT_SEED: u64 = 19940503;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over length-prefixed parts, then mixed: a stable hash (unlike `std`'s, it is
/// the same on every Rust version and platform).
fn key(seed: u64, user: &str, function: &str, index: u32) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ splitmix64(seed);
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    eat(&(user.len() as u64).to_le_bytes());
    eat(user.as_bytes());
    eat(&(function.len() as u64).to_le_bytes());
    eat(function.as_bytes());
    eat(&index.to_le_bytes());
    splitmix64(h)
}

/// The two generators of a stream: arrival times, and draws (inputs, parameters), so
/// adding a parameter does not move the arrivals. `index` tells apart several streams
/// of the same (user, function) pair (0 for the first).
pub fn stream_rngs(seed: u64, user: &str, function: &str, index: u32) -> (Pcg64, Pcg64) {
    let k = key(seed, user, function, index);
    let state =
        (u128::from(splitmix64(k)) << 64) | u128::from(splitmix64(k ^ 0x5555_5555_5555_5555));
    (Pcg64::new(state, 0x7431), Pcg64::new(state, 0xd4a3))
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    #[test]
    fn streams_depend_on_seed_names_and_index_only() {
        let draw = |s, u, f, i| {
            let (mut a, mut b) = stream_rngs(s, u, f, i);
            (a.random::<u64>(), b.random::<u64>())
        };
        assert_eq!(draw(1, "u", "f", 0), draw(1, "u", "f", 0));
        assert_ne!(draw(1, "u", "f", 0), draw(2, "u", "f", 0));
        assert_ne!(draw(1, "u", "f", 0), draw(1, "v", "f", 0));
        assert_ne!(draw(1, "u", "f", 0), draw(1, "u", "g", 0));
        assert_ne!(draw(1, "u", "f", 0), draw(1, "u", "f", 1));
        // Length prefixes: ("ab", "c") is not ("a", "bc").
        assert_ne!(draw(1, "ab", "c", 0), draw(1, "a", "bc", 0));
        let (t, d) = draw(1, "u", "f", 0);
        assert_ne!(t, d);
    }
}

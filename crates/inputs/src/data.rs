//! Data inputs of the kernels for `faasload inputs`: CSV matrices (`py_matmul`,
//! `node_matmul`), text of pseudo-words (sort, compression) and JSON documents of nested
//! records (JSON round trip). Deterministic for a given RNG.
use anyhow::{Context, Result};
use rand::RngExt;
use rand_pcg::Pcg64;
use serde_json::{Value, json};

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ba", "do", "fi", "gu", "ha", "je", "ko",
    "la", "ma", "no", "pe", "qui", "ro", "su", "ta",
];

fn word(rng: &mut Pcg64) -> String {
    (0..rng.random_range(1..5))
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

/// A square matrix, 32..=160 rows, values in [-1, 1), comma-separated rows.
pub(crate) fn matrix(rng: &mut Pcg64) -> Vec<u8> {
    let n = rng.random_range(32..=160usize);
    let mut s = String::with_capacity(n * n * 10);
    for _ in 0..n {
        for j in 0..n {
            if j > 0 {
                s.push(',');
            }
            s.push_str(&format!("{:.6}", rng.random_range(-1.0..1.0f64)));
        }
        s.push('\n');
    }
    s.into_bytes()
}

/// Lines of 3..15 pseudo-words, 50 KB .. 2 MB in all.
pub(crate) fn text(rng: &mut Pcg64) -> Vec<u8> {
    let target = rng.random_range(50_000..2_000_000usize);
    let mut s = String::with_capacity(target + 128);
    while s.len() < target {
        let words = rng.random_range(3..15);
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&word(rng));
        }
        s.push('\n');
    }
    s.into_bytes()
}

fn record(rng: &mut Pcg64, id: usize) -> Value {
    let tags: Vec<String> = (0..rng.random_range(0..5)).map(|_| word(rng)).collect();
    let readings: Vec<f64> = (0..rng.random_range(1..8))
        .map(|_| (rng.random_range(0.0..1000.0f64) * 100.0).round() / 100.0)
        .collect();
    json!({
        "id": id,
        "name": word(rng),
        "active": rng.random_range(0..2) == 1,
        "score": rng.random_range(0..100_000),
        "tags": tags,
        "location": {"lat": rng.random_range(-90.0..90.0f64), "lon": rng.random_range(-180.0..180.0f64)},
        "readings": readings,
        "note": (0..rng.random_range(2..10)).map(|_| word(rng)).collect::<Vec<_>>().join(" "),
    })
}

/// A document `{"generated": ..., "records": [...]}` of 20 KB .. 1 MB.
pub(crate) fn json(rng: &mut Pcg64) -> Result<Vec<u8>> {
    let target = rng.random_range(20_000..1_000_000usize);
    let mut records = Vec::new();
    let mut size = 0;
    while size < target {
        let r = record(rng, records.len() + 1);
        size += r.to_string().len() + 1;
        records.push(r);
    }
    serde_json::to_vec(&json!({"kind": "faasload-input", "records": records}))
        .context("serialising a JSON input")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn data_inputs_are_well_formed() {
        let mut rng = Pcg64::seed_from_u64(3);
        let m = String::from_utf8(matrix(&mut rng)).unwrap();
        let rows: Vec<Vec<f64>> = m
            .lines()
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert!((32..=160).contains(&rows.len()));
        assert!(rows.iter().all(|r| r.len() == rows.len()));
        let t = text(&mut rng);
        assert!((50_000..2_000_200).contains(&t.len()), "{}", t.len());
        let j: Value = serde_json::from_slice(&json(&mut rng).unwrap()).unwrap();
        assert!(j["records"].as_array().unwrap().len() > 10);
    }
}

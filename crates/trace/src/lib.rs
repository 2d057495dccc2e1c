//! Traces: the model the loader replays (users, functions, invocations in time order),
//! read from faasload's YAML format or the original FaaSLoad TSV directory, validated
//! before anything is sent (errors say file:line:col).
mod arrival;
mod catalog;
pub mod convert;
mod counts;
mod counts_file;
mod error;
mod faasload_dir;
mod model;
mod resolve;
mod schedule;
mod seed;
mod spec;
pub mod stats;
pub mod synth;
mod tsv;
mod writer;
mod yaml;
mod yaml_pos;

use std::path::Path;

pub use catalog::FunctionCatalog;
pub use counts::CountLaw;
pub use error::TraceError;
pub use faasload_dir::{load_faasload_dir, read_faasload_dir, write_faasload_parts};
pub use model::{Function, Invocation, Trace, User};
pub use resolve::repo_file;
pub use seed::{DEFAULT_SEED, stream_rngs};
pub use spec::{InputSpec, ParamSpec, draw_params};
pub use writer::write_yaml;
pub use yaml::{load_yaml, load_yaml_parts, syntax_error};
pub use yaml_pos::{YPath, locate};

/// Loads a trace: a directory is an original FaaSLoad trace directory (actions resolved
/// by its own `catalog.yaml`, else `config/traces/catalog.yaml`), a file is a YAML trace.
pub fn load(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
    let path = path.as_ref();
    if path.is_dir() {
        let catalog = FunctionCatalog::for_dir(path)?;
        load_faasload_dir(path, &catalog)
    } else {
        load_yaml(path)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn repo(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }

    #[test]
    fn the_demo_trace_loads_and_fits_its_brief() {
        let t = load(repo("config/demo-trace.yaml")).unwrap();
        assert_eq!(t.users.len(), 3);
        assert!(t.users.iter().all(|u| u.create));
        assert_eq!(t.functions.len(), 3);
        assert!(
            t.functions
                .iter()
                .all(|f| (128..=256).contains(&f.memory_mb))
        );
        let v: Vec<Invocation> = t.invocations().collect();
        assert_eq!(t.total, Some(v.len() as u64));
        assert!((150..=300).contains(&v.len()), "{} invocations", v.len());
        assert!(v.last().unwrap().at_ns <= 60_000_000_000);
        // A burst at the start (cold starts) for every function.
        for f in 0..3 {
            let early = v
                .iter()
                .filter(|x| x.function == f && x.at_ns < 1_000_000_000)
                .count();
            assert!(
                early >= 2,
                "function {f}: {early} invocations in the first second"
            );
        }
    }

    #[test]
    fn the_sample_directory_loads_through_the_default_catalog() {
        let t = load(repo("config/traces/faasload-sample")).unwrap();
        assert!(t.users.len() >= 2);
        assert!(t.total.unwrap() > 0);
        assert!(t.functions.iter().all(|f| f.code.is_file()));
    }
}

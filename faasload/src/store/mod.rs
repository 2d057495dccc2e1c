//! The results store: SQLite by default, PostgreSQL and MariaDB by URL, with the original
//! FaaSLoad tables (`runs`, `resources`, `parameters`, `functions`, same columns) extended
//! with what faasload adds. Rows arrive through a channel to a batching writer; the
//! send path never touches the database.
pub mod row;

pub use row::{MonitorReading, RunRow};

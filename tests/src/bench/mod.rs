//! The parts of `saoma-bench`: a compact registry population with pre-signed lifecycles, the
//! NATS ingest drivers, the plain cqrs-es + postgres-es baseline, the machine's limits, process
//! accounting from `/proc`, the replay benchmark, and the results table.

pub mod baseline;
pub mod ingest;
pub mod limits;
pub mod population;
pub mod procs;
pub mod replay;
pub mod report;

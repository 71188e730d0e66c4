//! The SQL this service runs beside the es crates' own, shared by both databases (both accept
//! `$n` placeholders).

pub const STREAM: &str = include_str!("sql/stream.sql");
pub const ALL_OF_TYPE: &str = include_str!("sql/all_of_type.sql");
pub const OF_EVENT_TYPES: &str = include_str!("sql/of_event_types.sql");
pub const COUNT: &str = include_str!("sql/count.sql");

//! Saoma's domain: the inspection lifecycle and its rules, the registries, signed command
//! envelopes and sealed, hash-chained events. Pure: no IO, no clock (time comes in with the
//! command), no key material (signing comes in through the `Notary` trait).

pub mod batch;
pub mod canonical;
pub mod checkpoint;
pub mod envelope;
pub mod ids;
pub mod inspection;
pub mod keys;
pub mod merkle;
pub mod raw;
pub mod registry;
mod schema;
pub mod seal;
pub mod time;
pub mod verify;

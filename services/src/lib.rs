//! The edges of Saoma: configuration, key material, event stores, the command service, the
//! HTTP API and the `saoma` command line. The only crate that does IO.

pub mod app;
pub mod audit;
pub mod client;
pub mod config;
pub mod device;
pub mod http;
pub mod import;
pub mod keys;
pub mod log;
pub mod nats;
pub mod pages;
pub mod parallel;
pub mod qr;
pub mod registry_follow;
pub mod registry_view;
pub mod replay;
pub mod report;
pub mod rules;
pub mod serve;
pub mod simulate;
pub mod store;
pub mod token;
pub mod views;
pub mod writer;

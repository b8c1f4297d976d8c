//! tollgated: runs Kestra-style flows with durable human approval gates.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod duration;
pub mod engine;
pub mod error_chain;
pub mod expr;
pub mod flow;
pub mod http;
pub mod inputs;
pub mod kv;
pub mod masking;
pub mod metrics;
pub mod ops;
pub mod secrets;
pub mod server;
pub mod services;
pub mod store;
pub mod tasks;
pub mod tls;
pub mod triggers;
pub mod yaml;

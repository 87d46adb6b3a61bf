//! The registry of kinds: what the API serves, how each kind is printed,
//! defaulted and validated, and its schema. No I/O: no tokio, no HTTP, no SQL.
pub mod apiextensions;
pub mod conversion;
pub mod defaults;
pub mod fieldmanager;
pub mod openapi;
pub mod printers;
pub mod protobuf;
pub mod registry;
pub mod validation;

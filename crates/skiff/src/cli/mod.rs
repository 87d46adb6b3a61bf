//! Subcommands: flags (clap) and the wiring of components for each.

pub mod server;

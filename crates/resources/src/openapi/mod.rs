//! OpenAPI: the schema of every built-in kind, the documents served under
//! `/openapi/v2` and `/openapi/v3`, and the strict field validation that
//! `fieldValidation=Strict|Warn` asks for.
//!
//! - [`schemas`]: kind → schema, generated once from the k8s-openapi types with
//!   schemars, named as Kubernetes names them and tagged with
//!   `x-kubernetes-group-version-kind` (how `kubectl explain` finds them).
//! - [`document`]: pure functions from a [`Registry`](crate::registry::Registry)
//!   to the v3 index, the v3 document of a group-version and the v2 document.
//!   Each write operation carries the kind's group/version/kind and a
//!   `fieldValidation` query parameter: that is how kubectl learns that the
//!   server validates fields, and so sends `fieldValidation=Strict`.
//! - [`strict`]: unknown and duplicated fields of a JSON body, in Kubernetes'
//!   wording.
//!
//! No I/O: callers serve the documents and cache them per registry.

pub mod custom;
pub mod document;
pub mod list_semantics;
pub mod schemas;
pub mod strict;

pub use document::{group_version_path, v2, v3_group_version, v3_root};
pub use schemas::{schema_for, Gvk};
pub use strict::{field_problems, strict_decoding_error};
pub mod v2_proto;

//! `x-kubernetes-validations`: CEL rules on schema nodes.
//!
//! Not evaluated yet: rules are accepted and ignored.

use serde_json::Value;

use crate::validation::FieldError;

/// Checks that a rule compiles.
pub fn compile(_rule: &str) -> Result<(), String> {
    Ok(())
}

/// Evaluates the rules of `schema` against `obj` (and `old` on update).
pub fn validate(_schema: &Value, _obj: &Value, _old: Option<&Value>, _errs: &mut Vec<FieldError>) {}

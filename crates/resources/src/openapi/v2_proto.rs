//! The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf
//! (google/gnostic-models, `openapiv2/OpenAPIv2.proto`): what kube-apiserver
//! serves for `GET /openapi/v2` with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, and
//! what kubectl up to 1.28 asks for.
//!
//! The encoder walks the JSON document the way gnostic's compiler does:
//! every `x-…` key becomes a `NamedAny` whose `Any.yaml` holds the value's
//! text (JSON, which is YAML), values without a typed field (`default`,
//! `enum`, `example`) become `Any` the same way, and parameters, responses and
//! security schemes pick their oneof variant from `in`, `$ref` and `type`.
//! Keys the message has no field for are dropped.
//!
//! Fields follow proto3: scalars equal to their default are left out,
//! sub-messages are written whenever the JSON has the key (so an empty
//! `properties: {}` still decodes as present, as kubectl's model parser
//! expects), and a oneof's `boolean: false` is written explicitly.

use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 JSON document as gnostic's openapi.v2.Document
/// protobuf (what kube-apiserver serves for that Accept type).
///
/// A non-object `doc` encodes as an empty Document.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut e = Enc::default();
    if let Some(m) = doc.as_object() {
        document(&mut e, m);
    }
    e.buf
}

// ---------------------------------------------------------------------------
// Wire format.

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

#[derive(Default)]
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn bool(&mut self, field: u32, b: bool) {
        self.key(field, VARINT);
        self.varint(u64::from(b));
    }

    /// A sub-message, written even when empty.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Enc)) {
        let mut inner = Enc::default();
        body(&mut inner);
        self.bytes(field, &inner.buf);
    }

    // --- JSON-keyed helpers: each writes nothing when the key is absent or
    // --- holds the proto3 default.

    fn str_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        if let Some(s) = m.get(key).and_then(Value::as_str) {
            if !s.is_empty() {
                self.string(field, s);
            }
        }
    }

    fn bool_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        if m.get(key).and_then(Value::as_bool) == Some(true) {
            self.bool(field, true);
        }
    }

    fn double_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        if let Some(f) = m.get(key).and_then(Value::as_f64) {
            if f != 0.0 {
                self.key(field, FIXED64);
                self.buf.extend_from_slice(&f.to_bits().to_le_bytes());
            }
        }
    }

    fn int64_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        let v = match m.get(key) {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
                .or_else(|| n.as_f64().map(|f| f as i64)),
            _ => None,
        };
        if let Some(v) = v.filter(|v| *v != 0) {
            self.key(field, VARINT);
            self.varint(v as u64);
        }
    }

    /// `repeated string` from a JSON array of strings (or a lone string).
    fn strings_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        match m.get(key) {
            Some(Value::String(s)) => self.string(field, s),
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    self.string(field, s);
                }
            }
            _ => {}
        }
    }

    /// `Any` holding a JSON value.
    fn any_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        if let Some(v) = m.get(key) {
            self.message(field, |e| any(e, v));
        }
    }

    /// `repeated Any` from a JSON array.
    fn anys_of(&mut self, field: u32, m: &Map<String, Value>, key: &str) {
        if let Some(items) = m.get(key).and_then(Value::as_array) {
            for v in items {
                self.message(field, |e| any(e, v));
            }
        }
    }

    /// `repeated NamedAny vendor_extension`: every `x-…` key, in order.
    fn extensions(&mut self, field: u32, m: &Map<String, Value>) {
        for (name, v) in m.iter().filter(|(k, _)| is_extension(k)) {
            self.message(field, |e| named_any(e, name, v));
        }
    }

    /// A sub-message from a JSON object under `key`.
    fn object_of(
        &mut self,
        field: u32,
        m: &Map<String, Value>,
        key: &str,
        body: impl FnOnce(&mut Enc, &Map<String, Value>),
    ) {
        if let Some(o) = m.get(key).and_then(Value::as_object) {
            self.message(field, |e| body(e, o));
        }
    }

    /// `repeated` sub-messages from a JSON array of objects under `key`.
    fn objects_of(
        &mut self,
        field: u32,
        m: &Map<String, Value>,
        key: &str,
        body: impl Fn(&mut Enc, &Map<String, Value>),
    ) {
        if let Some(items) = m.get(key).and_then(Value::as_array) {
            for o in items.iter().filter_map(Value::as_object) {
                self.message(field, |e| body(e, o));
            }
        }
    }

    /// `Named…` entries (name = 1, value = 2) from a JSON object under `key`,
    /// skipping `x-…` keys when the map has its own vendor extensions.
    fn named_of(
        &mut self,
        field: u32,
        m: &Map<String, Value>,
        key: &str,
        body: impl Fn(&mut Enc, &Map<String, Value>),
    ) {
        if let Some(o) = m.get(key).and_then(Value::as_object) {
            self.named(field, o, false, body);
        }
    }

    fn named(
        &mut self,
        field: u32,
        o: &Map<String, Value>,
        skip_extensions: bool,
        body: impl Fn(&mut Enc, &Map<String, Value>),
    ) {
        for (name, v) in o {
            if skip_extensions && is_extension(name) {
                continue;
            }
            let Some(v) = v.as_object() else { continue };
            self.message(field, |e| {
                e.string(1, name);
                e.message(2, |e| body(e, v));
            });
        }
    }
}

fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

/// gnostic's `Any`: `google.protobuf.Any value = 1; string yaml = 2;`. The
/// text is the value as JSON (a subset of YAML) with YAML's trailing newline.
fn any(e: &mut Enc, v: &Value) {
    let mut text = v.to_string();
    text.push('\n');
    e.string(2, &text);
}

fn named_any(e: &mut Enc, name: &str, v: &Value) {
    e.string(1, name);
    e.message(2, |e| any(e, v));
}

// ---------------------------------------------------------------------------
// Messages, fields in field-number order.

fn document(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "swagger");
    e.object_of(2, m, "info", info);
    e.str_of(3, m, "host");
    e.str_of(4, m, "basePath");
    e.strings_of(5, m, "schemes");
    e.strings_of(6, m, "consumes");
    e.strings_of(7, m, "produces");
    e.object_of(8, m, "paths", paths);
    e.object_of(9, m, "definitions", |e, defs| {
        e.named(1, defs, false, schema)
    });
    e.object_of(10, m, "parameters", |e, ps| {
        e.named(1, ps, false, parameter)
    });
    e.object_of(11, m, "responses", |e, rs| e.named(1, rs, false, response));
    e.objects_of(12, m, "security", security_requirement);
    e.object_of(13, m, "securityDefinitions", |e, ds| {
        e.named(1, ds, false, security_definitions_item)
    });
    e.objects_of(14, m, "tags", tag);
    e.object_of(15, m, "externalDocs", external_docs);
    e.extensions(16, m);
}

fn info(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "title");
    e.str_of(2, m, "version");
    e.str_of(3, m, "description");
    e.str_of(4, m, "termsOfService");
    e.object_of(5, m, "contact", |e, c| {
        e.str_of(1, c, "name");
        e.str_of(2, c, "url");
        e.str_of(3, c, "email");
        e.extensions(4, c);
    });
    e.object_of(6, m, "license", |e, l| {
        e.str_of(1, l, "name");
        e.str_of(2, l, "url");
        e.extensions(3, l);
    });
    e.extensions(7, m);
}

fn external_docs(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "description");
    e.str_of(2, m, "url");
    e.extensions(3, m);
}

fn tag(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "name");
    e.str_of(2, m, "description");
    e.object_of(3, m, "externalDocs", external_docs);
    e.extensions(4, m);
}

/// `Paths { vendor_extension = 1; repeated NamedPathItem path = 2; }`.
fn paths(e: &mut Enc, m: &Map<String, Value>) {
    e.extensions(1, m);
    e.named(2, m, true, path_item);
}

fn path_item(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "$ref");
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        e.object_of(field, m, method, operation);
    }
    e.objects_of(9, m, "parameters", parameters_item);
    e.extensions(10, m);
}

fn operation(e: &mut Enc, m: &Map<String, Value>) {
    e.strings_of(1, m, "tags");
    e.str_of(2, m, "summary");
    e.str_of(3, m, "description");
    e.object_of(4, m, "externalDocs", external_docs);
    e.str_of(5, m, "operationId");
    e.strings_of(6, m, "produces");
    e.strings_of(7, m, "consumes");
    e.objects_of(8, m, "parameters", parameters_item);
    e.object_of(9, m, "responses", responses);
    e.strings_of(10, m, "schemes");
    e.bool_of(11, m, "deprecated");
    e.objects_of(12, m, "security", security_requirement);
    e.extensions(13, m);
}

fn json_reference(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "$ref");
    e.str_of(2, m, "description");
}

/// `ParametersItem { oneof { Parameter parameter = 1; JsonReference json_reference = 2; } }`.
fn parameters_item(e: &mut Enc, m: &Map<String, Value>) {
    if m.contains_key("$ref") {
        e.message(2, |e| json_reference(e, m));
    } else {
        e.message(1, |e| parameter(e, m));
    }
}

/// `Parameter { oneof { BodyParameter = 1; NonBodyParameter = 2; } }`, and
/// `NonBodyParameter { oneof { header = 1; formData = 2; query = 3; path = 4; } }`.
fn parameter(e: &mut Enc, m: &Map<String, Value>) {
    match m.get("in").and_then(Value::as_str).unwrap_or("") {
        "body" => e.message(1, |e| {
            e.str_of(1, m, "description");
            e.str_of(2, m, "name");
            e.str_of(3, m, "in");
            e.bool_of(4, m, "required");
            e.object_of(5, m, "schema", schema);
            e.extensions(6, m);
        }),
        location => {
            let (variant, allow_empty) = match location {
                "header" => (1, false),
                "formData" => (2, true),
                "path" => (4, false),
                _ => (3, true),
            };
            e.message(2, |e| e.message(variant, |e| non_body(e, m, allow_empty)));
        }
    }
}

/// The four `…ParameterSubSchema`s: query and formData have
/// `allow_empty_value = 5`, which shifts every later field by one.
fn non_body(e: &mut Enc, m: &Map<String, Value>, allow_empty: bool) {
    e.bool_of(1, m, "required");
    e.str_of(2, m, "in");
    e.str_of(3, m, "description");
    e.str_of(4, m, "name");
    let base = if allow_empty {
        e.bool_of(5, m, "allowEmptyValue");
        6
    } else {
        5
    };
    primitive(e, m, base);
    e.extensions(base + 17, m);
}

/// The run of fields that `PrimitivesItems`, `Header` and the non-body
/// parameters share, from `type` (at `base`) to `multiple_of` (`base + 16`).
fn primitive(e: &mut Enc, m: &Map<String, Value>, base: u32) {
    e.str_of(base, m, "type");
    e.str_of(base + 1, m, "format");
    e.object_of(base + 2, m, "items", primitives_items);
    e.str_of(base + 3, m, "collectionFormat");
    e.any_of(base + 4, m, "default");
    e.double_of(base + 5, m, "maximum");
    e.bool_of(base + 6, m, "exclusiveMaximum");
    e.double_of(base + 7, m, "minimum");
    e.bool_of(base + 8, m, "exclusiveMinimum");
    e.int64_of(base + 9, m, "maxLength");
    e.int64_of(base + 10, m, "minLength");
    e.str_of(base + 11, m, "pattern");
    e.int64_of(base + 12, m, "maxItems");
    e.int64_of(base + 13, m, "minItems");
    e.bool_of(base + 14, m, "uniqueItems");
    e.anys_of(base + 15, m, "enum");
    e.double_of(base + 16, m, "multipleOf");
}

fn primitives_items(e: &mut Enc, m: &Map<String, Value>) {
    primitive(e, m, 1);
    e.extensions(18, m);
}

fn header(e: &mut Enc, m: &Map<String, Value>) {
    primitive(e, m, 1);
    e.str_of(18, m, "description");
    e.extensions(19, m);
}

/// `Responses { repeated NamedResponseValue response_code = 1; vendor_extension = 2; }`.
fn responses(e: &mut Enc, m: &Map<String, Value>) {
    for (code, v) in m.iter().filter(|(k, _)| !is_extension(k)) {
        let Some(v) = v.as_object() else { continue };
        e.message(1, |e| {
            e.string(1, code);
            // ResponseValue { oneof { Response response = 1; JsonReference json_reference = 2; } }
            e.message(2, |e| {
                if v.contains_key("$ref") {
                    e.message(2, |e| json_reference(e, v));
                } else {
                    e.message(1, |e| response(e, v));
                }
            });
        });
    }
    e.extensions(2, m);
}

fn response(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "description");
    // SchemaItem { oneof { Schema schema = 1; FileSchema file_schema = 2; } }
    e.object_of(2, m, "schema", |e, s| {
        if s.get("type").and_then(Value::as_str) == Some("file") {
            e.message(2, |e| file_schema(e, s));
        } else {
            e.message(1, |e| schema(e, s));
        }
    });
    e.named_of(3, m, "headers", header);
    e.object_of(4, m, "examples", |e, ex| {
        for (name, v) in ex {
            e.message(1, |e| named_any(e, name, v));
        }
    });
    e.extensions(5, m);
}

fn file_schema(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "format");
    e.str_of(2, m, "title");
    e.str_of(3, m, "description");
    e.any_of(4, m, "default");
    e.strings_of(5, m, "required");
    e.str_of(6, m, "type");
    e.bool_of(7, m, "readOnly");
    e.object_of(8, m, "externalDocs", external_docs);
    e.any_of(9, m, "example");
    e.extensions(10, m);
}

fn schema(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "$ref");
    e.str_of(2, m, "format");
    e.str_of(3, m, "title");
    e.str_of(4, m, "description");
    e.any_of(5, m, "default");
    e.double_of(6, m, "multipleOf");
    e.double_of(7, m, "maximum");
    e.bool_of(8, m, "exclusiveMaximum");
    e.double_of(9, m, "minimum");
    e.bool_of(10, m, "exclusiveMinimum");
    e.int64_of(11, m, "maxLength");
    e.int64_of(12, m, "minLength");
    e.str_of(13, m, "pattern");
    e.int64_of(14, m, "maxItems");
    e.int64_of(15, m, "minItems");
    e.bool_of(16, m, "uniqueItems");
    e.int64_of(17, m, "maxProperties");
    e.int64_of(18, m, "minProperties");
    e.strings_of(19, m, "required");
    e.anys_of(20, m, "enum");
    // AdditionalPropertiesItem { oneof { Schema schema = 1; bool boolean = 2; } }
    match m.get("additionalProperties") {
        Some(Value::Object(s)) => e.message(21, |e| e.message(1, |e| schema(e, s))),
        Some(Value::Bool(b)) => e.message(21, |e| e.bool(2, *b)),
        _ => {}
    }
    // TypeItem { repeated string value = 1; }
    if m.contains_key("type") {
        e.message(22, |e| e.strings_of(1, m, "type"));
    }
    // ItemsItem { repeated Schema schema = 1; }
    match m.get("items") {
        Some(Value::Object(s)) => e.message(23, |e| e.message(1, |e| schema(e, s))),
        Some(Value::Array(items)) => e.message(23, |e| {
            for s in items.iter().filter_map(Value::as_object) {
                e.message(1, |e| schema(e, s));
            }
        }),
        _ => {}
    }
    e.objects_of(24, m, "allOf", schema);
    // Properties { repeated NamedSchema additional_properties = 1; }
    e.object_of(25, m, "properties", |e, ps| e.named(1, ps, false, schema));
    e.str_of(26, m, "discriminator");
    e.bool_of(27, m, "readOnly");
    e.object_of(28, m, "xml", |e, x| {
        e.str_of(1, x, "name");
        e.str_of(2, x, "namespace");
        e.str_of(3, x, "prefix");
        e.bool_of(4, x, "attribute");
        e.bool_of(5, x, "wrapped");
        e.extensions(6, x);
    });
    e.object_of(29, m, "externalDocs", external_docs);
    e.any_of(30, m, "example");
    e.extensions(31, m);
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties = 1; }`.
fn security_requirement(e: &mut Enc, m: &Map<String, Value>) {
    for (name, scopes) in m {
        e.message(1, |e| {
            e.string(1, name);
            e.message(2, |e| {
                for s in scopes.as_array().into_iter().flatten() {
                    if let Some(s) = s.as_str() {
                        e.string(1, s);
                    }
                }
            });
        });
    }
}

/// `SecurityDefinitionsItem`, its variant chosen by `type` and `flow`.
fn security_definitions_item(e: &mut Enc, m: &Map<String, Value>) {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let flow = m.get("flow").and_then(Value::as_str).unwrap_or("");
    match (ty, flow) {
        ("basic", _) => e.message(1, |e| {
            e.str_of(1, m, "type");
            e.str_of(2, m, "description");
            e.extensions(3, m);
        }),
        ("oauth2", "implicit") => e.message(3, |e| {
            oauth2_head(e, m);
            e.str_of(4, m, "authorizationUrl");
            e.str_of(5, m, "description");
            e.extensions(6, m);
        }),
        ("oauth2", "password") | ("oauth2", "application") => {
            let variant = if flow == "password" { 4 } else { 5 };
            e.message(variant, |e| {
                oauth2_head(e, m);
                e.str_of(4, m, "tokenUrl");
                e.str_of(5, m, "description");
                e.extensions(6, m);
            })
        }
        ("oauth2", _) => e.message(6, |e| {
            oauth2_head(e, m);
            e.str_of(4, m, "authorizationUrl");
            e.str_of(5, m, "tokenUrl");
            e.str_of(6, m, "description");
            e.extensions(7, m);
        }),
        _ => e.message(2, |e| {
            e.str_of(1, m, "type");
            e.str_of(2, m, "name");
            e.str_of(3, m, "in");
            e.str_of(4, m, "description");
            e.extensions(5, m);
        }),
    }
}

/// `type = 1; flow = 2; Oauth2Scopes scopes = 3;` shared by the OAuth2 schemes.
fn oauth2_head(e: &mut Enc, m: &Map<String, Value>) {
    e.str_of(1, m, "type");
    e.str_of(2, m, "flow");
    e.object_of(3, m, "scopes", |e, scopes| {
        for (name, v) in scopes {
            e.message(1, |e| {
                e.string(1, name);
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    e.string(2, v);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    //! Decoded with hand-written prost structs for the subset of
    //! OpenAPIv2.proto that kubectl reads; a oneof is modelled as its
    //! optional members, which is the same on the wire.

    use super::*;
    use crate::openapi::v2;
    use crate::registry::Registry;
    use prost::Message;
    use serde_json::json;

    #[derive(Clone, PartialEq, Message)]
    struct Document {
        #[prost(string, tag = "1")]
        swagger: String,
        #[prost(message, optional, tag = "2")]
        info: Option<Info>,
        #[prost(string, repeated, tag = "6")]
        consumes: Vec<String>,
        #[prost(message, optional, tag = "8")]
        paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        definitions: Option<Definitions>,
        #[prost(message, repeated, tag = "12")]
        security: Vec<SecurityRequirement>,
        #[prost(message, optional, tag = "13")]
        security_definitions: Option<SecurityDefinitions>,
        #[prost(message, repeated, tag = "16")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Info {
        #[prost(string, tag = "1")]
        title: String,
        #[prost(string, tag = "2")]
        version: String,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Paths {
        #[prost(message, repeated, tag = "1")]
        vendor_extension: Vec<NamedAny>,
        #[prost(message, repeated, tag = "2")]
        path: Vec<NamedPathItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedPathItem {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<PathItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct PathItem {
        #[prost(message, optional, tag = "2")]
        get: Option<Operation>,
        #[prost(message, optional, tag = "3")]
        put: Option<Operation>,
        #[prost(message, optional, tag = "4")]
        post: Option<Operation>,
        #[prost(message, optional, tag = "5")]
        delete: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        parameters: Vec<ParametersItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Operation {
        #[prost(string, repeated, tag = "1")]
        tags: Vec<String>,
        #[prost(string, tag = "2")]
        summary: String,
        #[prost(string, tag = "3")]
        description: String,
        #[prost(string, tag = "5")]
        operation_id: String,
        #[prost(string, repeated, tag = "6")]
        produces: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        parameters: Vec<ParametersItem>,
        #[prost(message, optional, tag = "9")]
        responses: Option<Responses>,
        #[prost(string, repeated, tag = "10")]
        schemes: Vec<String>,
        #[prost(message, repeated, tag = "13")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct ParametersItem {
        #[prost(message, optional, tag = "1")]
        parameter: Option<Parameter>,
        #[prost(message, optional, tag = "2")]
        json_reference: Option<JsonReference>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct JsonReference {
        #[prost(string, tag = "1")]
        xref: String,
        #[prost(string, tag = "2")]
        description: String,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Parameter {
        #[prost(message, optional, tag = "1")]
        body_parameter: Option<BodyParameter>,
        #[prost(message, optional, tag = "2")]
        non_body_parameter: Option<NonBodyParameter>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct BodyParameter {
        #[prost(string, tag = "1")]
        description: String,
        #[prost(string, tag = "2")]
        name: String,
        #[prost(string, tag = "3")]
        r#in: String,
        #[prost(bool, tag = "4")]
        required: bool,
        #[prost(message, optional, tag = "5")]
        schema: Option<Schema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NonBodyParameter {
        #[prost(message, optional, tag = "1")]
        header_parameter_sub_schema: Option<PathParameterSubSchema>,
        #[prost(message, optional, tag = "2")]
        form_data_parameter_sub_schema: Option<QueryParameterSubSchema>,
        #[prost(message, optional, tag = "3")]
        query_parameter_sub_schema: Option<QueryParameterSubSchema>,
        #[prost(message, optional, tag = "4")]
        path_parameter_sub_schema: Option<PathParameterSubSchema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct QueryParameterSubSchema {
        #[prost(bool, tag = "1")]
        required: bool,
        #[prost(string, tag = "2")]
        r#in: String,
        #[prost(string, tag = "3")]
        description: String,
        #[prost(string, tag = "4")]
        name: String,
        #[prost(bool, tag = "5")]
        allow_empty_value: bool,
        #[prost(string, tag = "6")]
        r#type: String,
        #[prost(message, optional, tag = "8")]
        items: Option<PrimitivesItems>,
        #[prost(message, optional, tag = "10")]
        default: Option<Any>,
        #[prost(double, tag = "11")]
        maximum: f64,
        #[prost(int64, tag = "16")]
        min_length: i64,
        #[prost(bool, tag = "20")]
        unique_items: bool,
        #[prost(message, repeated, tag = "21")]
        r#enum: Vec<Any>,
        #[prost(message, repeated, tag = "23")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct PathParameterSubSchema {
        #[prost(bool, tag = "1")]
        required: bool,
        #[prost(string, tag = "2")]
        r#in: String,
        #[prost(string, tag = "3")]
        description: String,
        #[prost(string, tag = "4")]
        name: String,
        #[prost(string, tag = "5")]
        r#type: String,
        #[prost(bool, tag = "19")]
        unique_items: bool,
        #[prost(message, repeated, tag = "22")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct PrimitivesItems {
        #[prost(string, tag = "1")]
        r#type: String,
        #[prost(message, repeated, tag = "18")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Responses {
        #[prost(message, repeated, tag = "1")]
        response_code: Vec<NamedResponseValue>,
        #[prost(message, repeated, tag = "2")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedResponseValue {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<ResponseValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct ResponseValue {
        #[prost(message, optional, tag = "1")]
        response: Option<Response>,
        #[prost(message, optional, tag = "2")]
        json_reference: Option<JsonReference>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Response {
        #[prost(string, tag = "1")]
        description: String,
        #[prost(message, optional, tag = "2")]
        schema: Option<SchemaItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct SchemaItem {
        #[prost(message, optional, tag = "1")]
        schema: Option<Schema>,
        #[prost(message, optional, tag = "2")]
        file_schema: Option<FileSchema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct FileSchema {
        #[prost(string, tag = "6")]
        r#type: String,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Definitions {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedSchema {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Schema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Schema {
        #[prost(string, tag = "1")]
        xref: String,
        #[prost(string, tag = "2")]
        format: String,
        #[prost(string, tag = "3")]
        title: String,
        #[prost(string, tag = "4")]
        description: String,
        #[prost(message, optional, tag = "5")]
        default: Option<Any>,
        #[prost(double, tag = "7")]
        maximum: f64,
        #[prost(bool, tag = "8")]
        exclusive_maximum: bool,
        #[prost(double, tag = "9")]
        minimum: f64,
        #[prost(int64, tag = "11")]
        max_length: i64,
        #[prost(int64, tag = "12")]
        min_length: i64,
        #[prost(string, tag = "13")]
        pattern: String,
        #[prost(bool, tag = "16")]
        unique_items: bool,
        #[prost(string, repeated, tag = "19")]
        required: Vec<String>,
        #[prost(message, repeated, tag = "20")]
        r#enum: Vec<Any>,
        #[prost(message, optional, boxed, tag = "21")]
        additional_properties: Option<Box<AdditionalPropertiesItem>>,
        #[prost(message, optional, tag = "22")]
        r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        items: Option<ItemsItem>,
        #[prost(message, repeated, tag = "24")]
        all_of: Vec<Schema>,
        #[prost(message, optional, tag = "25")]
        properties: Option<Properties>,
        #[prost(bool, tag = "27")]
        read_only: bool,
        #[prost(message, optional, tag = "30")]
        example: Option<Any>,
        #[prost(message, repeated, tag = "31")]
        vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct AdditionalPropertiesItem {
        #[prost(message, optional, tag = "1")]
        schema: Option<Schema>,
        #[prost(bool, optional, tag = "2")]
        boolean: Option<bool>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        value: Vec<String>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        schema: Vec<Schema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Properties {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedAny {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Any>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Any {
        #[prost(bytes = "vec", tag = "1")]
        value: Vec<u8>,
        #[prost(string, tag = "2")]
        yaml: String,
    }

    #[derive(Clone, PartialEq, Message)]
    struct SecurityRequirement {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedStringArray>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedStringArray {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<StringArray>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct StringArray {
        #[prost(string, repeated, tag = "1")]
        value: Vec<String>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct SecurityDefinitions {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedSecurityDefinitionsItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct NamedSecurityDefinitionsItem {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<SecurityDefinitionsItem>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct SecurityDefinitionsItem {
        #[prost(message, optional, tag = "2")]
        api_key_security: Option<ApiKeySecurity>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct ApiKeySecurity {
        #[prost(string, tag = "1")]
        r#type: String,
        #[prost(string, tag = "2")]
        name: String,
        #[prost(string, tag = "3")]
        r#in: String,
        #[prost(string, tag = "4")]
        description: String,
    }

    fn decode(doc: &Value) -> Document {
        Document::decode(encode_document(doc).as_slice()).expect("decodes as openapi.v2.Document")
    }

    /// An `Any`'s text read back, as kubectl does with a YAML parser.
    fn text(a: &Option<Any>) -> Value {
        let a = a.as_ref().expect("Any present");
        assert!(a.yaml.ends_with('\n'));
        serde_json::from_str(&a.yaml).expect("Any.yaml is JSON")
    }

    fn extension(exts: &[NamedAny], name: &str) -> Option<Value> {
        exts.iter().find(|e| e.name == name).map(|e| text(&e.value))
    }

    fn prop<'a>(s: &'a Schema, name: &str) -> &'a Schema {
        s.properties
            .as_ref()
            .expect("properties")
            .additional_properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_ref())
            .unwrap_or_else(|| panic!("property {name}"))
    }

    /// The decoded schema back as JSON, for the fields this module models.
    fn schema_json(s: &Schema) -> Value {
        let mut m = Map::new();
        let mut put_str = |k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.into(), v.into());
            }
        };
        put_str("$ref", &s.xref);
        put_str("format", &s.format);
        put_str("title", &s.title);
        put_str("description", &s.description);
        put_str("pattern", &s.pattern);
        if s.default.is_some() {
            m.insert("default".into(), text(&s.default));
        }
        if s.example.is_some() {
            m.insert("example".into(), text(&s.example));
        }
        if s.maximum != 0.0 {
            m.insert("maximum".into(), json!(s.maximum));
        }
        if s.exclusive_maximum {
            m.insert("exclusiveMaximum".into(), true.into());
        }
        if s.minimum != 0.0 {
            m.insert("minimum".into(), json!(s.minimum));
        }
        if s.max_length != 0 {
            m.insert("maxLength".into(), s.max_length.into());
        }
        if s.min_length != 0 {
            m.insert("minLength".into(), s.min_length.into());
        }
        if s.unique_items {
            m.insert("uniqueItems".into(), true.into());
        }
        if s.read_only {
            m.insert("readOnly".into(), true.into());
        }
        if !s.required.is_empty() {
            m.insert("required".into(), json!(s.required));
        }
        if !s.r#enum.is_empty() {
            let values: Vec<Value> = s.r#enum.iter().map(|a| text(&Some(a.clone()))).collect();
            m.insert("enum".into(), values.into());
        }
        if let Some(ap) = &s.additional_properties {
            let v = match (&ap.schema, ap.boolean) {
                (Some(s), None) => schema_json(s),
                (None, Some(b)) => b.into(),
                other => panic!("additionalProperties oneof: {other:?}"),
            };
            m.insert("additionalProperties".into(), v);
        }
        if let Some(t) = &s.r#type {
            let v = match t.value.as_slice() {
                [one] => one.clone().into(),
                many => json!(many),
            };
            m.insert("type".into(), v);
        }
        if let Some(items) = &s.items {
            let v = match items.schema.as_slice() {
                [one] => schema_json(one),
                many => many.iter().map(schema_json).collect(),
            };
            m.insert("items".into(), v);
        }
        if !s.all_of.is_empty() {
            m.insert("allOf".into(), s.all_of.iter().map(schema_json).collect());
        }
        if let Some(ps) = &s.properties {
            let ps: Map<String, Value> = ps
                .additional_properties
                .iter()
                .map(|p| (p.name.clone(), schema_json(p.value.as_ref().unwrap())))
                .collect();
            m.insert("properties".into(), ps.into());
        }
        for x in &s.vendor_extension {
            m.insert(x.name.clone(), text(&x.value));
        }
        Value::Object(m)
    }

    fn small() -> Value {
        json!({
            "swagger": "2.0",
            "info": { "title": "Kubernetes", "version": "v1.33.0" },
            "consumes": ["application/json"],
            "x-top": { "a": [1, 2] },
            "paths": {
                "x-paths-ext": "here",
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
                    "patch": {
                        "description": "partially update the specified Deployment",
                        "operationId": "patchAppsV1NamespacedDeployment",
                        "tags": ["apps_v1"],
                        "consumes": ["application/strategic-merge-patch+json"],
                        "produces": ["application/json"],
                        "schemes": ["https"],
                        "parameters": [
                            {
                                "name": "body", "in": "body", "required": true,
                                "schema": { "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch" },
                            },
                            {
                                "name": "fieldValidation", "in": "query", "type": "string",
                                "uniqueItems": true, "description": "fv",
                                "enum": ["Strict", "Warn"], "default": "Strict",
                                "maximum": 2.5, "minLength": 3,
                                "x-param-ext": true,
                            },
                            { "$ref": "#/parameters/pretty" },
                            { "name": "X-H", "in": "header", "type": "string" },
                            { "name": "f", "in": "formData", "type": "array", "items": { "type": "string" } },
                        ],
                        "responses": {
                            "200": { "description": "OK", "schema": { "$ref": "#/definitions/io.k8s.api.apps.v1.Deployment" } },
                            "401": { "description": "Unauthorized" },
                            "default": { "$ref": "#/responses/err" },
                            "x-resp-ext": 7,
                        },
                        "x-kubernetes-action": "patch",
                        "x-kubernetes-group-version-kind": { "group": "apps", "kind": "Deployment", "version": "v1" },
                    },
                    "get": { "operationId": "read", "responses": { "200": { "description": "f", "schema": { "type": "file" } } } },
                    "parameters": [
                        { "name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true },
                    ],
                },
            },
            "definitions": {
                "io.k8s.api.apps.v1.Deployment": {
                    "description": "Deployment enables declarative updates for Pods and ReplicaSets.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "spec": { "$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec", "description": "spec" },
                        "containers": {
                            "type": "array",
                            "items": { "$ref": "#/definitions/io.k8s.api.core.v1.Container" },
                            "x-kubernetes-patch-merge-key": "name",
                            "x-kubernetes-patch-strategy": "merge",
                        },
                        "labels": { "type": "object", "additionalProperties": { "type": "string", "default": "" } },
                        "closed": { "type": "object", "additionalProperties": false },
                        "open": { "type": "object", "additionalProperties": true },
                        "empty": { "type": "object", "properties": {} },
                        "tuple": { "items": [{ "type": "string" }, { "type": "integer", "format": "int32" }] },
                        "multi": { "type": ["string", "null"], "maxLength": 63, "pattern": "^[a-z]$" },
                        "mode": { "type": "string", "enum": ["A", "B", null], "example": { "k": "v" } },
                        "num": { "type": "number", "minimum": -1.5, "maximum": 1e300, "exclusiveMaximum": true, "readOnly": true },
                        "both": { "allOf": [{ "$ref": "#/definitions/a.B" }, { "type": "object" }] },
                        "text": { "type": "string", "description": "tab\t\"quote\" é \u{1}" },
                    },
                    "x-kubernetes-group-version-kind": [{ "group": "apps", "kind": "Deployment", "version": "v1" }],
                },
            },
            "securityDefinitions": {
                "BearerToken": { "type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer token authentication" },
            },
            "security": [{ "BearerToken": [] }],
        })
    }

    #[test]
    fn v2_proto_small_document_round_trips() {
        let src = small();
        let doc = decode(&src);
        assert_eq!(doc.swagger, "2.0");
        let info = doc.info.as_ref().unwrap();
        assert_eq!(
            (info.title.as_str(), info.version.as_str()),
            ("Kubernetes", "v1.33.0")
        );
        assert_eq!(doc.consumes, ["application/json"]);
        assert_eq!(
            extension(&doc.vendor_extension, "x-top"),
            Some(json!({ "a": [1, 2] }))
        );

        // Paths: the x- key is an extension, not a path.
        let paths = doc.paths.as_ref().unwrap();
        assert_eq!(
            extension(&paths.vendor_extension, "x-paths-ext"),
            Some(json!("here"))
        );
        assert_eq!(paths.path.len(), 1);
        let item = &paths.path[0];
        assert_eq!(
            item.name,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        );
        let item = item.value.as_ref().unwrap();
        assert!(item.put.is_none() && item.post.is_none() && item.delete.is_none());

        // Path-level parameter.
        let path_param = item.parameters[0]
            .parameter
            .as_ref()
            .and_then(|p| p.non_body_parameter.as_ref())
            .and_then(|p| p.path_parameter_sub_schema.as_ref())
            .unwrap();
        assert_eq!(path_param.name, "name");
        assert_eq!(path_param.r#in, "path");
        assert_eq!(path_param.r#type, "string");
        assert!(path_param.required && path_param.unique_items);

        let patch = item.patch.as_ref().unwrap();
        assert_eq!(patch.operation_id, "patchAppsV1NamespacedDeployment");
        assert_eq!(
            patch.description,
            "partially update the specified Deployment"
        );
        assert_eq!(patch.tags, ["apps_v1"]);
        assert_eq!(patch.consumes, ["application/strategic-merge-patch+json"]);
        assert_eq!(patch.produces, ["application/json"]);
        assert_eq!(patch.schemes, ["https"]);
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-group-version-kind"),
            Some(json!({ "group": "apps", "kind": "Deployment", "version": "v1" }))
        );
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-action"),
            Some(json!("patch"))
        );

        let [body, query, reference, header, form] = patch.parameters.as_slice() else {
            panic!("{:?}", patch.parameters)
        };
        let body = body
            .parameter
            .as_ref()
            .unwrap()
            .body_parameter
            .as_ref()
            .unwrap();
        assert_eq!(
            (body.name.as_str(), body.r#in.as_str(), body.required),
            ("body", "body", true)
        );
        assert_eq!(
            body.schema.as_ref().unwrap().xref,
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
        // What kubectl 1.27 checks to decide on fieldValidation.
        let query = query
            .parameter
            .as_ref()
            .unwrap()
            .non_body_parameter
            .as_ref()
            .unwrap()
            .query_parameter_sub_schema
            .as_ref()
            .unwrap();
        assert_eq!(query.name, "fieldValidation");
        assert_eq!(query.r#in, "query");
        assert_eq!(query.r#type, "string");
        assert_eq!(query.description, "fv");
        assert!(query.unique_items && !query.required && !query.allow_empty_value);
        assert_eq!(text(&query.default), json!("Strict"));
        let values: Vec<Value> = query
            .r#enum
            .iter()
            .map(|a| text(&Some(a.clone())))
            .collect();
        assert_eq!(values, [json!("Strict"), json!("Warn")]);
        assert_eq!(query.maximum, 2.5);
        assert_eq!(query.min_length, 3);
        assert_eq!(
            extension(&query.vendor_extension, "x-param-ext"),
            Some(json!(true))
        );
        assert_eq!(
            reference.json_reference.as_ref().unwrap().xref,
            "#/parameters/pretty"
        );
        assert!(reference.parameter.is_none());
        let header = header
            .parameter
            .as_ref()
            .unwrap()
            .non_body_parameter
            .as_ref()
            .unwrap();
        assert_eq!(
            header.header_parameter_sub_schema.as_ref().unwrap().name,
            "X-H"
        );
        let form = form
            .parameter
            .as_ref()
            .unwrap()
            .non_body_parameter
            .as_ref()
            .unwrap();
        let form = form.form_data_parameter_sub_schema.as_ref().unwrap();
        assert_eq!(form.items.as_ref().unwrap().r#type, "string");

        let responses = patch.responses.as_ref().unwrap();
        let codes: Vec<&str> = responses
            .response_code
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(codes, ["200", "401", "default"]);
        let ok = responses.response_code[0]
            .value
            .as_ref()
            .unwrap()
            .response
            .as_ref()
            .unwrap();
        assert_eq!(ok.description, "OK");
        let ok_schema = ok.schema.as_ref().unwrap().schema.as_ref().unwrap();
        assert_eq!(
            ok_schema.xref,
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        let unauthorized = responses.response_code[1].value.as_ref().unwrap();
        assert!(unauthorized.response.as_ref().unwrap().schema.is_none());
        let default = responses.response_code[2].value.as_ref().unwrap();
        assert_eq!(
            default.json_reference.as_ref().unwrap().xref,
            "#/responses/err"
        );
        assert_eq!(
            extension(&responses.vendor_extension, "x-resp-ext"),
            Some(json!(7))
        );
        let get = item.get.as_ref().unwrap();
        let file = get.responses.as_ref().unwrap().response_code[0]
            .value
            .as_ref()
            .unwrap();
        let file = file.response.as_ref().unwrap().schema.as_ref().unwrap();
        assert_eq!(file.file_schema.as_ref().unwrap().r#type, "file");

        // Definitions, field by field and then as a whole.
        let defs = &doc.definitions.as_ref().unwrap().additional_properties;
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].name, "io.k8s.api.apps.v1.Deployment");
        let deploy = defs[0].value.as_ref().unwrap();
        assert_eq!(
            extension(&deploy.vendor_extension, "x-kubernetes-group-version-kind"),
            Some(json!([{ "group": "apps", "kind": "Deployment", "version": "v1" }]))
        );
        assert_eq!(deploy.required, ["spec"]);
        assert_eq!(deploy.r#type.as_ref().unwrap().value, ["object"]);
        let containers = prop(deploy, "containers");
        assert_eq!(
            containers.items.as_ref().unwrap().schema[0].xref,
            "#/definitions/io.k8s.api.core.v1.Container"
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-merge-key"),
            Some(json!("name"))
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-strategy"),
            Some(json!("merge"))
        );
        assert_eq!(
            prop(deploy, "closed")
                .additional_properties
                .as_ref()
                .unwrap()
                .boolean,
            Some(false)
        );
        assert!(prop(deploy, "empty").properties.is_some());
        assert!(prop(deploy, "labels").properties.is_none());
        let source = &src["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(&schema_json(deploy), source);

        // Security.
        let sec = &doc
            .security_definitions
            .as_ref()
            .unwrap()
            .additional_properties[0];
        assert_eq!(sec.name, "BearerToken");
        let key = sec
            .value
            .as_ref()
            .unwrap()
            .api_key_security
            .as_ref()
            .unwrap();
        assert_eq!(
            (key.r#type.as_str(), key.name.as_str(), key.r#in.as_str()),
            ("apiKey", "authorization", "header")
        );
        let req = &doc.security[0].additional_properties[0];
        assert_eq!(req.name, "BearerToken");
        assert!(req.value.as_ref().unwrap().value.is_empty());
    }

    #[test]
    fn v2_proto_wire_bytes_of_a_tiny_document() {
        let doc = json!({ "swagger": "2.0", "info": { "title": "K", "version": "v1" } });
        assert_eq!(
            encode_document(&doc),
            [
                0x0a, 3, b'2', b'.', b'0', // swagger = 1
                0x12, 7, // info = 2
                0x0a, 1, b'K', // title = 1
                0x12, 2, b'v', b'1', // version = 2
            ]
        );
        assert!(encode_document(&json!(null)).is_empty());
        // A schema with an empty property map keeps it; a long string gets a
        // multi-byte length.
        let long = "x".repeat(300);
        let bytes = encode_document(&json!({ "definitions": { "a": { "description": long } } }));
        // definitions(9), 312 bytes: description (3 + 300) in a Schema in a
        // NamedSchema (3 + 3 + 303) in Definitions (3 + 309).
        assert_eq!(&bytes[..3], [0x4a, 0xb8, 0x02]);
        assert_eq!(bytes.len(), 3 + 312);
        assert!(bytes.windows(3).any(|w| w == [0x22, 0xac, 0x02]));
    }

    #[test]
    fn v2_proto_builtin_document_keeps_everything_kubectl_reads() {
        let reg = Registry::builtin();
        let src = v2(&reg);
        let doc = decode(&src);
        assert_eq!(doc.swagger, "2.0");

        // Every definition decodes back to its JSON source.
        let src_defs = src["definitions"].as_object().unwrap();
        let defs = &doc.definitions.as_ref().unwrap().additional_properties;
        assert_eq!(defs.len(), src_defs.len());
        for d in defs {
            assert_eq!(
                &schema_json(d.value.as_ref().unwrap()),
                &src_defs[&d.name],
                "{}",
                d.name
            );
        }
        let find = |name: &str| {
            defs.iter()
                .find(|d| d.name == name)
                .and_then(|d| d.value.as_ref())
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(
            extension(
                &find("io.k8s.api.apps.v1.Deployment").vendor_extension,
                "x-kubernetes-group-version-kind"
            ),
            Some(json!([{ "group": "apps", "kind": "Deployment", "version": "v1" }]))
        );
        let containers = prop(find("io.k8s.api.core.v1.PodSpec"), "containers");
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-merge-key"),
            Some(json!("name"))
        );

        // Every path and operation is there, and every write carries its GVK
        // and the fieldValidation query parameter.
        let src_paths = src["paths"].as_object().unwrap();
        let paths = &doc.paths.as_ref().unwrap().path;
        assert_eq!(paths.len(), src_paths.len());
        let mut patches = 0;
        for p in paths {
            let item = p.value.as_ref().unwrap();
            let ops = [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ];
            for (method, op) in ops {
                let source = &src_paths[&p.name][method];
                let Some(op) = op else {
                    assert!(source.is_null(), "{} {method}", p.name);
                    continue;
                };
                assert_eq!(op.operation_id, source["operationId"]);
                assert_eq!(
                    extension(&op.vendor_extension, "x-kubernetes-group-version-kind").as_ref(),
                    Some(&source["x-kubernetes-group-version-kind"])
                );
                assert_eq!(
                    op.parameters.len(),
                    source["parameters"].as_array().map_or(0, Vec::len)
                );
                if method == "patch" {
                    patches += 1;
                    assert!(
                        op.parameters.iter().any(|p| {
                            p.parameter
                                .as_ref()
                                .and_then(|p| p.non_body_parameter.as_ref())
                                .and_then(|p| p.query_parameter_sub_schema.as_ref())
                                .is_some_and(|q| q.name == "fieldValidation")
                        }),
                        "{}",
                        p.name
                    );
                }
            }
        }
        assert!(patches > 0);
        let deploy = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.as_ref())
            .unwrap();
        assert_eq!(
            extension(
                &deploy.patch.as_ref().unwrap().vendor_extension,
                "x-kubernetes-group-version-kind"
            ),
            Some(json!({ "group": "apps", "kind": "Deployment", "version": "v1" }))
        );
    }
}

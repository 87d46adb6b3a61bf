//! One protobuf message → its Kubernetes JSON form, walking the message table.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{message, Field, Label, Message, Ty, INLINE, JSON, LIST, OMIT_ZERO};
use super::wire::{Reader, Wire};
use super::{names, DecodeError};

/// Deeper nesting than any real object; stops hostile input from exhausting the stack.
const MAX_DEPTH: usize = 100;

/// Types whose JSON form is not their fields as an object.
#[derive(Clone, Copy)]
enum Special {
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    /// A `raw` bytes field (tag 1) holding JSON: RawExtension, FieldsV1, apiextensions JSON.
    RawJson,
    SchemaOrArray,
    SchemaOrBool,
    SchemaOrStringArray,
}

fn special(name: &str) -> Option<Special> {
    const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
    const APIEXT: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.";
    if let Some(short) = name.strip_prefix(META) {
        return match short {
            "Time" => Some(Special::Time),
            "MicroTime" => Some(Special::MicroTime),
            "Duration" => Some(Special::Duration),
            "FieldsV1" => Some(Special::RawJson),
            _ => None,
        };
    }
    if let Some(rest) = name.strip_prefix(APIEXT) {
        // v1 and v1beta1 share the shapes.
        let short = rest.split_once('.').map_or(rest, |(_, s)| s);
        return match short {
            "JSON" => Some(Special::RawJson),
            "JSONSchemaPropsOrArray" => Some(Special::SchemaOrArray),
            "JSONSchemaPropsOrBool" => Some(Special::SchemaOrBool),
            "JSONSchemaPropsOrStringArray" => Some(Special::SchemaOrStringArray),
            _ => None,
        };
    }
    match name {
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => Some(Special::Quantity),
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => Some(Special::IntOrString),
        "io.k8s.apimachinery.pkg.runtime.RawExtension" => Some(Special::RawJson),
        _ => None,
    }
}

/// Decodes the message at `index` from `bytes`.
pub(super) fn message_json(index: u16, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let m = message(index);
    let slots = read_fields(m, bytes, depth)?;
    if let Some(kind) = special(m.name) {
        return special_json(kind, m, bytes, slots, depth);
    }
    if m.flags & LIST != 0 {
        return Ok(slots
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_else(|| Value::Array(Vec::new())));
    }
    let mut out = Map::new();
    for (i, (f, slot)) in m.fields.iter().zip(slots).enumerate() {
        let Some(value) = slot else { continue };
        if f.label == Label::One && f.flags & OMIT_ZERO != 0 && is_zero(&value) {
            continue;
        }
        if f.flags & INLINE != 0 {
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
            continue;
        }
        let name = if f.flags & JSON != 0 {
            f.name
        } else {
            names::json_name(index, i)
        };
        out.insert(name.to_string(), value);
    }
    Ok(Value::Object(out))
}

/// Each field's value, by position in `m.fields`: repeated fields as arrays,
/// maps as objects; `None` when absent. Unknown tags are skipped.
fn read_fields(
    m: &'static Message,
    bytes: &[u8],
    depth: usize,
) -> Result<Vec<Option<Value>>, DecodeError> {
    let mut slots: Vec<Option<Value>> = vec![None; m.fields.len()];
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.field().map_err(|e| DecodeError::malformed(m.name, e))? {
        let Some((i, f)) = m.field(tag) else { continue };
        match f.label {
            Label::One => slots[i] = Some(value(m, f, f.ty, wire, depth)?),
            Label::Rep => {
                let items = slots[i].get_or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = items {
                    push_repeated(m, f, wire, items, depth)?;
                }
            }
            Label::Map => {
                let Wire::Bytes(entry) = wire else {
                    return Err(DecodeError::wire_type(m, f, wire));
                };
                let (k, v) = map_entry(m, f, entry, depth)?;
                let map = slots[i].get_or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(slots)
}

/// One repeated element, or several when scalars come packed.
fn push_repeated(
    m: &Message,
    f: &Field,
    wire: Wire<'_>,
    items: &mut Vec<Value>,
    depth: usize,
) -> Result<(), DecodeError> {
    let packable = matches!(f.ty, Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64);
    match wire {
        Wire::Bytes(packed) if packable => {
            let mut r = Reader::new(packed);
            while !r.is_empty() {
                let w = if f.ty == Ty::F64 {
                    Wire::Fixed64(r.fixed64().map_err(|e| DecodeError::malformed(m.name, e))?)
                } else {
                    Wire::Varint(r.varint().map_err(|e| DecodeError::malformed(m.name, e))?)
                };
                items.push(value(m, f, f.ty, w, depth)?);
            }
        }
        w => items.push(value(m, f, f.ty, w, depth)?),
    }
    Ok(())
}

fn map_entry(
    m: &Message,
    f: &Field,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut val = None;
    let mut r = Reader::new(entry);
    while let Some((tag, wire)) = r.field().map_err(|e| DecodeError::malformed(m.name, e))? {
        match tag {
            1 => {
                if let Value::String(s) = value(m, f, Ty::Str, wire, depth)? {
                    key = s;
                }
            }
            2 => val = Some(value(m, f, f.ty, wire, depth)?),
            _ => {}
        }
    }
    let val = match val {
        Some(v) => v,
        None => zero(f.ty, depth)?,
    };
    Ok((key, val))
}

/// The value of a map entry whose value is absent.
fn zero(ty: Ty, depth: usize) -> Result<Value, DecodeError> {
    Ok(match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 | Ty::F64 => Value::from(0),
        Ty::Msg(i) => message_json(i, &[], depth + 1)?,
    })
}

fn value(
    m: &Message,
    f: &Field,
    ty: Ty,
    wire: Wire<'_>,
    depth: usize,
) -> Result<Value, DecodeError> {
    Ok(match (ty, wire) {
        (Ty::Str, Wire::Bytes(b)) => Value::String(
            std::str::from_utf8(b)
                .map_err(|_| DecodeError::Utf8 {
                    field: field_path(m, f),
                })?
                .to_string(),
        ),
        (Ty::Bytes, Wire::Bytes(b)) => Value::String(BASE64.encode(b)),
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // int32 is sign-extended to 64 bits on the wire; truncating is the decoding rule.
        (Ty::I32, Wire::Varint(v)) => Value::from(v as i32),
        (Ty::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::F64, Wire::Fixed64(v)) => float(f64::from_bits(v)),
        (Ty::Msg(i), Wire::Bytes(b)) => message_json(i, b, depth + 1)?,
        (_, w) => return Err(DecodeError::wire_type(m, f, w)),
    })
}

/// Go writes whole floats without a fraction (`1`, not `1.0`).
fn float(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        // Exact: the value is whole and within i64's exactly representable range.
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A zero value as Go's `omitempty`/`omitzero` sees it.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
    }
}

fn field_path(m: &Message, f: &Field) -> String {
    format!("{}.{}", m.name, f.name)
}

fn special_json(
    kind: Special,
    m: &Message,
    bytes: &[u8],
    slots: Vec<Option<Value>>,
    depth: usize,
) -> Result<Value, DecodeError> {
    let by_tag = |tag: u32| m.field(tag).and_then(|(i, _)| slots[i].clone());
    let int = |tag: u32| by_tag(tag).and_then(|v| v.as_i64()).unwrap_or(0);
    Ok(match kind {
        // Go encodes the zero time as an empty message; its JSON is null.
        Special::Time | Special::MicroTime if bytes.is_empty() => Value::Null,
        Special::Time => Value::String(rfc3339(m, int(1), None)?),
        Special::MicroTime => Value::String(rfc3339(m, int(1), Some(int(2)))?),
        Special::Duration => Value::String(go_duration(int(1))),
        Special::Quantity => by_tag(1).unwrap_or_else(|| Value::String("0".into())),
        Special::IntOrString => {
            if int(1) == 1 {
                by_tag(3).unwrap_or_else(|| Value::String(String::new()))
            } else {
                Value::from(int(2))
            }
        }
        Special::RawJson => {
            let mut r = Reader::new(bytes);
            let mut raw: &[u8] = &[];
            while let Some((tag, wire)) =
                r.field().map_err(|e| DecodeError::malformed(m.name, e))?
            {
                if let (1, Wire::Bytes(b)) = (tag, wire) {
                    raw = b;
                }
            }
            embedded_json(m, raw, depth)?
        }
        Special::SchemaOrArray => match by_tag(2) {
            Some(Value::Array(a)) if !a.is_empty() => Value::Array(a),
            _ => by_tag(1).unwrap_or(Value::Null),
        },
        Special::SchemaOrBool => match by_tag(2) {
            Some(schema) => schema,
            None => by_tag(1).unwrap_or(Value::Bool(false)),
        },
        Special::SchemaOrStringArray => match by_tag(2) {
            Some(Value::Array(a)) if !a.is_empty() => Value::Array(a),
            _ => by_tag(1).unwrap_or(Value::Null),
        },
    })
}

/// JSON carried as bytes; an object nested as `k8s\0` protobuf is decoded too.
fn embedded_json(m: &Message, raw: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(&super::MAGIC) {
        return super::decode_at(raw, depth + 1);
    }
    serde_json::from_slice(raw).map_err(|source| DecodeError::EmbeddedJson {
        message: m.name,
        source,
    })
}

/// RFC 3339 in UTC; with `micros` (nanoseconds given), six fractional digits
/// (`metav1.MicroTime`), otherwise whole seconds (`metav1.Time`).
fn rfc3339(m: &Message, seconds: i64, nanos: Option<i64>) -> Result<String, DecodeError> {
    let bad = || DecodeError::Time { message: m.name };
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| bad())?;
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    if !(0..=9999).contains(&dt.year()) {
        return Err(bad());
    }
    let base = dt.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(match nanos {
        Some(n) if (0..1_000_000_000).contains(&n) => format!("{base}.{:06}Z", n / 1000),
        Some(_) => return Err(bad()),
        None => format!("{base}Z"),
    })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn go_duration(ns: i64) -> String {
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    if u == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (whole, frac) = split_frac(u, prec);
        out.push_str(&whole.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = split_frac(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        let mut tail = format!("{s}{frac}s");
        if u > 0 {
            tail = format!("{}m{tail}", u % 60);
            u /= 60;
            if u > 0 {
                tail = format!("{u}h{tail}");
            }
        }
        out.push_str(&tail);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` and the fraction as `.ddd` with trailing zeros dropped
/// (empty when the fraction is zero).
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn zero_values() {
        assert!(is_zero(&Value::from(0)));
        assert!(is_zero(&Value::from("")));
        assert!(is_zero(&Value::Bool(false)));
        assert!(is_zero(&Value::Null));
        assert!(!is_zero(&Value::from(1)));
        assert_eq!(float(2.0), Value::from(2));
        assert_eq!(float(0.5), serde_json::json!(0.5));
    }
}

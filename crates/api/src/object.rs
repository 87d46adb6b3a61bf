//! Small helpers over objects in their JSON wire form.

use serde_json::{Map, Value};

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

/// The `metadata` object, created if missing (a non-object body is rejected before this).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// RFC 3339 with seconds, as `metav1.Time` marshals.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 with microseconds, as `metav1.MicroTime` marshals.
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// A random suffix from the alphabet Kubernetes uses for generateName
/// (no vowels, no confusable digits).
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The object without the fields the server owns, for "did the user change
/// anything" comparisons.
pub fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// Finds where the top-level `"metadata":{` object starts in a serialized
/// object, so a resourceVersion can be spliced in without a full parse.
/// Returns the index just after the opening brace.
pub fn top_level_metadata_start(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    let mut expect_key = false;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'[' => depth += 1,
            b',' if depth == 1 => expect_key = true,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 && expect_key {
                    expect_key = false;
                    if &bytes[start..i] == b"metadata" {
                        let mut j = i + 1;
                        while j < bytes.len()
                            && (bytes[j] == b':' || bytes[j].is_ascii_whitespace())
                        {
                            j += 1;
                        }
                        if bytes.get(j) == Some(&b'{') {
                            return Some(j + 1);
                        }
                        return None;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_metadata_only() {
        let b = br#"{"aaa":{"metadata":{"x":1}},"data":{"k":"\"metadata\":{"},"metadata":{"name":"a"}}"#;
        let i = top_level_metadata_start(b).unwrap();
        assert_eq!(&b[i..i + 6], br#""name""#);
        assert_eq!(top_level_metadata_start(br#"{"a":1}"#), None);
        let i = top_level_metadata_start(br#"{"metadata":{}}"#).unwrap();
        assert_eq!(i, 13);
    }

    #[test]
    fn suffixes() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}

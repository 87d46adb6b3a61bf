//! The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]`,
//! `..` is not supported, and filters `[?(@.type=="Ready")]` (also `!=`, and
//! `[?(@.x)]` for presence). `{...}` around the path is accepted.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        op: Option<(bool, Value)>,
    },
}

/// Parse failure: the path is not in the supported subset.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

fn parse(path: &str) -> Result<Vec<Step>, ParseError> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let bad = || ParseError(format!("unsupported JSONPath {path:?}"));
    let chars: Vec<char> = p.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'.') {
                    return Err(bad());
                }
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name.is_empty() {
                    if i >= chars.len() {
                        break;
                    }
                    return Err(bad());
                }
                if name == "*" {
                    steps.push(Step::All);
                } else {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = find_close(&chars, i).ok_or_else(bad)?;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                i = end + 1;
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                    steps.push(parse_filter(f).ok_or_else(bad)?);
                } else if let Some(q) = unquote(inner) {
                    steps.push(Step::Field(q));
                } else {
                    steps.push(Step::Index(inner.parse().map_err(|_| bad())?));
                }
            }
            _ if steps.is_empty() => {
                // A path without the leading dot (`spec.replicas`).
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                steps.push(Step::Field(chars[start..i].iter().collect()));
            }
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if *c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(*c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(s[1..s.len() - 1].to_string());
        }
    }
    None
}

fn parse_filter(f: &str) -> Option<Step> {
    let (lhs, op) = if let Some((l, r)) = f.split_once("==") {
        (l, Some((true, r)))
    } else if let Some((l, r)) = f.split_once("!=") {
        (l, Some((false, r)))
    } else {
        (f, None)
    };
    let lhs = lhs.trim().strip_prefix('@')?;
    let path: Vec<String> = lhs
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let op = match op {
        None => None,
        Some((eq, r)) => {
            let r = r.trim();
            let v = match unquote(r) {
                Some(s) => Value::String(s),
                None => serde_json::from_str(r).ok()?,
            };
            Some((eq, v))
        }
    };
    Some(Step::Filter { path, op })
}

/// Checks that `path` is in the supported subset.
pub fn check(path: &str) -> Result<(), ParseError> {
    parse(path).map(|_| ())
}

/// Every value `path` selects in `obj`, in order.
pub fn find<'a>(path: &str, obj: &'a Value) -> Result<Vec<&'a Value>, ParseError> {
    let steps = parse(path)?;
    let mut cur = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        if idx >= 0 {
                            next.extend(a.get(idx as usize));
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, op } => {
                    if let Some(a) = v.as_array() {
                        for item in a {
                            let mut at = Some(item);
                            for p in path {
                                at = at.and_then(|x| x.get(p.as_str()));
                            }
                            let keep = match (at, op) {
                                (None, _) => false,
                                (Some(_), None) => true,
                                (Some(x), Some((eq, want))) => (x == want) == *eq,
                            };
                            if keep {
                                next.push(item);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let obj = json!({
            "spec": {"replicas": 3, "a.b": "dotted", "list": [1, 2, 3]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Synced", "status": "False"},
            ]},
        });
        let one = |p: &str| find(p, &obj).unwrap().first().cloned().cloned();
        assert_eq!(one(".spec.replicas"), Some(json!(3)));
        assert_eq!(one("{.spec.replicas}"), Some(json!(3)));
        assert_eq!(one(".spec['a.b']"), Some(json!("dotted")));
        assert_eq!(one(".spec.list[1]"), Some(json!(2)));
        assert_eq!(one(".spec.list[-1]"), Some(json!(3)));
        assert_eq!(
            one(".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            one(".status.conditions[?(@.type=='Synced')].status"),
            Some(json!("False"))
        );
        assert_eq!(find(".spec.list[*]", &obj).unwrap().len(), 3);
        assert_eq!(one(".spec.missing"), None);
        assert!(check(".spec..x").is_err());
        assert!(check(".spec[").is_err());
    }
}

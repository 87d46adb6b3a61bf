//! Label and field selectors, parsed and matched as Kubernetes does
//! (`k8s.io/apimachinery/pkg/labels` and `.../fields`).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        let mut reqs = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(LabelSelector(reqs));
        }
        loop {
            reqs.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ','",
                    p.rest()
                ));
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Matches a `metadata.labels` object (absent labels = no labels).
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    /// From a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                reqs.push(match op {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"))
                    }
                });
            }
        }
        Ok(LabelSelector(reqs))
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
    fn rest(&self) -> String {
        self.chars[self.pos..].iter().collect()
    }
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.chars.get(self.pos) {
            if c.is_whitespace() || matches!(c, ',' | '=' | '!' | '(' | ')' | '<' | '>') {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
    fn key(&mut self) -> Result<String, String> {
        self.skip_ws();
        let k = self.word();
        if k.is_empty() {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: identifier",
                self.rest()
            ));
        }
        let errs = resources::validation::is_qualified_name(&k);
        if !errs.is_empty() {
            return Err(format!(
                "unable to parse requirement: <nil>: Invalid value: {k:?}: {}",
                errs.join("; ")
            ));
        }
        Ok(k)
    }
    fn value(&mut self) -> Result<String, String> {
        self.skip_ws();
        let v = self.word();
        if !v.is_empty() {
            let errs = resources::validation::is_valid_label_value(&v);
            if !errs.is_empty() {
                return Err(format!(
                    "unable to parse requirement: <nil>: Invalid value: {v:?}: {}",
                    errs.join("; ")
                ));
            }
        }
        Ok(v)
    }
    fn set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat('(') {
            return Err(format!("found '{}', expected: '('", self.rest()));
        }
        let mut vals = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            let v = self.value()?;
            vals.push(v);
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            if self.eat(')') {
                break;
            }
            return Err(format!("found '{}', expected: ',' or ')'", self.rest()));
        }
        Ok(vals)
    }
    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.eat('!') {
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        if self.at_end() || self.chars[self.pos] == ',' {
            return Ok(Requirement::Exists(key));
        }
        if self.eat_str("==") || self.eat('=') {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        if self.eat_str("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        if self.eat('>') || self.eat('<') {
            let gt = self.chars[self.pos - 1] == '>';
            self.skip_ws();
            let v = self.word();
            let n: i64 = v.parse().map_err(|_| {
                format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}")
            })?;
            return Ok(if gt {
                Requirement::Gt(key, n)
            } else {
                Requirement::Lt(key, n)
            });
        }
        let op = self.word();
        match op.as_str() {
            "in" => Ok(Requirement::In(key, self.set()?)),
            "notin" => Ok(Requirement::NotIn(key, self.set()?)),
            _ => Err(format!(
                "unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt"
            )),
        }
    }
}

/// A parsed field selector: `a=b,c!=d`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for term in split_unescaped(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            out.push((field.trim().to_string(), eq, unescape(value.trim())));
        }
        Ok(FieldSelector(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `metadata.name` if the selector pins it (lets a get replace a list).
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// Checks every field is one the kind supports; Kubernetes answers 400 otherwise.
    pub fn check_supported(&self, group: &str, kind: &str) -> Result<(), String> {
        for (f, _, _) in &self.0 {
            if !field_supported(group, kind, f) {
                return Err(format!(r#"field label not supported: {f}"#));
            }
        }
        Ok(())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(f, eq, want)| {
            let have = field_value(obj, f);
            (have == *want) == *eq
        })
    }
}

fn split_unescaped(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// The field labels each kind supports beyond `metadata.name`/`metadata.namespace`
/// (from each kind's `GetAttrs`/`AddFieldLabelConversionFunc` upstream).
fn field_supported(group: &str, kind: &str, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    let extra: &[&str] = match (group, kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "Secret") => &["type"],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Namespace") => &["status.phase"],
        ("", "ReplicationController") => &["status.replicas"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        ("", "PersistentVolume") => &["name"],
        ("", "PersistentVolumeClaim") => &["name"],
        ("certificates.k8s.io", "CertificateSigningRequest") => &["spec.signerName"],
        _ => &[],
    };
    extra.contains(&field)
}

/// The string form of a field as field selectors compare it.
fn field_value(obj: &Value, field: &str) -> String {
    let path = match field {
        "source" => "source.component",
        "name" => "metadata.name",
        f => f,
    };
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                return match field {
                    "spec.unschedulable" | "spec.hostNetwork" => "false".into(),
                    "status.replicas" | "status.successful" => "0".into(),
                    _ => String::new(),
                }
            }
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if field == "status.podIPs" => a
            .first()
            .and_then(|x| x.get("ip"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn label_selectors() {
        let l = json!({"app": "web", "tier": "fe", "n": "5"});
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("app,tier", true),
            ("!missing", true),
            ("!app", false),
            ("missing", false),
            ("missing!=x", true),
            ("app=web,tier=be", false),
            ("n>4", true),
            ("n<4", false),
            ("app in ()", false),
        ];
        for (s, want) in cases {
            assert_eq!(sel(s).matches(Some(&l)), want, "{s}");
        }
        assert!(LabelSelector::parse("app=")
            .unwrap()
            .matches(Some(&json!({"app": ""}))));
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("bad key=x").is_err());
    }

    #[test]
    fn selector_from_object() {
        let s = LabelSelector::from_object(&json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]})).unwrap();
        assert!(s.matches(Some(&json!({"a": "1", "b": "3"}))));
        assert!(!s.matches(Some(&json!({"a": "1"}))));
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let f = FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending").unwrap();
        assert!(f.matches(&pod));
        assert!(f.check_supported("", "Pod").is_ok());
        assert!(FieldSelector::parse("spec.foo=x")
            .unwrap()
            .check_supported("", "Pod")
            .is_err());
        assert!(!FieldSelector::parse("metadata.name=q")
            .unwrap()
            .matches(&pod));
        assert_eq!(
            FieldSelector::parse("metadata.name=p")
                .unwrap()
                .pinned_name(),
            Some("p")
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(FieldSelector::parse("spec.unschedulable=false")
            .unwrap()
            .matches(&node));
    }
}

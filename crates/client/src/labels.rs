//! Label selectors on typed objects (`metav1.LabelSelector`), as the
//! scheduler and the controllers evaluate them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` hold every key and value of `set`: the equality-based
/// selector of a Service, an RC or a nodeSelector
/// (`labels.SelectorFromSet(set).Matches(labels)`).
pub fn matches_set(set: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    set.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether `labels` satisfy `selector`. An empty selector matches
/// everything; an unknown operator matches nothing (upstream refuses such
/// selectors at validation, so they never get here).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(m) = &selector.match_labels {
        if !matches_set(m, labels) {
            return false;
        }
    }
    selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

/// Whether the selector is `{}`, which matches every object.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let sel = |e: Vec<LabelSelectorRequirement>| LabelSelector {
            match_expressions: Some(e),
            match_labels: None,
        };
        assert!(matches(&sel(vec![req("app", "In", &["web", "db"])]), &l));
        assert!(!matches(&sel(vec![req("app", "NotIn", &["web"])]), &l));
        assert!(matches(&sel(vec![req("zone", "NotIn", &["a"])]), &l));
        assert!(matches(&sel(vec![req("tier", "Exists", &[])]), &l));
        assert!(!matches(&sel(vec![req("tier", "DoesNotExist", &[])]), &l));
        assert!(matches(&LabelSelector::default(), &l));
        let ml = LabelSelector {
            match_labels: Some(labels(&[("app", "db")])),
            match_expressions: None,
        };
        assert!(!matches(&ml, &l));
    }
}

//! The textual forms users give for node labels (`key=value`), taints
//! (`key[=value]:Effect`, as `kubectl taint` and the kubelet's
//! `--register-with-taints` take them) and resource quantities.

use k8s_openapi::api::core::v1::Taint;

/// `key=value` (the value may be empty). The key may carry a DNS prefix
/// (`example.com/role`).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid label {s:?}: expected key=value"))?;
    check_qualified_name(key).map_err(|e| format!("invalid label key {key:?}: {e}"))?;
    check_label_value(value).map_err(|e| format!("invalid label value {value:?}: {e}"))?;
    Ok((key.to_string(), value.to_string()))
}

/// `key=value:Effect` or `key:Effect`, Effect one of NoSchedule,
/// PreferNoSchedule, NoExecute.
pub fn parse_taint(s: &str) -> Result<Taint, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid taint {s:?}: expected key[=value]:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!(
            "invalid taint effect {effect:?} in {s:?}: must be NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    check_qualified_name(key).map_err(|e| format!("invalid taint key {key:?}: {e}"))?;
    if let Some(v) = value {
        check_label_value(v).map_err(|e| format!("invalid taint value {v:?}: {e}"))?;
    }
    Ok(Taint {
        key: key.to_string(),
        value: value.filter(|v| !v.is_empty()).map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    })
}

/// A resource quantity as Kubernetes writes them: `4`, `500m`, `16Gi`,
/// `1.5`, `1e3`.
pub fn parse_quantity(s: &str) -> Result<String, String> {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit())
    });
    if number_ok && suffix_ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid quantity {s:?}: expected a number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ...)"
        ))
    }
}

/// `[prefix/]name`: a DNS subdomain prefix and a name of up to 63
/// alphanumerics, '-', '_' or '.', starting and ending alphanumeric.
fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err("the prefix must be a DNS subdomain".into());
        }
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    check_label_value(name)
}

fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if v.len() > 63
        || !v.starts_with(alnum)
        || !v.ends_with(alnum)
        || !v.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "must be at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let ok = [
            ("role=worker", ("role", "worker")),
            ("example.com/tier=a.b_c-d", ("example.com/tier", "a.b_c-d")),
            ("empty=", ("empty", "")),
        ];
        for (input, (k, v)) in ok {
            assert_eq!(parse_label(input), Ok((k.into(), v.into())), "{input}");
        }
        for bad in [
            "novalue",
            "=v",
            "-bad=v",
            "k=-bad",
            "Upper.Case/x=v",
            "/x=v",
            "k=has space",
        ] {
            assert!(parse_label(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn taints() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        let t = parse_taint("example.com/spot:PreferNoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("example.com/spot", None, "PreferNoSchedule")
        );
        let t = parse_taint("k=:NoExecute").unwrap();
        assert_eq!(t.value, None);
        for bad in [
            "k=v",
            "k=v:Sometimes",
            ":NoSchedule",
            "k=v:",
            "bad key=v:NoSchedule",
        ] {
            assert!(parse_taint(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn quantities() {
        for ok in [
            "4", "500m", "16Gi", "1.5", "100Gi", "1e3", "2E-2", "110", "1k",
        ] {
            assert_eq!(parse_quantity(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "Gi", "16GB", "1.2.3", "four", "1e", "-1", ".", "1 Gi"] {
            assert!(parse_quantity(bad).is_err(), "{bad} should be rejected");
        }
    }
}

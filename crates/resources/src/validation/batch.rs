//! Job and CronJob (`pkg/apis/batch/validation`).

use super::meta::{selector_matches, validate_label_selector};
use super::pod::{require_template_restart_policy, template_labels, validate_pod_template_spec};
use super::util::{ch, flag, get, immutable, int, nonneg, opt_s, s, semantic_eq, sub};
use super::{Errs, FieldError};
use serde_json::Value;

pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = sub(obj, "spec");
    match kind {
        "Job" => {
            validate_job_spec(spec, "spec", false, errs);
            if let Some(old) = old {
                validate_job_spec_update(spec, sub(old, "spec"), errs);
            }
        }
        "CronJob" => {
            let name = s(sub(obj, "metadata"), "name");
            if name.len() > 52 {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    name,
                    "must be no more than 52 characters",
                ));
            }
            validate_cron_job_spec(spec, errs);
        }
        _ => {}
    }
}

fn validate_job_spec(spec: &Value, path: &str, in_cron_job: bool, errs: &mut Errs) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        nonneg(spec, key, path, errs);
    }
    let manual = flag(spec, "manualSelector");
    let sel = get(spec, "selector");
    if in_cron_job {
        if let Some(sel) = sel {
            errs.push(FieldError::invalid(
                ch(path, "selector"),
                sel.clone(),
                "`selector` will be auto-generated",
            ));
        }
        if manual {
            errs.push(FieldError::not_supported(
                ch(path, "manualSelector"),
                true,
                &["nil", "false"],
            ));
        }
    } else {
        match sel {
            // Without manualSelector the server generates the selector from
            // the uid (see defaults); nothing to check until it exists.
            None if manual => errs.push(FieldError::required(ch(path, "selector"), "")),
            None => {}
            Some(sel) => {
                validate_label_selector(Some(sel), &ch(path, "selector"), errs);
                if let Some(t) = get(spec, "template") {
                    if !selector_matches(Some(sel), template_labels(t)) {
                        errs.push(FieldError::invalid(
                            ch(path, "template.metadata.labels"),
                            template_labels(t).clone(),
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
            }
        }
    }
    match opt_s(spec, "completionMode") {
        None | Some("NonIndexed") => {
            if get(spec, "backoffLimitPerIndex").is_some() {
                errs.push(FieldError::forbidden(
                    ch(path, "backoffLimitPerIndex"),
                    "requires indexed completion mode",
                ));
            }
        }
        Some("Indexed") => {
            if get(spec, "completions").is_none() {
                errs.push(FieldError::required(
                    ch(path, "completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            ch(path, "completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(p) = opt_s(spec, "podReplacementPolicy") {
        if !matches!(p, "TerminatingOrFailed" | "Failed") {
            errs.push(FieldError::not_supported(
                ch(path, "podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tmpl = get(spec, "template");
    validate_pod_template_spec(tmpl, &ch(path, "template"), errs);
    if let Some(t) = tmpl {
        let rp = s(sub(t, "spec"), "restartPolicy");
        if rp != "OnFailure" && rp != "Never" {
            require_template_restart_policy(
                t,
                &ch(path, "template"),
                &["OnFailure", "Never"],
                errs,
            );
        } else if rp != "Never" && get(spec, "podFailurePolicy").is_some() {
            errs.push(FieldError::invalid(
                ch(path, "template.spec.restartPolicy"),
                rp,
                "only \"Never\" is supported when podFailurePolicy is specified",
            ));
        }
    }
}

fn validate_job_spec_update(spec: &Value, old: &Value, errs: &mut Errs) {
    let path = "spec";
    let indexed = opt_s(spec, "completionMode") == Some("Indexed");
    let completions_changed = !semantic_eq(sub(spec, "completions"), sub(old, "completions"));
    if completions_changed && !(indexed && int(spec, "completions") == int(spec, "parallelism")) {
        immutable(spec, old, "completions", path, errs);
    }
    for key in [
        "selector",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(spec, old, key, path, errs);
    }
    // The pod template may only change while a never-started Job is
    // suspended, and then only its scheduling directives and metadata.
    let tmpl = sub(spec, "template");
    let old_tmpl = sub(old, "template");
    if semantic_eq(tmpl, old_tmpl) {
        return;
    }
    let suspended = flag(spec, "suspend") && flag(old, "suspend");
    if suspended {
        let strip = |t: &Value| {
            let mut t = t.clone();
            if let Some(m) = t.as_object_mut() {
                m.remove("metadata");
                if let Some(sm) = m.get_mut("spec").and_then(Value::as_object_mut) {
                    for k in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                        sm.remove(k);
                    }
                }
            }
            t
        };
        if semantic_eq(&strip(tmpl), &strip(old_tmpl)) {
            return;
        }
    }
    errs.push(FieldError::invalid(
        "spec.template",
        tmpl.clone(),
        super::util::IMMUTABLE_MSG,
    ));
}

fn validate_cron_job_spec(spec: &Value, errs: &mut Errs) {
    let schedule = s(spec, "schedule");
    let tz = opt_s(spec, "timeZone");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = parse_cron_schedule(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        if schedule.contains("TZ") {
            let msg = if tz.is_some() {
                "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            } else {
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            };
            errs.push(FieldError::invalid("spec.schedule", schedule, msg));
        }
    }
    nonneg(spec, "startingDeadlineSeconds", "spec", errs);
    match s(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = sub(spec, "jobTemplate");
    super::meta::validate_labels(
        sub(jt, "metadata"),
        "labels",
        "spec.jobTemplate.metadata.labels",
        errs,
    );
    super::meta::validate_annotations(
        sub(jt, "metadata"),
        "annotations",
        "spec.jobTemplate.metadata.annotations",
        errs,
    );
    validate_job_spec(sub(jt, "spec"), "spec.jobTemplate.spec", true, errs);
    nonneg(spec, "successfulJobsHistoryLimit", "spec", errs);
    nonneg(spec, "failedJobsHistoryLimit", "spec", errs);
    if let Some(tz) = tz {
        validate_time_zone(tz, errs);
    }
}

fn validate_time_zone(tz: &str, errs: &mut Errs) {
    let path = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    for part in tz.split('/') {
        let chars_ok = (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c));
        if part == "." || part == ".." || part.starts_with('-') || !chars_ok {
            errs.push(FieldError::invalid(
                path,
                tz,
                format!("unknown time zone {tz}"),
            ));
            return;
        }
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
}

/// Job status counters must be non-negative.
pub(crate) fn validate_job_status(obj: &Value, errs: &mut Errs) {
    let status = sub(obj, "status");
    for key in ["active", "succeeded", "failed", "ready", "terminating"] {
        nonneg(status, key, "status", errs);
    }
}

/// Parse a standard cron schedule (5 fields or an `@` descriptor) as
/// `robfig/cron.ParseStandard`, returning its error text.
pub(crate) fn parse_cron_schedule(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    // A leading TZ=/CRON_TZ= is accepted by the parser (and rejected above).
    let spec = if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        match spec.split_once(' ') {
            Some((_, rest)) => rest.trim(),
            None => return Err(format!("provided bad location {spec}")),
        }
    } else {
        spec
    };
    if let Some(desc) = spec.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = d["every ".len()..].trim();
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration \"{dur}\""
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (i, (field, (min, max, names, name_base))) in fields.iter().zip(bounds).enumerate() {
        for expr in field.split(',') {
            parse_cron_range(expr, min, max, names, name_base, i == 2 || i == 4)?;
        }
    }
    Ok(())
}

fn parse_cron_range(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
    question_ok: bool,
) -> Result<(), String> {
    let mut step_split = expr.split('/');
    let range = step_split.next().unwrap_or("");
    let step = step_split.next();
    if step_split.next().is_some() {
        return Err(format!("too many slashes: {expr}"));
    }
    let mut parts = range.split('-');
    let low_s = parts.next().unwrap_or("");
    let high_s = parts.next();
    if parts.next().is_some() {
        return Err(format!("too many hyphens: {expr}"));
    }
    let value = |t: &str| -> Result<u32, String> {
        let lower = t.to_ascii_lowercase();
        if let Some(pos) = names.iter().position(|n| *n == lower) {
            return Ok(pos as u32 + name_base);
        }
        t.parse::<u32>().map_err(|_| {
            format!("failed to parse int from {t}: strconv.Atoi: parsing \"{t}\": invalid syntax")
        })
    };
    let (start, end, star) = if low_s == "*" || (question_ok && low_s == "?") {
        (min, max, true)
    } else {
        let start = value(low_s)?;
        let end = match high_s {
            Some(h) => value(h)?,
            None => start,
        };
        (start, end, false)
    };
    if star && high_s.is_some() {
        return Err(format!("too many hyphens: {expr}"));
    }
    if let Some(step) = step {
        let n = value(step)?;
        if n == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

/// Accepts Go duration strings such as `1h30m`, `90s`, `1.5h`.
fn parse_go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    if rest == "0" {
        return true;
    }
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if num_len == 0 {
            return false;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphabetic() || *c == 0xc2 || *c == 0xb5)
            .count();
        let unit = &rest[..unit_len];
        if !matches!(unit, "ns" | "us" | "µs" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

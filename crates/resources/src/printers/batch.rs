//! batch/v1: Job and CronJob.

use super::*;

pub(super) const JOB: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "Succeeded pods out of the completions wanted.",
    ),
    col(
        "Duration",
        "string",
        "Time the job took, or has been running.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, "/status/succeeded");
    let completions = match get(obj, "/spec/completions") {
        Some(c) => format!("{succeeded}/{}", c.as_i64().unwrap_or(0)),
        None => match int_at(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        timestamp(obj, "/status/startTime"),
        timestamp(obj, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_signed(now.duration_since(start)),
        (Some(start), Some(end)) => human_signed(end.duration_since(start)),
    };
    let has = |t: &str| condition_true(obj, "/status/conditions", t);
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if get(obj, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [names, images] = container_cells(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        names,
        images,
        format_label_selector(get(obj, "/spec/selector")).into(),
    ]
}

pub(super) const CRON_JOB: &[ColumnDefinition] = &[
    NAME,
    col("Schedule", "string", "Cron schedule."),
    col("Timezone", "string", "Time zone the schedule is read in."),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Number of running jobs."),
    col(
        "Last Schedule",
        "string",
        "Time since a job was last scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match get(obj, "/status/lastScheduleTime") {
        Some(_) => since(obj, "/status/lastScheduleTime", now),
        None => "<none>".into(),
    };
    let time_zone = get(obj, "/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    // printBoolPtr: a string, even though the column says boolean.
    let suspend = match get(obj, "/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let [names, images] = container_cells(obj, "/spec/jobTemplate/spec/template/spec/containers");
    vec![
        name(obj).into(),
        str_at(obj, "/spec/schedule").into(),
        time_zone.into(),
        suspend.into(),
        len_at(obj, "/status/active").into(),
        last_schedule.into(),
        age(obj, now),
        names,
        images,
        format_label_selector(get(obj, "/spec/jobTemplate/spec/selector")).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::{json, Value};

    fn job(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"containers": [{"name": "pi", "image": "perl"}]}});
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}});
        json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)}, "spec": spec, "status": status})
    }

    fn check_job(spec: Value, status: Value, want_status: &str, completions: &str, duration: &str) {
        check(
            "batch",
            "Job",
            job(spec, status),
            json!([
                "pi",
                want_status,
                completions,
                duration,
                "10m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u1"
            ]),
        );
    }

    #[test]
    fn jobs() {
        check_job(
            json!({"completions": 1, "parallelism": 1}),
            json!({"succeeded": 1, "startTime": ago(600), "completionTime": ago(560),
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
            "Complete",
            "1/1",
            "40s",
        );
        check_job(
            json!({"completions": 5}),
            json!({"succeeded": 2, "startTime": ago(200)}),
            "Running",
            "2/5",
            "3m20s",
        );
        check_job(
            json!({"parallelism": 3}),
            json!({"succeeded": 0, "startTime": ago(30)}),
            "Running",
            "0/1 of 3",
            "30s",
        );
        check_job(json!({}), json!({}), "Running", "0/1", "");
        check_job(
            json!({"completions": 1}),
            json!({"startTime": ago(300), "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
            "Failed",
            "0/1",
            "5m",
        );
        check_job(
            json!({"completions": 1, "suspend": true}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
            "Suspended",
            "0/1",
            "",
        );
        check_job(
            json!({"completions": 1}),
            json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
            "FailureTarget",
            "0/1",
            "",
        );
        check_job(
            json!({"completions": 3}),
            // SuccessCriteriaMet alone is not a printed status: the job still runs.
            json!({"succeeded": 2, "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}),
            "Running",
            "2/3",
            "",
        );
        check_job(
            json!({"completions": 1}),
            json!({"conditions": [{"type": "Complete", "status": "False"}]}),
            "Running",
            "0/1",
            "",
        );
        let mut deleting = job(json!({"completions": 1}), json!({}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        check(
            "batch",
            "Job",
            deleting,
            json!([
                "pi",
                "Terminating",
                "0/1",
                "",
                "10m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u1"
            ]),
        );
    }

    #[test]
    fn cron_jobs() {
        let cj = |extra_spec: Value, status: Value| {
            let mut spec = json!({"schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}});
            for (k, v) in extra_spec.as_object().unwrap() {
                spec[k] = v.clone();
            }
            json!({"metadata": {"name": "tick", "creationTimestamp": ago(3 * 86400)}, "spec": spec, "status": status})
        };
        check(
            "batch",
            "CronJob",
            cj(
                json!({"suspend": false, "timeZone": "Etc/UTC"}),
                json!({"active": [{"name": "tick-1"}], "lastScheduleTime": ago(65)}),
            ),
            json!([
                "tick",
                "*/5 * * * *",
                "Etc/UTC",
                "False",
                1,
                "65s",
                "3d",
                "c",
                "busybox",
                "<none>"
            ]),
        );
        check(
            "batch",
            "CronJob",
            cj(json!({}), json!({})),
            json!([
                "tick",
                "*/5 * * * *",
                "<none>",
                "<unset>",
                0,
                "<none>",
                "3d",
                "c",
                "busybox",
                "<none>"
            ]),
        );
    }
}

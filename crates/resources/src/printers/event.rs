//! Events: core/v1 Event and events.k8s.io/v1 Event print the same table
//! (both are one internal type upstream); only the JSON field names differ.
//!
//! Unlike every other kind, Name is not the first column: it is the last, wide one.

use super::*;

pub(super) const COLUMNS: &[ColumnDefinition] = &[
    col(
        "Last Seen",
        "string",
        "Time since the event was last observed.",
    ),
    col("Type", "string", "Normal or Warning."),
    col(
        "Reason",
        "string",
        "Short, machine-readable reason for the event.",
    ),
    col(
        "Object",
        "string",
        "kind/name of the object the event is about.",
    ),
    wide(
        "Subobject",
        "string",
        "Field path within the object, e.g. a container.",
    ),
    wide(
        "Source",
        "string",
        "Component (and host) that reported the event.",
    ),
    col(
        "Message",
        "string",
        "Human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "Time since the event was first observed.",
    ),
    wide("Count", "string", "Number of times the event occurred."),
    ColumnDefinition {
        priority: 1,
        ..NAME
    },
];

/// JSON pointers of the fields the table reads, per API version.
struct Fields {
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
    object: &'static str,
    message: &'static str,
    source: &'static str,
    reporting_controller: &'static str,
}

const CORE: Fields = Fields {
    first_timestamp: "/firstTimestamp",
    last_timestamp: "/lastTimestamp",
    count: "/count",
    object: "/involvedObject",
    message: "/message",
    source: "/source",
    reporting_controller: "/reportingComponent",
};

const EVENTS: Fields = Fields {
    first_timestamp: "/deprecatedFirstTimestamp",
    last_timestamp: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    object: "/regarding",
    message: "/note",
    source: "/deprecatedSource",
    reporting_controller: "/reportingController",
};

pub(super) fn core_event(obj: &Value, now: Timestamp) -> Vec<Value> {
    cells(obj, now, &CORE)
}

pub(super) fn events_event(obj: &Value, now: Timestamp) -> Vec<Value> {
    cells(obj, now, &EVENTS)
}

fn cells(ev: &Value, now: Timestamp, f: &Fields) -> Vec<Value> {
    let first = match get(ev, f.first_timestamp) {
        Some(_) => since(ev, f.first_timestamp, now),
        None => since(ev, "/eventTime", now),
    };
    let mut last = match get(ev, f.last_timestamp) {
        Some(_) => since(ev, f.last_timestamp, now),
        None => first.clone(),
    };
    let mut count = int_at(ev, f.count);
    if let Some(series) = get(ev, "/series") {
        last = since(series, "/lastObservedTime", now);
        count = int_at(series, "/count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let object = get(ev, f.object).unwrap_or(&Value::Null);
    let kind = str_at(object, "/kind").to_lowercase();
    let target = match str_at(object, "/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };

    let component = match str_at(ev, &format!("{}/component", f.source)) {
        "" => str_at(ev, f.reporting_controller),
        c => c,
    };
    let instance = match str_at(ev, &format!("{}/host", f.source)) {
        "" => str_at(ev, "/reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        last.into(),
        str_at(ev, "/type").into(),
        str_at(ev, "/reason").into(),
        target.into(),
        str_at(object, "/fieldPath").into(),
        source.into(),
        str_at(ev, f.message).trim().into(),
        first.into(),
        count.into(),
        name(ev).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn core_events() {
        check(
            "",
            "Event",
            json!({
                "metadata": {"name": "web.17a", "creationTimestamp": ago(600)},
                "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
                "reason": "Pulled", "type": "Normal", "message": "Container image pulled\n",
                "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": ago(600), "lastTimestamp": ago(90), "count": 4,
            }),
            json!([
                "90s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{app}",
                "kubelet, n1",
                "Container image pulled",
                "10m",
                4,
                "web.17a"
            ]),
        );
        // New-style event seen through core/v1: eventTime, no count, reporting fields.
        check(
            "",
            "Event",
            json!({
                "metadata": {"name": "x"},
                "involvedObject": {"kind": "Node"},
                "reason": "Starting", "type": "Normal", "message": "",
                "eventTime": "2025-01-10T11:57:00.000000Z",
                "reportingComponent": "skiff-proxy", "reportingInstance": "",
            }),
            json!([
                "3m",
                "Normal",
                "Starting",
                "node",
                "",
                "skiff-proxy",
                "",
                "3m",
                1,
                "x"
            ]),
        );
        check(
            "",
            "Event",
            json!({"metadata": {"name": "y"}}),
            json!(["<unknown>", "", "", "", "", "", "", "<unknown>", 1, "y"]),
        );
    }

    #[test]
    fn events_k8s_io() {
        check(
            "events.k8s.io",
            "Event",
            json!({
                "metadata": {"name": "e"},
                "regarding": {"kind": "Deployment", "name": "web"},
                "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up",
                "eventTime": ago(7200),
                "series": {"count": 7, "lastObservedTime": ago(30)},
                "reportingController": "deployment-controller", "reportingInstance": "cp-1",
            }),
            json!([
                "30s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller, cp-1",
                "Scaled up",
                "120m",
                7,
                "e"
            ]),
        );
    }
}

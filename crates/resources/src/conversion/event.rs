//! `Event`: core `v1` (storage) ↔ `events.k8s.io/v1`, after
//! `pkg/apis/events/v1/conversion.go` and its generated half.
//!
//! Upstream conversion is a plain field mapping: `reportingController` is
//! `reportingComponent` and nothing else, and `reportingInstance` is
//! `reportingInstance`; `source.component`/`source.host` travel only inside
//! `deprecatedSource`. The "source.component, else reportingController"
//! fallback upstream has lives in the `source` field selector
//! (`EventToSelectableFields`) and in printers, not here.
use super::{copy, copy_same, new_object, Object, CORE_V1, EVENTS_V1};

const KIND: &str = "Event";

/// Fields with the same name in both versions.
const SHARED: [&str; 7] = [
    "eventTime",
    "series",
    "action",
    "reason",
    "type",
    "related",
    "reportingInstance",
];

/// (core v1 name, events.k8s.io/v1 name) of the fields that are renamed.
const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

pub(super) fn core_to_events(obj: &Object) -> Object {
    let mut out = new_object(EVENTS_V1, KIND, obj.get("metadata").cloned());
    copy_same(obj, &mut out, &SHARED);
    for (core, events) in RENAMED {
        copy(obj, core, &mut out, events);
    }
    out
}

pub(super) fn events_to_core(obj: &Object) -> Object {
    let mut out = new_object(CORE_V1, KIND, obj.get("metadata").cloned());
    copy_same(obj, &mut out, &SHARED);
    for (core, events) in RENAMED {
        copy(obj, events, &mut out, core);
    }
    out
}

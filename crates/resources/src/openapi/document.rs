//! OpenAPI documents over a [`Registry`]: the `/openapi/v3` index, one OpenAPI
//! 3.0 document per group-version, and one Swagger 2.0 document for all.
//!
//! Every function here is pure and deterministic: the same registry gives the
//! same bytes, so the hashes in the v3 index only change when a document does.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::schemas::{
    self, Gvk, DELETE_OPTIONS, GVK_EXTENSION, LIST_META, OBJECT_META, PATCH, REF_PREFIX, STATUS,
    WATCH_EVENT,
};
use crate::registry::{Registry, ResourceType, Subresource};

/// The Kubernetes version the documents describe.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

const V3_REF_PREFIX: &str = "#/components/schemas/";

/// The index served at `/openapi/v3`: one `serverRelativeURL` per served
/// group-version, each carrying a hash of that document's bytes.
pub fn v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for version in versions {
            let Some(doc) = v3_group_version(reg, &group, &version) else {
                continue;
            };
            let key = group_version_path(&group, &version);
            let url = format!("/openapi/v3/{key}?hash={}", document_hash(&doc));
            paths.insert(key, json!({ "serverRelativeURL": url }));
        }
    }
    json!({ "paths": paths })
}

/// `api/v1` for the core group, `apis/<group>/<version>` otherwise: the key in
/// the v3 index and the path under `/openapi/v3/`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Upper-case hex FNV-1a (64 bit) of the document's compact JSON bytes.
pub fn document_hash(doc: &Value) -> String {
    format!("{:016X}", fnv1a64(doc.to_string().as_bytes()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// The OpenAPI 3.0 document of one group-version, or `None` if it serves nothing.
/// `components.schemas` holds only what its paths reach, plus the meta types.
pub fn v3_group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.resources_of(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut used = BTreeSet::new();
    for rt in resources {
        for item in path_items(rt) {
            item.collect_definitions(&mut used);
            paths.insert(item.path.clone(), item.render(Flavor::V3));
        }
    }
    let mut schemas: Map<String, Value> = reachable(used)
        .into_iter()
        .filter_map(|name| {
            let def = schemas::definition(&name)?;
            Some((name, to_v3_schema(def)))
        })
        .collect();
    for rt in reg.resources_of(group, version) {
        for (name, def) in super::custom::definitions(rt) {
            schemas.insert(name, to_v3_schema(&def));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                    "description": "Bearer token authentication",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    }))
}

/// One Swagger 2.0 document for every served group-version.
pub fn v2(reg: &Registry) -> Value {
    let mut paths = Map::new();
    let mut used = BTreeSet::new();
    for rt in reg.all() {
        for item in path_items(rt) {
            item.collect_definitions(&mut used);
            paths.insert(item.path.clone(), item.render(Flavor::V2));
        }
    }
    let mut definitions: Map<String, Value> = reachable(used)
        .into_iter()
        .filter_map(|name| {
            let def = schemas::definition(&name)?.clone();
            Some((name, def))
        })
        .collect();
    for rt in reg.all() {
        definitions.extend(super::custom::definitions(rt));
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                "description": "Bearer token authentication",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// The named definitions plus the meta types, closed over `$ref`.
fn reachable(mut names: BTreeSet<String>) -> BTreeSet<String> {
    for meta in [
        STATUS,
        DELETE_OPTIONS,
        WATCH_EVENT,
        PATCH,
        OBJECT_META,
        LIST_META,
    ] {
        names.insert(meta.to_string());
    }
    let mut todo: Vec<String> = names.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        let Some(def) = schemas::definition(&name) else {
            continue;
        };
        schemas::for_each_ref(def, &mut |r| {
            if let Some(target) = schemas::ref_target(r) {
                if names.insert(target.to_string()) {
                    todo.push(target.to_string());
                }
            }
        });
    }
    names
}

/// A catalog definition in OpenAPI 3 form: references point into
/// `components.schemas`, and a `$ref` with siblings (a description) becomes
/// `allOf: [{$ref}]` beside them, since 3.0 ignores a `$ref`'s siblings.
fn to_v3_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, v) in map {
                if k == "$ref" {
                    if let Value::String(r) = v {
                        let name = schemas::ref_target(r).unwrap_or(r);
                        reference = Some(format!("{V3_REF_PREFIX}{name}"));
                        continue;
                    }
                }
                out.insert(k.clone(), to_v3_schema(v));
            }
            match reference {
                Some(r) if out.is_empty() => json!({ "$ref": r }),
                Some(r) => {
                    out.insert("allOf".into(), json!([{ "$ref": r }]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3_schema).collect()),
        other => other.clone(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn schema_ref(self, name: &str) -> Value {
        match self {
            Flavor::V2 => json!({ "$ref": format!("{REF_PREFIX}{name}") }),
            Flavor::V3 => json!({ "$ref": format!("{V3_REF_PREFIX}{name}") }),
        }
    }
}

/// One parameter of an operation or a path.
#[derive(Clone, Copy, Debug)]
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: &'static str,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
    }
}

impl Param {
    fn render(&self, flavor: Flavor) -> Value {
        let mut p = Map::new();
        p.insert("name".into(), self.name.into());
        p.insert("in".into(), self.location.into());
        p.insert("description".into(), self.description.into());
        if self.location == "path" {
            p.insert("required".into(), true.into());
        }
        match flavor {
            Flavor::V2 => {
                p.insert("type".into(), self.ty.into());
                p.insert("uniqueItems".into(), true.into());
            }
            Flavor::V3 => {
                p.insert(
                    "schema".into(),
                    json!({ "type": self.ty, "uniqueItems": true }),
                );
            }
        }
        Value::Object(p)
    }
}

const NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: "The namespace the object lives in.",
};
const NAME: Param = Param {
    name: "name",
    location: "path",
    ty: "string",
    description: "The name of the object.",
};
const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', the output is indented for people to read.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "If present (the only valid value is 'All'), the request is checked and answered but nothing is stored.",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "Name of the actor making the change, recorded in managedFields.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "What to do with unknown or duplicated fields in the body: 'Ignore' drops them, 'Warn' drops them and answers with a warning for each, 'Strict' (the default) fails the request with BadRequest.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Apply only: take over fields owned by other managers instead of failing with a conflict.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "Only objects whose labels match this selector.",
);
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "Only objects whose fields match this selector.",
);
const LIMIT: Param = query(
    "limit",
    "integer",
    "Most objects to return in one answer; the rest is fetched with `continue`.",
);
const CONTINUE: Param = query(
    "continue",
    "string",
    "Token from a previous answer's metadata.continue, to fetch the next chunk.",
);
const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    "string",
    "Which version of the data may be served; see resourceVersionMatch.",
);
const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    "string",
    "How resourceVersion is applied to a list: 'Exact' or 'NotOlderThan'.",
);
const WATCH: Param = query(
    "watch",
    "boolean",
    "Stream added, modified and deleted events instead of a list.",
);
const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    "boolean",
    "Let a watch send BOOKMARK events carrying only a resourceVersion.",
);
const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    "integer",
    "End a list or watch after this many seconds.",
);
const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    "boolean",
    "Start a watch with synthetic ADDED events for the current state, ended by a bookmark.",
);
const GRACE_PERIOD_SECONDS: Param = query(
    "gracePeriodSeconds",
    "integer",
    "Seconds the object is given to terminate before it is removed; 0 removes it at once.",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "How dependents are collected: 'Orphan', 'Background' or 'Foreground'.",
);
const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    "boolean",
    "Deprecated: use propagationPolicy. If true, dependents are orphaned.",
);
const IGNORE_STORE_READ_ERROR: Param = query(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "Delete an object that cannot be read from storage. May break the cluster.",
);

const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];
const LOG_PARAMS: &[Param] = &[
    query("container", "string", "The container whose log to read."),
    query("follow", "boolean", "Keep streaming the log."),
    query(
        "insecureSkipTLSVerifyBackend",
        "boolean",
        "Do not verify the kubelet's serving certificate.",
    ),
    query("limitBytes", "integer", "Stop after this many bytes."),
    query(
        "previous",
        "boolean",
        "The log of the previous, terminated container.",
    ),
    query(
        "sinceSeconds",
        "integer",
        "Only lines newer than this many seconds.",
    ),
    query(
        "stream",
        "string",
        "Which stream: 'All', 'Stdout' or 'Stderr'.",
    ),
    query("tailLines", "integer", "Only this many lines from the end."),
    query(
        "timestamps",
        "boolean",
        "Prefix each line with its RFC3339 timestamp.",
    ),
];
const STREAM_PARAMS: &[Param] = &[
    query("container", "string", "The container to connect to."),
    query(
        "stderr",
        "boolean",
        "Redirect the container's standard error.",
    ),
    query(
        "stdin",
        "boolean",
        "Redirect the container's standard input.",
    ),
    query(
        "stdout",
        "boolean",
        "Redirect the container's standard output.",
    ),
    query("tty", "boolean", "Allocate a terminal."),
];
const EXEC_PARAMS: &[Param] = &[
    query(
        "command",
        "string",
        "The command to run, one argument per parameter.",
    ),
    query("container", "string", "The container to run it in."),
    query(
        "stderr",
        "boolean",
        "Redirect the command's standard error.",
    ),
    query("stdin", "boolean", "Redirect the command's standard input."),
    query(
        "stdout",
        "boolean",
        "Redirect the command's standard output.",
    ),
    query("tty", "boolean", "Allocate a terminal."),
];
const PORT_FORWARD_PARAMS: &[Param] = &[query("ports", "integer", "Pod ports to forward.")];

const JSON_YAML: &[&str] = &["application/json", "application/yaml"];
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const ANY: &[&str] = &["*/*"];
const TEXT: &[&str] = &["text/plain", "application/json", "application/yaml"];
/// Custom resources take no strategic merge patch (kubectl reads this and
/// sends a JSON merge patch instead).
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const CREATED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created"), ("202", "Accepted")];
const REPLACED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created")];
const DELETED: &[(&str, &str)] = &[("200", "OK"), ("202", "Accepted")];
const OK: &[(&str, &str)] = &[("200", "OK")];

/// What a body or an answer holds.
#[derive(Clone, Debug)]
enum Payload {
    /// A catalog definition.
    Def(String),
    /// A kind without a schema (yet): any object.
    Object,
    Text,
}

impl Payload {
    fn of(group: &str, version: &str, kind: &str) -> Self {
        match schemas::catalog().name_for(group, version, kind) {
            Some(name) => Payload::Def(name.to_string()),
            None => Payload::Object,
        }
    }

    fn schema(&self, flavor: Flavor) -> Value {
        match self {
            Payload::Def(name) => flavor.schema_ref(name),
            Payload::Object => {
                json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
            }
            Payload::Text => json!({ "type": "string" }),
        }
    }
}

struct Body {
    payload: Payload,
    required: bool,
    types: &'static [&'static str],
}

struct Op {
    method: &'static str,
    id: String,
    action: &'static str,
    description: String,
    tag: String,
    gvk: Gvk,
    params: &'static [Param],
    body: Option<Body>,
    codes: &'static [(&'static str, &'static str)],
    response: Payload,
    response_types: &'static [&'static str],
}

impl Op {
    fn render(&self, flavor: Flavor) -> Value {
        let mut o = Map::new();
        o.insert("description".into(), self.description.clone().into());
        o.insert("operationId".into(), self.id.clone().into());
        o.insert("tags".into(), json!([self.tag]));
        let mut params: Vec<Value> = self.params.iter().map(|p| p.render(flavor)).collect();
        if let Some(body) = &self.body {
            match flavor {
                Flavor::V2 => {
                    params.insert(
                        0,
                        json!({
                            "name": "body",
                            "in": "body",
                            "required": body.required,
                            "schema": body.payload.schema(flavor),
                        }),
                    );
                    o.insert("consumes".into(), json!(body.types));
                }
                Flavor::V3 => {
                    let content: Map<String, Value> = body
                        .types
                        .iter()
                        .map(|t| {
                            (
                                t.to_string(),
                                json!({ "schema": body.payload.schema(flavor) }),
                            )
                        })
                        .collect();
                    o.insert(
                        "requestBody".into(),
                        json!({ "content": content, "required": body.required }),
                    );
                }
            }
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        let mut responses = Map::new();
        for (code, description) in self.codes {
            let schema = self.response.schema(flavor);
            let answer = match flavor {
                Flavor::V2 => json!({ "description": description, "schema": schema }),
                Flavor::V3 => {
                    let content: Map<String, Value> = self
                        .response_types
                        .iter()
                        .map(|t| (t.to_string(), json!({ "schema": schema })))
                        .collect();
                    json!({ "description": description, "content": content })
                }
            };
            responses.insert(code.to_string(), answer);
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        o.insert("responses".into(), Value::Object(responses));
        if flavor == Flavor::V2 {
            o.insert("produces".into(), json!(self.response_types));
            o.insert("schemes".into(), json!(["https"]));
        }
        o.insert("x-kubernetes-action".into(), self.action.into());
        o.insert(GVK_EXTENSION.into(), self.gvk.to_json());
        Value::Object(o)
    }
}

struct PathItem {
    path: String,
    params: Vec<Param>,
    ops: Vec<Op>,
}

impl PathItem {
    fn render(&self, flavor: Flavor) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.render(flavor));
        }
        let params: Vec<Value> = self.params.iter().map(|p| p.render(flavor)).collect();
        item.insert("parameters".into(), Value::Array(params));
        Value::Object(item)
    }

    fn collect_definitions(&self, used: &mut BTreeSet<String>) {
        for op in &self.ops {
            let body = op.body.as_ref().map(|b| &b.payload);
            for payload in body.into_iter().chain([&op.response]) {
                if let Payload::Def(name) = payload {
                    used.insert(name.clone());
                }
            }
        }
    }
}

/// `Core`, `Apps`, `RbacAuthorization`, `Networking`: the group as operation
/// ids spell it.
fn group_ident(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Every path kube-apiserver serves for one resource, with its operations.
fn path_items(rt: &ResourceType) -> Vec<PathItem> {
    let g = &rt.group;
    let v = &rt.version;
    let group_id = group_ident(g);
    let gv = format!("{group_id}{}", capitalize(v));
    let tag = format!("{}_{v}", lower_first(&group_id));
    let prefix = if g.is_empty() {
        format!("/api/{v}")
    } else {
        format!("/apis/{g}/{v}")
    };
    let scope = if rt.namespaced { "Namespaced" } else { "" };
    let kind = &rt.kind;
    let gvk = Gvk::new(g, v, kind);
    let patch_types = if rt.custom.is_some() {
        CUSTOM_PATCH_TYPES
    } else {
        PATCH_TYPES
    };
    let (object, list) = match super::custom::names(rt) {
        Some((object, list)) => (Payload::Def(object), Payload::Def(list)),
        None => (Payload::of(g, v, kind), Payload::of(g, v, &rt.list_kind)),
    };
    let status = Payload::Def(STATUS.to_string());
    let can = |verb: &str| rt.verbs.iter().any(|x| x == verb);
    let op = |method, id: String, action, description: String, params| Op {
        method,
        id,
        action,
        description,
        tag: tag.clone(),
        gvk: gvk.clone(),
        params,
        body: None,
        codes: OK,
        response: object.clone(),
        response_types: JSON_YAML,
    };
    let delete_body = || Body {
        payload: Payload::Def(DELETE_OPTIONS.to_string()),
        required: false,
        types: ANY,
    };

    let (collection, mut collection_params) = if rt.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", rt.resource),
            vec![NAMESPACE],
        )
    } else {
        (format!("{prefix}/{}", rt.resource), vec![])
    };
    let mut item_params = collection_params.clone();
    item_params.insert(0, NAME);
    collection_params.push(PRETTY);
    item_params.push(PRETTY);

    let mut out = Vec::new();
    let mut ops = Vec::new();
    if can("list") {
        ops.push(Op {
            response: list.clone(),
            response_types: LIST_TYPES,
            ..op(
                "get",
                format!("list{gv}{scope}{kind}"),
                "list",
                format!("list or watch objects of kind {kind}"),
                LIST_PARAMS,
            )
        });
    }
    if can("create") {
        ops.push(Op {
            body: Some(Body {
                payload: object.clone(),
                required: true,
                types: ANY,
            }),
            codes: CREATED,
            ..op(
                "post",
                format!("create{gv}{scope}{kind}"),
                "post",
                format!("create a {kind}"),
                WRITE_PARAMS,
            )
        });
    }
    if can("deletecollection") {
        ops.push(Op {
            body: Some(delete_body()),
            response: status.clone(),
            ..op(
                "delete",
                format!("delete{gv}Collection{scope}{kind}"),
                "deletecollection",
                format!("delete collection of {kind}"),
                DELETE_COLLECTION_PARAMS,
            )
        });
    }
    if !ops.is_empty() {
        out.push(PathItem {
            path: collection.clone(),
            params: collection_params,
            ops,
        });
    }

    let item = format!("{collection}/{{name}}");
    let mut ops = Vec::new();
    if can("get") {
        ops.push(op(
            "get",
            format!("read{gv}{scope}{kind}"),
            "get",
            format!("read the specified {kind}"),
            &[],
        ));
    }
    if can("update") {
        ops.push(Op {
            body: Some(Body {
                payload: object.clone(),
                required: true,
                types: ANY,
            }),
            codes: REPLACED,
            ..op(
                "put",
                format!("replace{gv}{scope}{kind}"),
                "put",
                format!("replace the specified {kind}"),
                WRITE_PARAMS,
            )
        });
    }
    if can("patch") {
        ops.push(Op {
            body: Some(Body {
                payload: Payload::Def(PATCH.to_string()),
                required: true,
                types: patch_types,
            }),
            codes: REPLACED,
            ..op(
                "patch",
                format!("patch{gv}{scope}{kind}"),
                "patch",
                format!("partially update the specified {kind}"),
                PATCH_PARAMS,
            )
        });
    }
    if can("delete") {
        ops.push(Op {
            body: Some(delete_body()),
            codes: DELETED,
            response: status.clone(),
            ..op(
                "delete",
                format!("delete{gv}{scope}{kind}"),
                "delete",
                format!("delete a {kind}"),
                DELETE_PARAMS,
            )
        });
    }
    if !ops.is_empty() {
        out.push(PathItem {
            path: item.clone(),
            params: item_params.clone(),
            ops,
        });
    }

    if rt.namespaced && can("list") {
        out.push(PathItem {
            path: format!("{prefix}/{}", rt.resource),
            params: vec![PRETTY],
            ops: vec![Op {
                response: list,
                response_types: LIST_TYPES,
                ..op(
                    "get",
                    format!("list{gv}{kind}ForAllNamespaces"),
                    "list",
                    format!("list or watch objects of kind {kind}"),
                    LIST_PARAMS,
                )
            }],
        });
    }

    for sub in &rt.subresources {
        let ops = subresource_ops(sub, &gv, scope, kind, &tag, patch_types);
        if !ops.is_empty() {
            out.push(PathItem {
                path: format!("{item}/{}", sub.name),
                params: item_params.clone(),
                ops,
            });
        }
    }
    out
}

fn subresource_ops(
    sub: &Subresource,
    gv: &str,
    scope: &str,
    kind: &str,
    tag: &str,
    patch_types: &'static [&'static str],
) -> Vec<Op> {
    let sub_id = capitalize(sub.name);
    let gvk = Gvk::new(sub.group, sub.version, sub.kind);
    let payload = Payload::of(sub.group, sub.version, sub.kind);
    let op = |method, id: String, action, description: String, params| Op {
        method,
        id,
        action,
        description,
        tag: tag.to_string(),
        gvk: gvk.clone(),
        params,
        body: None,
        codes: OK,
        response: payload.clone(),
        response_types: JSON_YAML,
    };
    let connect_params = match sub.name {
        "exec" => Some(EXEC_PARAMS),
        "attach" => Some(STREAM_PARAMS),
        "portforward" => Some(PORT_FORWARD_PARAMS),
        "proxy" => Some(&[] as &[Param]),
        _ => None,
    };
    let mut ops = Vec::new();
    for verb in sub.verbs {
        let next = match (*verb, connect_params) {
            (verb, Some(params)) => {
                let method = if verb == "create" { "post" } else { "get" };
                Op {
                    response: Payload::Text,
                    response_types: &["*/*"],
                    ..op(
                        method,
                        format!("connect{gv}{}{scope}{kind}{sub_id}", capitalize(method)),
                        "connect",
                        format!(
                            "connect {} requests to {} of {kind}",
                            method.to_uppercase(),
                            sub.name
                        ),
                        params,
                    )
                }
            }
            ("get", None) if sub.name == "log" => Op {
                response: Payload::Text,
                response_types: TEXT,
                ..op(
                    "get",
                    format!("read{gv}{scope}{kind}Log"),
                    "get",
                    format!("read log of the specified {kind}"),
                    LOG_PARAMS,
                )
            },
            ("get", None) => op(
                "get",
                format!("read{gv}{scope}{kind}{sub_id}"),
                "get",
                format!("read {} of the specified {kind}", sub.name),
                &[],
            ),
            ("update", None) => Op {
                body: Some(Body {
                    payload: payload.clone(),
                    required: true,
                    types: ANY,
                }),
                codes: REPLACED,
                ..op(
                    "put",
                    format!("replace{gv}{scope}{kind}{sub_id}"),
                    "put",
                    format!("replace {} of the specified {kind}", sub.name),
                    WRITE_PARAMS,
                )
            },
            ("patch", None) => Op {
                body: Some(Body {
                    payload: Payload::Def(PATCH.to_string()),
                    required: true,
                    types: patch_types,
                }),
                codes: REPLACED,
                ..op(
                    "patch",
                    format!("patch{gv}{scope}{kind}{sub_id}"),
                    "patch",
                    format!("partially update {} of the specified {kind}", sub.name),
                    PATCH_PARAMS,
                )
            },
            ("create", None) => Op {
                body: Some(Body {
                    payload: payload.clone(),
                    required: true,
                    types: ANY,
                }),
                codes: CREATED,
                ..op(
                    "post",
                    format!("create{gv}{scope}{kind}{sub_id}"),
                    "post",
                    format!("create {} of a {kind}", sub.name),
                    WRITE_PARAMS,
                )
            },
            _ => continue,
        };
        ops.push(next);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs_resolve(doc: &Value, prefix: &str, defs: &Map<String, Value>) {
        schemas::for_each_ref(doc, &mut |r| {
            let name = r
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("ref {r} outside {prefix}"));
            assert!(defs.contains_key(name), "dangling ref {r}");
        });
    }

    #[test]
    fn v3_root_lists_every_served_group_version() {
        let reg = Registry::builtin();
        let root = v3_root(&reg);
        let paths = root["paths"].as_object().unwrap();
        for (group, versions) in reg.groups() {
            for version in versions {
                let key = group_version_path(&group, &version);
                let url = paths[&key]["serverRelativeURL"].as_str().unwrap();
                let hash = url
                    .strip_prefix(&format!("/openapi/v3/{key}?hash="))
                    .unwrap_or_else(|| panic!("{url}"));
                assert_eq!(hash.len(), 16);
                assert!(hash
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            }
        }
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/apps/v1"));
        assert!(paths.contains_key("apis/autoscaling/v1"));
        assert!(paths.contains_key("apis/autoscaling/v2"));
        // Deterministic: the same registry gives the same index.
        assert_eq!(root, v3_root(&reg));
    }

    #[test]
    fn apps_v1_deployment_item_path_tells_kubectl_about_field_validation() {
        let reg = Registry::builtin();
        let doc = v3_group_version(&reg, "apps", "v1").unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let gvk = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        for method in ["patch", "put"] {
            let op = &item[method];
            assert_eq!(op[GVK_EXTENSION], gvk, "{method}");
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                "{method}"
            );
        }
        assert_eq!(
            item["patch"]["operationId"],
            "patchAppsV1NamespacedDeployment"
        );
        assert_eq!(item["get"]["operationId"], "readAppsV1NamespacedDeployment");
        assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
        let post = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        assert_eq!(post[GVK_EXTENSION], gvk);
        assert_eq!(
            post["requestBody"]["content"]["*/*"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        let all = &doc["paths"]["/apis/apps/v1/deployments"]["get"];
        assert_eq!(all["operationId"], "listAppsV1DeploymentForAllNamespaces");
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"][GVK_EXTENSION],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let deploy = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deploy[GVK_EXTENSION], json!([gvk]));
        assert_eq!(
            deploy["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
        assert!(schemas.contains_key(WATCH_EVENT));
        // Only what apps/v1 reaches: no Service, no Ingress.
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Service"));
        assert!(!schemas.contains_key("io.k8s.api.networking.v1.Ingress"));
    }

    #[test]
    fn core_v1_paths() {
        let reg = Registry::builtin();
        let doc = v3_group_version(&reg, "", "v1").unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let cm = &paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            cm[GVK_EXTENSION],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(
            paths["/api/v1/nodes/{name}"]["get"]["operationId"],
            "readCoreV1Node"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["operationId"],
            "deleteCoreV1CollectionNamespacedPod"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["operationId"],
            "readCoreV1NamespacedPodLog"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]["operationId"],
            "connectCoreV1PostNamespacedPodExec"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"][GVK_EXTENSION]
                ["group"],
            "policy"
        );
        // Namespaces cannot be deleted in bulk.
        assert!(paths["/api/v1/namespaces"].get("delete").is_none());
        assert!(v3_group_version(&reg, "nope", "v1").is_none());
    }

    #[test]
    fn refs_resolve_inside_every_document() {
        let reg = Registry::builtin();
        for (group, versions) in reg.groups() {
            for version in versions {
                let doc = v3_group_version(&reg, &group, &version).unwrap();
                let schemas = doc["components"]["schemas"].as_object().unwrap();
                refs_resolve(&doc, V3_REF_PREFIX, schemas);
            }
        }
        let doc = v2(&reg);
        assert_eq!(doc["swagger"], "2.0");
        let defs = doc["definitions"].as_object().unwrap();
        refs_resolve(&doc, REF_PREFIX, defs);
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch[GVK_EXTENSION]["kind"], "Deployment");
        assert!(defs.contains_key("io.k8s.api.core.v1.Pod"));
    }

    #[test]
    fn v3_schemas_wrap_described_refs_in_all_of() {
        let plain = json!({"$ref": "#/definitions/a.B"});
        assert_eq!(
            to_v3_schema(&plain),
            json!({"$ref": "#/components/schemas/a.B"})
        );
        let described = json!({"$ref": "#/definitions/a.B", "description": "d"});
        assert_eq!(
            to_v3_schema(&described),
            json!({"allOf": [{"$ref": "#/components/schemas/a.B"}], "description": "d"})
        );
    }

    #[test]
    fn operation_id_groups() {
        assert_eq!(group_ident(""), "Core");
        assert_eq!(
            group_ident("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_ident("networking.k8s.io"), "Networking");
        assert_eq!(group_ident("stable.example.com"), "StableExampleCom");
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    #[ignore = "prints sizes and build times; run with --ignored --nocapture"]
    fn sizes_and_timing() {
        let reg = Registry::builtin();
        let _ = schemas::catalog();
        let start = std::time::Instant::now();
        let core = v3_group_version(&reg, "", "v1").unwrap().to_string();
        let apps = v3_group_version(&reg, "apps", "v1").unwrap().to_string();
        let t_gv = start.elapsed();
        let start = std::time::Instant::now();
        let root = v3_root(&reg).to_string();
        let t_root = start.elapsed();
        let start = std::time::Instant::now();
        let whole = v2(&reg).to_string();
        let t_v2 = start.elapsed();
        eprintln!(
            "v3 api/v1 {} B, apps/v1 {} B ({t_gv:?} both); root {} B ({t_root:?}); v2 {} B ({t_v2:?})",
            core.len(),
            apps.len(),
            root.len(),
            whole.len()
        );
        assert!(!core.is_empty() && !apps.is_empty() && !whole.is_empty());
    }
}

//! CustomResourceDefinitions end to end: the real kubectl against the real
//! binary. A CRD is served within a second of its creation, its objects are
//! validated, defaulted and pruned by its schema, printed with its columns,
//! scaled, and deleted with it; CRDs survive a restart.

mod common;

use std::time::Duration;

use common::{eventually, Server};

const CRONTAB_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [cron]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Image
      type: string
      jsonPath: .spec.image
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: What the CronTab runs and when.
            required: [cronSpec]
            x-kubernetes-validations:
            - rule: "self.cronSpec != 'never'"
              message: cronSpec may not be never
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
              image:
                type: string
                description: The image to run.
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
                description: How many copies run at once.
              color:
                type: string
                enum: [red, blue]
                default: red
          status:
            type: object
            properties:
              replicas:
                type: integer
              selector:
                type: string
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const GOOD_CRONTAB: &str = r#"
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: "0 3 * * *"
  image: backup:1
  surprise: dropped
"#;

fn create_crontab_crd(s: &Server) {
    s.apply_stdin(&["apply"], CRONTAB_CRD);
    // Served within a second of its creation.
    eventually(Duration::from_secs(1), || {
        s.kubectl(&["get", "crontabs"])
            .status
            .success()
            .then_some(())
    });
}

fn json(s: &Server, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&a)).expect("kubectl -o json")
}

#[test]
fn a_crd_serves_its_kind_with_schema_columns_and_subresources() {
    let s = Server::start();
    create_crontab_crd(&s);

    // Every name kubectl knows the resource by.
    for name in [
        "crontabs",
        "crontab",
        "ct",
        "cron",
        "crontabs.stable.example.com",
    ] {
        s.ok(&["get", name]);
    }
    let resources = s.ok(&["api-resources"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("crontabs "))
        .unwrap_or_else(|| panic!("crontabs not listed:\n{resources}"));
    assert!(
        line.contains("ct") && line.contains("stable.example.com/v1") && line.contains("CronTab"),
        "{line}"
    );
    assert!(resources
        .lines()
        .any(|l| l.starts_with("customresourcedefinitions ") && l.contains("crd,crds")));

    // The CRD's status says it is served.
    let crd = json(&s, &["get", "crd", "crontabs.stable.example.com"]);
    let cond = |t: &str| {
        crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["status"].clone())
    };
    assert_eq!(cond("Established"), Some("True".into()));
    assert_eq!(cond("NamesAccepted"), Some("True".into()));
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "CronTab");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
    assert!(crd["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "customresourcecleanup.apiextensions.k8s.io"));

    // kubectl explain reads the schema through OpenAPI v3.
    let explain = s.ok(&["explain", "crontab.spec"]);
    assert!(
        explain.contains("What the CronTab runs and when."),
        "{explain}"
    );
    assert!(
        explain.contains("How many copies run at once."),
        "{explain}"
    );
    assert!(explain.contains("cronSpec"), "{explain}");

    // A bad object: 422 naming every path, nothing stored.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: bad\nspec:\n  replicas: 11\n  color: pink\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "spec.cronSpec: Required value",
        "spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: bad\nspec:\n  cronSpec: x\n  replicas: many\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
        "{err}"
    );
    // CEL rules (x-kubernetes-validations).
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: bad\nspec:\n  cronSpec: never\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec: Invalid value: \"object\": cronSpec may not be never"),
        "{err}"
    );
    assert!(s.fails(&["get", "ct", "bad"]).contains("NotFound"));

    // Strict (kubectl's default) refuses the unknown field; Warn drops it.
    let out = s.kubectl_stdin(&["apply", "-f", "-"], GOOD_CRONTAB);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.surprise\""));
    let out = s.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], GOOD_CRONTAB);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.surprise\""));
    let ct = json(&s, &["get", "ct", "nightly"]);
    assert_eq!(ct["spec"]["replicas"], 1, "defaulted");
    assert_eq!(ct["spec"]["color"], "red", "defaulted");
    assert!(ct["spec"].get("surprise").is_none(), "pruned");
    assert_eq!(ct["metadata"]["generation"], 1);

    // A second apply is a merge patch (no strategic merge for custom kinds).
    let changed = GOOD_CRONTAB
        .replace("backup:1", "backup:2")
        .replace("  surprise: dropped\n", "");
    s.apply_stdin(&["apply"], &changed);
    assert_eq!(
        json(&s, &["get", "ct", "nightly"])["spec"]["image"],
        "backup:2"
    );
    assert!(s
        .fails(&[
            "patch",
            "ct",
            "nightly",
            "--type=strategic",
            "-p",
            "{\"spec\":{\"replicas\":2}}"
        ])
        .contains("not supported"));

    // Printer columns; priority columns only with -o wide.
    let table = s.ok(&["get", "crontabs"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"]);
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("nightly") && row.contains("0 3 * * *"),
        "{row}"
    );
    let wide = s.ok(&["get", "crontabs", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("IMAGE"), "{wide}");
    assert!(wide.contains("backup:2"), "{wide}");

    // kubectl scale goes through the scale subresource.
    s.ok(&["scale", "ct", "nightly", "--replicas=3"]);
    let ct = json(&s, &["get", "ct", "nightly"]);
    assert_eq!(ct["spec"]["replicas"], 3);
    assert_eq!(ct["metadata"]["generation"], 3);
    let scale = s.raw_json("/apis/stable.example.com/v1/namespaces/default/crontabs/nightly/scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert!(s
        .fails(&["scale", "ct", "nightly", "--replicas=11"])
        .contains("should be less than or equal to 10"));

    // /status takes only status; the main endpoint ignores status.
    s.ok(&[
        "patch",
        "ct",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":2,"selector":"app=nightly"},"spec":{"replicas":9}}"#,
    ]);
    s.ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":7}}"#,
    ]);
    let ct = json(&s, &["get", "ct", "nightly"]);
    assert_eq!(ct["spec"]["replicas"], 3);
    assert_eq!(ct["status"]["replicas"], 2);
    assert_eq!(
        ct["metadata"]["generation"], 3,
        "status writes leave generation alone"
    );
    let scale = s.raw_json("/apis/stable.example.com/v1/namespaces/default/crontabs/nightly/scale");
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=nightly");

    // Every served version reads the same object; unserved ones are 404.
    let beta = s.raw_json("/apis/stable.example.com/v1beta1/namespaces/default/crontabs/nightly");
    assert_eq!(beta["apiVersion"], "stable.example.com/v1beta1");
    assert_eq!(beta["spec"]["image"], "backup:2");
    let beta_list = s.ok(&["get", "crontabs.v1beta1.stable.example.com", "-o", "name"]);
    assert_eq!(beta_list.trim(), "crontab.stable.example.com/nightly");
    let (code, _) = s.curl(
        "GET",
        "/apis/stable.example.com/v1alpha1/namespaces/default/crontabs/nightly",
        "application/json",
        b"",
    );
    assert_eq!(code, 404);

    // Deleting the CRD deletes its objects and its API.
    s.ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--timeout=20s",
    ]);
    let (code, _) = s.curl(
        "GET",
        "/apis/stable.example.com/v1",
        "application/json",
        b"",
    );
    assert_eq!(code, 404);
    assert!(!s.ok(&["api-resources"]).contains("crontabs"));
    create_crontab_crd(&s);
    let left = s.ok(&["get", "crontabs", "-A", "-o", "name"]);
    assert!(left.trim().is_empty(), "objects outlived their CRD: {left}");
}

#[test]
fn cluster_scoped_crds_and_bad_crds() {
    let s = Server::start();
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: regions.geo.example.com
spec:
  group: geo.example.com
  scope: Cluster
  names: {plural: regions, kind: Region}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              zone: {type: string}
"#;
    s.apply_stdin(&["apply"], crd);
    eventually(Duration::from_secs(1), || {
        s.kubectl(&["get", "regions"])
            .status
            .success()
            .then_some(())
    });
    s.apply_stdin(
        &["apply"],
        "apiVersion: geo.example.com/v1\nkind: Region\nmetadata:\n  name: north\nspec:\n  zone: a\n",
    );
    let r = json(&s, &["get", "region", "north"]);
    assert!(r["metadata"].get("namespace").is_none());
    // No printer columns: NAME and AGE.
    let header = s.ok(&["get", "regions"]);
    let header: Vec<&str> = header.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE"]);
    let doc = s.raw_json("/apis/geo.example.com/v1");
    assert_eq!(doc["resources"][0]["namespaced"], false);

    // A wrong name: 422, nothing stored.
    let bad_name = crd.replace(
        "name: regions.geo.example.com",
        "name: places.geo.example.com",
    );
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &bad_name);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"metadata.name: Invalid value: "places.geo.example.com": must be spec.names.plural+"."+spec.group"#),
        "{err}"
    );
    assert!(s
        .fails(&["get", "crd", "places.geo.example.com"])
        .contains("NotFound"));

    // A non-structural schema: 422 naming the node.
    let non_structural = crd
        .replace(
            "name: regions.geo.example.com",
            "name: maps.geo.example.com",
        )
        .replace(
            "{plural: regions, kind: Region}",
            "{plural: maps, kind: Map}",
        )
        .replace(
            "            type: object\n            properties:\n              zone",
            "            properties:\n              zone",
        );
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &non_structural);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{err}"
    );
    assert!(s
        .fails(&["get", "crd", "maps.geo.example.com"])
        .contains("NotFound"));

    // A group without a dot, two storage versions.
    let bad = crd
        .replace("geo.example.com", "geo")
        .replace("    storage: true\n", "    storage: true\n  - name: v2\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "spec.group: Invalid value: \"geo\": should be a domain with at least one dot"
        ),
        "{err}"
    );
    assert!(
        err.contains("must have exactly one version marked as storage version"),
        "{err}"
    );
}

#[test]
fn crds_and_their_objects_survive_a_restart() {
    let mut s = Server::start();
    create_crontab_crd(&s);
    s.apply_stdin(
        &["apply"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: kept\nspec:\n  cronSpec: '* * * * *'\n",
    );
    s.restart();
    // Served from the first request after the restart.
    let ct = json(&s, &["get", "ct", "kept"]);
    assert_eq!(ct["spec"]["replicas"], 1);
    assert!(s.ok(&["api-resources"]).contains("crontabs"));
}

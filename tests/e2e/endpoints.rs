//! End-to-end: service networking's control plane on hollow nodes, driven
//! by the real kubectl — Endpoints and EndpointSlices following pods,
//! readiness and named ports, mirroring of hand-written Endpoints, ServiceLB
//! ingress addresses, the built-in `kubernetes` and `kube-dns` Services, and
//! Services the API refuses.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

/// JSON of `kubectl get`, or None when it fails (not found yet).
fn try_json(s: &Server, args: &[&str]) -> Option<Value> {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    let out = s.kubectl(&args);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

/// (ready IPs, not-ready IPs, "name:port" ports) of each subset, sorted.
fn subsets(ep: &Value) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    let ips = |v: &Value| -> Vec<String> {
        let mut ips: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["ip"].as_str().unwrap_or_default().to_string())
            .collect();
        ips.sort();
        ips
    };
    let mut out: Vec<_> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut ports: Vec<String> = s["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}:{}", p["name"].as_str().unwrap_or(""), p["port"]))
                .collect();
            ports.sort();
            (ips(&s["addresses"]), ips(&s["notReadyAddresses"]), ports)
        })
        .collect();
    out.sort();
    out
}

fn pod_ip(s: &Server, name: &str) -> String {
    eventually(WAIT, || {
        let p = try_json(s, &["get", "pod", name])?;
        p["status"]["podIP"]
            .as_str()
            .filter(|ip| !ip.is_empty())
            .map(String::from)
    })
}

/// The IPs of the ReplicaSet's running pods, sorted.
fn pod_ips(s: &Server, selector: &str) -> Vec<String> {
    let pods = json(s, &["get", "pods", "-l", selector]);
    let mut ips: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
        .collect();
    ips.sort();
    ips
}

/// The slices of a Service: (managed-by, ports, [(ip, ready, serving, terminating)]).
fn slices(s: &Server, svc: &str) -> Vec<Value> {
    json(
        s,
        &[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={svc}"),
        ],
    )["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every (ip, ready, port list) across a Service's slices, sorted.
fn slice_endpoints(s: &Server, svc: &str) -> Vec<(String, bool, Vec<i64>)> {
    let mut out = Vec::new();
    for slice in slices(s, svc) {
        let ports: Vec<i64> = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            out.push((
                e["addresses"][0].as_str().unwrap_or_default().to_string(),
                e["conditions"]["ready"].as_bool().unwrap_or(false),
                ports.clone(),
            ));
        }
    }
    out.sort();
    out
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
      tier: rs
  template:
    metadata:
      labels:
        app: web
        tier: rs
    spec:
      containers:
      - name: app
        image: busybox
        ports:
        - name: http
          containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    team: blue
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: web-all
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: no-port
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: metrics
"#;

/// A pod of the `web` Service held unready by a readiness gate (a hollow
/// node reports Ready only when the gate's condition is True), named in
/// the headless Service's subdomain.
const GATED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: gated
  labels:
    app: web
spec:
  hostname: gated
  subdomain: web-all
  readinessGates:
  - conditionType: example.com/in-rotation
  containers:
  - name: app
    image: busybox
    ports:
    - name: http
      containerPort: 8080
"#;

fn set_gate(s: &Server, status: &str) {
    s.ok(&[
        "patch",
        "pod",
        "gated",
        "--subresource=status",
        "--type=strategic",
        "-p",
        &format!(
            r#"{{"status":{{"conditions":[{{"type":"example.com/in-rotation","status":"{status}"}}]}}}}"#
        ),
    ]);
}

#[test]
fn endpoints_and_slices_follow_pods_readiness_and_named_ports() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], WEB);
    s.apply_stdin(&["apply"], GATED);
    let gated = pod_ip(&s, "gated");
    let ready = eventually(WAIT, || {
        let ips = pod_ips(&s, "app=web");
        (ips.len() == 4).then_some(ips)
    });
    let ready: Vec<String> = ready.into_iter().filter(|ip| *ip != gated).collect();

    // Three ready pods in addresses, the gated one not ready; the named
    // targetPort resolved to the container's 8080.
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web"])?;
        (subsets(&ep) == vec![(ready.clone(), vec![gated.clone()], vec!["http:8080".into()])])
            .then_some(())
    });
    let ep = json(&s, &["get", "endpoints", "web"]);
    assert_eq!(ep["metadata"]["labels"]["team"], "blue", "{ep}");
    assert!(
        ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            .is_string(),
        "{ep}"
    );
    let addr = &ep["subsets"][0]["addresses"][0];
    assert_eq!(addr["targetRef"]["kind"], "Pod", "{addr}");
    assert!(
        addr["nodeName"].as_str().is_some_and(|n| !n.is_empty()),
        "{addr}"
    );
    assert!(addr["targetRef"]["uid"].is_string(), "{addr}");

    // The slices say the same, with conditions, owner and labels.
    eventually(WAIT, || {
        let mut want: Vec<(String, bool, Vec<i64>)> = ready
            .iter()
            .map(|ip| (ip.clone(), true, vec![8080]))
            .collect();
        want.push((gated.clone(), false, vec![8080]));
        want.sort();
        (slice_endpoints(&s, "web") == want).then_some(())
    });
    let sl = &slices(&s, "web")[0];
    assert_eq!(sl["addressType"], "IPv4");
    assert_eq!(
        sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(sl["metadata"]["labels"]["team"], "blue");
    assert!(sl["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    let owner = &sl["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            &owner["kind"],
            &owner["name"],
            &owner["controller"],
            &owner["blockOwnerDeletion"]
        ),
        (
            &Value::from("Service"),
            &Value::from("web"),
            &Value::from(true),
            &Value::from(true)
        )
    );
    let out = s.ok(&["get", "endpointslices"]);
    assert!(out.contains("IPv4") && out.contains("8080"), "{out}");
    let out = s.ok(&["get", "endpoints", "web"]);
    assert!(out.contains(&format!("{}:8080", ready[0])), "{out}");
    let out = s.ok(&["describe", "svc", "web"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or("");
    assert!(line.contains(":8080"), "{out}");

    // publishNotReadyAddresses: every pod is an address; the gated pod has
    // its hostname, being in the Service's subdomain.
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web-all"])?;
        let mut all = ready.clone();
        all.push(gated.clone());
        all.sort();
        (subsets(&ep) == vec![(all, vec![], vec!["http:8080".into()])]).then_some(())
    });
    let ep = json(&s, &["get", "endpoints", "web-all"]);
    let hostnames: Vec<&Value> = ep["subsets"][0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["hostname"].is_null())
        .map(|a| &a["hostname"])
        .collect();
    assert_eq!(hostnames, vec![&Value::from("gated")], "{ep}");
    assert_eq!(
        ep["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );

    // A targetPort name no container has: no endpoints, said by describe.
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "no-port"])?;
        ep["subsets"].is_null().then_some(())
    });
    // kubectl 1.32 describes from the slices: with only the placeholder
    // slice, the line is empty (as with upstream), never a pod address.
    let out = s.ok(&["describe", "svc", "no-port"]);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("Endpoints:"))
        .unwrap_or("missing");
    assert!(matches!(line.trim(), "" | "<none>"), "{out}");
    let out = s.ok(&["get", "endpoints", "no-port"]);
    assert!(out.contains("<none>"), "{out}");

    // Readiness moves the gated pod in and out of rotation.
    set_gate(&s, "True");
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web"])?;
        let mut all = ready.clone();
        all.push(gated.clone());
        all.sort();
        (subsets(&ep) == vec![(all, vec![], vec!["http:8080".into()])]).then_some(())
    });
    eventually(WAIT, || {
        slice_endpoints(&s, "web")
            .iter()
            .all(|(_, ready, _)| *ready)
            .then_some(())
    });
    set_gate(&s, "False");
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web"])?;
        (subsets(&ep) == vec![(ready.clone(), vec![gated.clone()], vec!["http:8080".into()])])
            .then_some(())
    });

    // A pod whose named port resolves differently: its own subset and slice.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: alt\n  labels:\n    app: web\nspec:\n  containers:\n  - name: app\n    image: busybox\n    ports:\n    - name: http\n      containerPort: 9090\n",
    );
    let alt = pod_ip(&s, "alt");
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web"])?;
        let subs = subsets(&ep);
        subs.contains(&(vec![alt.clone()], vec![], vec!["http:9090".into()]))
            .then_some(())
    });
    eventually(WAIT, || {
        let ports: Vec<Vec<i64>> = slices(&s, "web")
            .iter()
            .map(|sl| {
                sl["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["port"].as_i64())
                    .collect()
            })
            .collect();
        (ports.contains(&vec![8080]) && ports.contains(&vec![9090])).then_some(())
    });
    s.ok(&["delete", "pod", "alt", "--wait=false"]);

    // Endpoints follow the replica count.
    s.ok(&["scale", "rs", "web", "--replicas=1"]);
    eventually(WAIT, || {
        let ep = try_json(&s, &["get", "endpoints", "web"])?;
        let subs = subsets(&ep);
        (subs.len() == 1 && subs[0].0.len() == 1 && subs[0].1 == vec![gated.clone()]).then_some(())
    });
    eventually(WAIT, || {
        (slice_endpoints(&s, "web").len() == 2).then_some(())
    });

    // Deleting the Service takes its Endpoints and slices with it.
    s.ok(&["delete", "svc", "web"]);
    eventually(WAIT, || {
        let gone = !s.kubectl(&["get", "endpoints", "web"]).status.success();
        (gone && slices(&s, "web").is_empty()).then_some(())
    });
}

#[test]
fn selectorless_endpoints_are_mirrored_into_slices() {
    let s = Server::start();
    s.apply_stdin(
        &["apply"],
        r#"
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  labels:
    team: red
subsets:
- addresses:
  - ip: 192.0.2.10
  notReadyAddresses:
  - ip: 192.0.2.11
  ports:
  - name: http
    port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: skipped
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Endpoints
metadata:
  name: skipped
  labels:
    endpointslice.kubernetes.io/skip-mirror: "true"
subsets:
- addresses:
  - ip: 192.0.2.20
  ports:
  - port: 80
"#,
    );
    eventually(WAIT, || {
        let want = vec![
            ("192.0.2.10".to_string(), true, vec![8080]),
            ("192.0.2.11".to_string(), false, vec![8080]),
        ];
        (slice_endpoints(&s, "ext") == want).then_some(())
    });
    let sl = &slices(&s, "ext")[0];
    assert_eq!(
        sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(sl["metadata"]["labels"]["team"], "red");
    assert_eq!(sl["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    // The hand-written Endpoints are left as written.
    let ep = json(&s, &["get", "endpoints", "ext"]);
    assert_eq!(
        subsets(&ep),
        vec![(
            vec!["192.0.2.10".into()],
            vec!["192.0.2.11".into()],
            vec!["http:8080".into()]
        )]
    );

    // Edits are mirrored.
    s.ok(&[
        "patch",
        "endpoints",
        "ext",
        "--type=merge",
        "-p",
        r#"{"subsets":[{"addresses":[{"ip":"192.0.2.12"}],"ports":[{"name":"http","port":8080}]}]}"#,
    ]);
    eventually(WAIT, || {
        (slice_endpoints(&s, "ext") == vec![("192.0.2.12".to_string(), true, vec![8080])])
            .then_some(())
    });

    // skip-mirror: never mirrored (the other Service's slice exists by now).
    assert!(slices(&s, "skipped").is_empty());

    // The Service going takes its Endpoints, and so the mirrored slice.
    s.ok(&["delete", "svc", "ext"]);
    eventually(WAIT, || {
        let gone = !s.kubectl(&["get", "endpoints", "ext"]).status.success();
        (gone && slices(&s, "ext").is_empty()).then_some(())
    });
}

fn ingress(s: &Server, svc: &str) -> Vec<(String, String)> {
    let v = json(s, &["get", "svc", svc]);
    v["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["ip"].as_str().unwrap_or_default().to_string(),
                i["ipMode"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn node_ips(s: &Server) -> Vec<(String, String)> {
    let nodes = json(s, &["get", "nodes"]);
    let mut out: Vec<(String, String)> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let ip = n["status"]["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["type"] == "InternalIP")
                .unwrap()["address"]
                .as_str()
                .unwrap()
                .to_string();
            (n["metadata"]["name"].as_str().unwrap().to_string(), ip)
        })
        .collect();
    out.sort();
    out
}

const LB: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: LoadBalancer
  selector:
    app: lb
  ports:
  - port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: other-lb
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/other
  selector:
    app: lb
  ports:
  - port: 8081
"#;

#[test]
fn servicelb_publishes_ready_node_addresses() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    let nodes = node_ips(&s);
    assert_eq!(nodes.len(), 2);
    s.apply_stdin(&["apply"], LB);
    let mut want: Vec<(String, String)> = nodes
        .iter()
        .map(|(_, ip)| (ip.clone(), "VIP".to_string()))
        .collect();
    want.sort();
    eventually(WAIT, || (ingress(&s, "lb") == want).then_some(()));
    let out = s.ok(&["get", "svc", "lb"]);
    assert!(out.contains(&want[0].0), "{out}");
    let out = s.ok(&["describe", "svc", "lb"]);
    assert!(out.contains("UpdatedIngressIP"), "{out}");

    // A cordoned node leaves the pool, and comes back.
    s.ok(&["cordon", &nodes[0].0]);
    eventually(WAIT, || {
        (ingress(&s, "lb") == vec![(nodes[1].1.clone(), "VIP".to_string())]).then_some(())
    });
    s.ok(&["uncordon", &nodes[0].0]);
    eventually(WAIT, || (ingress(&s, "lb") == want).then_some(()));

    // Another class is another controller's business.
    assert!(ingress(&s, "other-lb").is_empty());
    let out = s.ok(&["get", "svc", "other-lb"]);
    assert!(out.contains("<pending>"), "{out}");
}

#[test]
fn disable_servicelb_leaves_load_balancers_pending() {
    let s = Server::start_with(&["--disable", "servicelb"]);
    let _nodes = HollowNodes::start(&s, 1, &[]);
    s.apply_stdin(&["apply"], LB);
    // The other controllers run: the slices of `lb` appear...
    eventually(WAIT, || (!slices(&s, "lb").is_empty()).then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    // ...but nothing publishes an address.
    assert!(ingress(&s, "lb").is_empty());
    let out = s.ok(&["get", "svc", "lb"]);
    assert!(out.contains("<pending>"), "{out}");
}

#[test]
fn builtin_services_and_bad_input() {
    // An advertised address that is not loopback, so it may be published
    // (nothing connects to it).
    let s = Server::start_with(&["--advertise-address", "192.0.2.1"]);
    let port = s.port.to_string();

    // default/kubernetes: Endpoints and an EndpointSlice saying the same.
    let ep = json(&s, &["get", "endpoints", "kubernetes"]);
    assert_eq!(
        subsets(&ep),
        vec![(
            vec!["192.0.2.1".into()],
            vec![],
            vec![format!("https:{port}")]
        )]
    );
    let sl = json(&s, &["get", "endpointslice", "kubernetes"]);
    assert_eq!(
        sl["metadata"]["labels"]["kubernetes.io/service-name"],
        "kubernetes"
    );
    assert_eq!(sl["addressType"], "IPv4");
    assert_eq!(strs(&sl["endpoints"][0]["addresses"]), vec!["192.0.2.1"]);
    assert_eq!(sl["endpoints"][0]["conditions"]["ready"], true);
    assert_eq!(sl["ports"][0]["name"], "https");
    assert_eq!(sl["ports"][0]["port"].to_string(), port);
    // Not mirrored a second time.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(slices(&s, "kubernetes").len(), 1);

    // kube-system/kube-dns on the cluster DNS address.
    let dns = json(&s, &["-n", "kube-system", "get", "svc", "kube-dns"]);
    assert_eq!(dns["spec"]["clusterIP"], "10.43.0.10");
    assert_eq!(dns["metadata"]["labels"]["k8s-app"], "kube-dns");
    assert_eq!(
        dns["metadata"]["labels"]["kubernetes.io/cluster-service"],
        "true"
    );
    assert_eq!(dns["metadata"]["labels"]["kubernetes.io/name"], "CoreDNS");
    assert!(dns["spec"]["selector"].is_null());
    let ports: Vec<(String, i64, String)> = dns["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["port"].as_i64().unwrap(),
                p["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("dns".into(), 53, "UDP".into()),
            ("dns-tcp".into(), 53, "TCP".into())
        ]
    );

    // Bad input is refused with upstream's field errors, and nothing is written.
    let svc = |name: &str, ports: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: NodePort\n  selector:\n    app: x\n  ports:\n{ports}")
    };
    let create = |yaml: String| -> String {
        let out = s.kubectl_stdin(&["create", "-f", "-"], &yaml);
        assert!(!out.status.success(), "created: {yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = create(svc(
        "dup",
        "  - name: a\n    port: 80\n  - name: b\n    port: 80\n",
    ));
    assert!(
        err.contains("spec.ports[1]") && err.contains("Duplicate value"),
        "{err}"
    );
    let err = create(svc(
        "dup-np",
        "  - name: a\n    port: 80\n    nodePort: 30080\n  - name: b\n    port: 81\n    nodePort: 30080\n",
    ));
    assert!(err.contains("spec.ports[1].nodePort"), "{err}");
    let err = create(svc("low", "  - port: 80\n    nodePort: 80\n"));
    assert!(
        err.contains("spec.ports[0].nodePort")
            && err.contains("provided port is not in the valid range"),
        "{err}"
    );
    s.apply_stdin(
        &["create"],
        &svc("first", "  - port: 80\n    nodePort: 30090\n"),
    );
    let err = create(svc("second", "  - port: 80\n    nodePort: 30090\n"));
    assert!(
        err.contains("spec.ports[0].nodePort")
            && err.contains("provided port is already allocated"),
        "{err}"
    );
    for name in ["dup", "dup-np", "low", "second"] {
        assert!(
            !s.kubectl(&["get", "svc", name]).status.success(),
            "{name} exists"
        );
    }
    // 422 at the HTTP level.
    let (code, body) = s.curl(
        "POST",
        "/api/v1/namespaces/default/services",
        "application/json",
        br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dup"},"spec":{"ports":[{"name":"a","port":80},{"name":"b","port":80}]}}"#,
    );
    assert_eq!(code, 422, "{body}");
}

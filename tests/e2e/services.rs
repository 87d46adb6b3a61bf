//! Service networking with real pods: ClusterIP by DNS name from pods and
//! from the node, spreading and readiness, session affinity, hairpin, the
//! API through `kubernetes.default`, NodePort and LoadBalancer from a
//! machine beside the node, `externalTrafficPolicy: Local`, cluster DNS
//! (headless Services, StatefulSet names, SRV, PTR, ExternalName,
//! NXDOMAIN), and the proxy's nftables table following Services.
//!
//! Each test runs a server with its agent in a network namespace of its own
//! (`Server::start_node`); the "outside" client is a second namespace on
//! the other end of the node's `eth0`. Needs root, containerd, runc, the
//! CNI plugins, nftables and `make images`.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use common::{eventually, jsonpath, node_ready, wait_ready, Netns, Server, NODE_IP};

const BUSYBOX: &str = "localhost/busybox:1.35";
const DEMO: &str = "localhost/skiff-demo:0.1";

/// Whether a command succeeded, and what it printed (stdout, then stderr).
fn outcome(out: Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What `sh -c script` prints in pod `pod`, and whether it succeeded.
fn exec_sh(s: &Server, pod: &str, script: &str) -> (bool, String) {
    outcome(s.kubectl(&["exec", pod, "--", "sh", "-c", script]))
}

/// `curl` flags of every request here: errors shown, 5 s at most.
const CURL: [&str; 3] = ["-sS", "--max-time", "5"];

/// `wget` of `url` from pod `pod`, which must answer.
#[track_caller]
fn wget(s: &Server, pod: &str, url: &str) -> String {
    let (ok, text) = exec_sh(s, pod, &format!("timeout 5 wget -qO- {url}"));
    assert!(ok, "wget {url} from {pod}: {text}");
    text
}

/// The pods that answered `n` requests to `url` from pod `pod` (the demo
/// app says `hello from <hostname>`).
fn answering(s: &Server, pod: &str, url: &str, n: usize) -> BTreeSet<String> {
    let (_, text) = exec_sh(
        s,
        pod,
        &format!("for i in $(seq {n}); do timeout 5 wget -qO- {url}; done"),
    );
    text.lines()
        .filter_map(|l| l.strip_prefix("hello from "))
        .map(str::to_string)
        .collect()
}

/// `curl` from the node's own network namespace.
fn curl_from_node(s: &Server, url: &str) -> (bool, String) {
    outcome(
        s.in_netns("curl")
            .args(CURL)
            .arg(url)
            .output()
            .expect("curl"),
    )
}

fn nft_table(s: &Server) -> String {
    let out = s
        .in_netns("nft")
        .args(["list", "table", "ip", "skiff"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client_pod(s: &Server, name: &str) {
    s.apply_stdin(
        &["apply"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, '3600']}}]\n"
        ),
    );
    wait_ready(s, name, "True");
}

/// Demo-app pods of a Deployment `name` behind a Service of the same name.
fn web_deployment(s: &Server, name: &str, replicas: u32, service: &str) {
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: demo
        image: {DEMO}
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /healthz, port: http}}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
{service}
"#
        ),
    );
}

fn pods_of(s: &Server, app: &str) -> Vec<String> {
    let names = s.ok(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    names.split_whitespace().map(str::to_string).collect()
}

/// The `n` pods of Deployment `app`, once all are ready endpoints of its
/// Service.
#[track_caller]
fn settled(s: &Server, app: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let p = pods_of(s, app);
        if p.len() == n && ready_ips(s, app).len() == n {
            return p;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{app}: {n} ready endpoints not reached:\n{}\n{}\n{}",
                s.ok(&["get", "pods", "-o", "wide"]),
                s.ok(&["get", "endpoints", app, "-o", "yaml"]),
                s.ok(&["get", "events"]),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ready addresses of Endpoints `name`, sorted.
fn ready_ips(s: &Server, name: &str) -> Vec<String> {
    let ips = jsonpath(
        s,
        &format!("endpoints/{name}"),
        "{.subsets[*].addresses[*].ip}",
    );
    let mut v: Vec<String> = ips.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn cluster_ip_by_name_spreads_follows_readiness_and_is_removed_with_the_service() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    web_deployment(
        &s,
        "web",
        3,
        "  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]",
    );
    let pods = settled(&s, "web", 3);
    // Created after the Service: it gets the service variables.
    client_pod(&s, "client");
    let cluster_ip = jsonpath(&s, "svc/web", "{.spec.clusterIP}");

    // By every name the search list allows, from a pod.
    for url in [
        "http://web",
        "http://web.default",
        "http://web.default.svc",
        "http://web.default.svc.cluster.local",
        &format!("http://{cluster_ip}"),
    ] {
        assert!(
            wget(&s, "client", url).starts_with("hello from web-"),
            "{url}"
        );
    }
    // Spread over the three endpoints.
    let all: BTreeSet<String> = pods.iter().cloned().collect();
    assert_eq!(answering(&s, "client", "http://web", 40), all);
    // From the node itself.
    let (ok, text) = curl_from_node(&s, &format!("http://{cluster_ip}/"));
    assert!(ok && text.starts_with("hello from web-"), "{text}");

    // Docker-link variables, and the API through `kubernetes.default`.
    let (_, env) = exec_sh(&s, "client", "env");
    assert!(
        env.contains(&format!("WEB_SERVICE_HOST={cluster_ip}\n")),
        "{env}"
    );
    assert!(env.contains("WEB_SERVICE_PORT_HTTP=80\n"), "{env}");
    assert!(
        env.contains(&format!("WEB_PORT=tcp://{cluster_ip}:80\n")),
        "{env}"
    );
    assert!(env.contains("KUBERNETES_SERVICE_HOST=10.43.0.1\n"), "{env}");
    assert!(env.contains("KUBERNETES_SERVICE_PORT=443\n"), "{env}");
    let (_, version) = exec_sh(
        &s,
        "client",
        "timeout 5 wget -qO- --no-check-certificate https://kubernetes.default.svc/version 2>&1",
    );
    // busybox's TLS shares no cipher suite with the API server's, so its
    // handshake alert is the API server's answer.
    assert!(
        version.contains("gitVersion") || version.contains("TLS error from peer"),
        "the API answers through its Service: {version}"
    );
    let ep = jsonpath(&s, "endpoints/kubernetes", "{.subsets[0].addresses[0].ip}");
    assert_eq!(ep, NODE_IP);

    // Pod to pod across the bridge, and pod to the node.
    let first_ip = jsonpath(&s, &format!("pod/{}", pods[0]), "{.status.podIP}");
    assert!(wget(&s, "client", &format!("http://{first_ip}:8080/")).contains(&pods[0]));
    // The node's own resolver, straight at the node address.
    let (ok, text) = exec_sh(
        &s,
        "client",
        &format!("timeout 5 nslookup kubernetes.default.svc.cluster.local {NODE_IP}"),
    );
    assert!(
        ok && text.contains("10.43.0.1"),
        "a pod reaches the node: {text}"
    );

    // Hairpin: a pod reaches itself through its own Service (the demo
    // image has no shell, so the loop runs here).
    let mut me = 0;
    for _ in 0..30 {
        let out = s.kubectl(&[
            "exec",
            &pods[0],
            "--",
            "/demo",
            "get",
            "http://web",
            "--timeout",
            "3",
        ]);
        assert!(out.status.success(), "request from a backend: {out:?}");
        if String::from_utf8_lossy(&out.stdout).contains(&pods[0]) {
            me += 1;
        }
    }
    assert!(me > 0, "a pod reached itself through its Service");

    // Unready pods leave the endpoints and the rotation, and come back.
    s.ok(&[
        "exec",
        &pods[0],
        "--",
        "/demo",
        "get",
        "http://127.0.0.1:8080/healthz/fail",
    ]);
    eventually(Duration::from_secs(30), || {
        (ready_ips(&s, "web").len() == 2
            && jsonpath(&s, "endpoints/web", "{.subsets[*].notReadyAddresses[*].ip}") == first_ip)
            .then_some(())
    });
    let rest: BTreeSet<String> = pods[1..].iter().cloned().collect();
    assert_eq!(answering(&s, "client", "http://web", 30), rest);
    s.ok(&[
        "exec",
        &pods[0],
        "--",
        "/demo",
        "get",
        "http://127.0.0.1:8080/healthz/ok",
    ]);
    eventually(Duration::from_secs(30), || {
        (ready_ips(&s, "web").len() == 3).then_some(())
    });
    assert_eq!(answering(&s, "client", "http://web", 40), all);

    // ClientIP affinity sticks to one endpoint.
    s.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    eventually(Duration::from_secs(10), || {
        (answering(&s, "client", "http://web", 15).len() == 1).then_some(())
    });

    // A Service with no endpoints refuses at once (no hang), and shows so.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: nobody}\nspec:\n  selector: {app: nothing}\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let nobody_ip = jsonpath(&s, "svc/nobody", "{.spec.clusterIP}");
    eventually(Duration::from_secs(10), || {
        nft_table(&s).contains(&cluster_ip).then_some(())
    });
    let (ok, text) = exec_sh(&s, "client", "timeout 5 wget -qO- http://nobody 2>&1");
    assert!(
        !ok && (text.contains("refused") || text.contains("unreachable")),
        "refused at once, not left to time out: {text}"
    );
    let (ok, text) = curl_from_node(&s, &format!("http://{nobody_ip}/"));
    assert!(!ok && !text.contains("timed out"), "{text}");
    // An address of the service range that no Service has is refused too.
    let (ok, text) = curl_from_node(&s, "http://10.43.255.254/");
    assert!(!ok && !text.contains("timed out"), "{text}");
    let describe = s.ok(&["describe", "svc", "nobody"]);
    let line = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_default();
    assert!(
        line.trim_start_matches("Endpoints:").trim().is_empty() || line.contains("<none>"),
        "{describe}"
    );

    // A targetPort name no container has: no endpoints, rules still sane.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: misnamed}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: nosuchport}]\n",
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(ready_ips(&s, "misnamed").is_empty());
    assert!(wget(&s, "client", "http://web").starts_with("hello from web-"));

    // Deleting the Service removes its rules.
    assert!(nft_table(&s).contains(&cluster_ip));
    s.ok(&["delete", "svc", "web"]);
    eventually(Duration::from_secs(10), || {
        (!nft_table(&s).contains(&cluster_ip)).then_some(())
    });
    assert!(nft_table(&s).contains("table ip skiff"));
}

/// A second namespace on the far end of the node's `eth0`: a machine on
/// the node's network, outside the pod network.
struct Outside {
    ns: Netns,
}

const OUTSIDE_IP: &str = "172.31.0.3";

impl Outside {
    fn new(s: &Server) -> Outside {
        let ns = Netns::new("outside");
        let node = s.netns().expect("a node namespace");
        // The fresh namespace has its own eth0; the node's peer replaces it.
        for args in [
            vec!["-n", &ns.name, "link", "del", "eth0"],
            vec!["-n", node, "link", "set", "eth0-peer", "netns", &ns.name],
            vec!["-n", &ns.name, "link", "set", "eth0-peer", "name", "eth1"],
            vec![
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{OUTSIDE_IP}/24"),
                "dev",
                "eth1",
            ],
            vec!["-n", &ns.name, "link", "set", "eth1", "up"],
        ] {
            let ok = Command::new("ip").args(&args).status();
            assert!(ok.is_ok_and(|s| s.success()), "ip {args:?}");
        }
        Outside { ns }
    }

    fn curl(&self, url: &str) -> (bool, String) {
        outcome(
            Command::new("ip")
                .args(["netns", "exec", &self.ns.name, "curl"])
                .args(CURL)
                .arg(url)
                .output()
                .expect("curl"),
        )
    }
}

#[test]
fn node_port_and_load_balancer_from_outside_the_node() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    let outside = Outside::new(&s);
    web_deployment(
        &s,
        "echo",
        2,
        "  type: NodePort\n  selector: {app: echo}\n  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]",
    );
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec:\n  type: LoadBalancer\n  selector: {app: echo}\n  ports: [{port: 8081, targetPort: 8080}]\n",
    );
    settled(&s, "echo", 2);

    // NodePort on the node address, from outside and from the node, and on
    // the node's 127.0.0.1.
    let node_url = format!("http://{NODE_IP}:30080/");
    let (ok, text) = eventually(Duration::from_secs(10), || {
        let r = outside.curl(&node_url);
        r.0.then_some(r)
    });
    assert!(ok && text.starts_with("hello from echo-"), "{text}");
    for url in [node_url.as_str(), "http://127.0.0.1:30080/"] {
        let (ok, text) = curl_from_node(&s, url);
        assert!(ok && text.starts_with("hello from echo-"), "{url}: {text}");
    }
    // Cluster policy: the client address is masqueraded.
    let (_, seen) = outside.curl(&format!("http://{NODE_IP}:30080/clientip"));
    assert_ne!(seen.trim(), OUTSIDE_IP, "masqueraded under Cluster policy");
    // Local policy: the client address is kept.
    s.ok(&[
        "patch",
        "svc",
        "echo",
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
    ]);
    eventually(Duration::from_secs(10), || {
        let (ok, seen) = outside.curl(&format!("http://{NODE_IP}:30080/clientip"));
        (ok && seen.trim() == OUTSIDE_IP).then_some(())
    });

    // The LoadBalancer gets the node address and serves its port there.
    let ingress = eventually(Duration::from_secs(30), || {
        let ip = jsonpath(&s, "svc/lb", "{.status.loadBalancer.ingress[0].ip}");
        (!ip.is_empty()).then_some(ip)
    });
    assert_eq!(ingress, NODE_IP);
    let (ok, text) = eventually(Duration::from_secs(10), || {
        let r = outside.curl(&format!("http://{ingress}:8081/"));
        r.0.then_some(r)
    });
    assert!(ok && text.starts_with("hello from echo-"), "{text}");
    let columns = s.ok(&["get", "svc", "lb", "--no-headers"]);
    assert!(columns.contains(NODE_IP), "EXTERNAL-IP shows it: {columns}");

    // Gone with the Service.
    s.ok(&["delete", "svc", "echo", "lb"]);
    eventually(Duration::from_secs(10), || {
        let table = nft_table(&s);
        (!table.contains("30080") && !table.contains("8081")).then_some(())
    });
    let (ok, _) = outside.curl(&node_url);
    assert!(!ok, "the NodePort is closed");
}

/// Names as a pod sees them through the cluster DNS.
fn nslookup(s: &Server, pod: &str, args: &str) -> (bool, String) {
    exec_sh(s, pod, &format!("timeout 5 nslookup {args}"))
}

#[test]
fn cluster_dns_names_headless_statefulset_srv_ptr_and_external_name() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: nginx}}
spec:
  clusterIP: None
  selector: {{app: sts}}
  ports: [{{name: web, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: nginx
  replicas: 2
  selector: {{matchLabels: {{app: sts}}}}
  template:
    metadata: {{labels: {{app: sts}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: demo
        image: {DEMO}
        ports: [{{name: web, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: front}}
spec:
  selector: {{app: sts}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: front.default.svc.cluster.local
"#
        ),
    );
    client_pod(&s, "client");
    wait_ready(&s, "web-1", "True");
    let ip0 = jsonpath(&s, "pod/web-0", "{.status.podIP}");
    let ip1 = jsonpath(&s, "pod/web-1", "{.status.podIP}");
    let front = jsonpath(&s, "svc/front", "{.spec.clusterIP}");
    assert_eq!(
        s.ok(&[
            "get",
            "svc",
            "kube-dns",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.spec.clusterIP}"
        ]),
        "10.43.0.10"
    );

    // A headless Service answers with every ready pod. (Names end in a dot:
    // busybox's nslookup tries the search list otherwise, and fails when any
    // of those tries is NXDOMAIN.)
    let (ok, text) = eventually(Duration::from_secs(30), || {
        let r = nslookup(&s, "client", "nginx.default.svc.cluster.local.");
        (r.1.contains(&ip0) && r.1.contains(&ip1)).then_some(r)
    });
    assert!(ok, "{text}");
    // Short names through the search list.
    let (_, text) = nslookup(&s, "client", "front");
    assert!(
        text.contains(&format!(
            "Name:\tfront.default.svc.cluster.local\nAddress: {front}"
        )),
        "{text}"
    );
    // StatefulSet pods resolve each other by stable names.
    let out = s.ok(&["exec", "web-1", "--", "/demo", "lookup", "web-0.nginx"]);
    assert_eq!(out.trim(), ip0);
    let (ok, text) = nslookup(&s, "client", "web-1.nginx.default.svc.cluster.local.");
    assert!(ok && text.contains(&ip1), "{text}");
    // SRV for a named port.
    let (ok, text) = nslookup(
        &s,
        "client",
        "-type=SRV _web._tcp.nginx.default.svc.cluster.local.",
    );
    assert!(
        ok && text.contains("8080") && text.contains("web-0.nginx.default.svc.cluster.local"),
        "{text}"
    );
    // PTR for a service IP and for a pod behind a headless Service.
    let (ok, text) = nslookup(&s, "client", &front);
    assert!(
        ok && text.contains("front.default.svc.cluster.local"),
        "{text}"
    );
    let (ok, text) = nslookup(&s, "client", &ip0);
    assert!(
        ok && text.contains("web-0.nginx.default.svc.cluster.local"),
        "{text}"
    );
    // ExternalName is a CNAME.
    let (ok, text) = nslookup(&s, "client", "ext.default.svc.cluster.local.");
    assert!(
        ok && text.contains("front.default.svc.cluster.local") && text.contains(&front),
        "{text}"
    );
    // Unknown names: NXDOMAIN; a name without the asked type: no error.
    let (ok, text) = nslookup(&s, "client", "nosuch.default.svc.cluster.local.");
    assert!(!ok && text.contains("NXDOMAIN"), "{text}");
    let (ok, text) = nslookup(&s, "client", "-type=AAAA front.default.svc.cluster.local.");
    assert!(ok && !text.contains("NXDOMAIN"), "{text}");

    // Answers follow changes at once.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: late}\nspec:\n  selector: {app: sts}\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let late = jsonpath(&s, "svc/late", "{.spec.clusterIP}");
    eventually(Duration::from_secs(10), || {
        let (ok, text) = nslookup(&s, "client", "late.default.svc.cluster.local.");
        (ok && text.contains(&late)).then_some(())
    });
    // And through the Service it names, the pods answer.
    assert!(wget(&s, "client", "http://front").starts_with("hello from web-"));
}

#[test]
fn cluster_domain_flag_changes_the_zone() {
    let s = Server::start_node(&["--cluster-domain", "corp.test"]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: front}\nspec:\n  selector: {app: none}\n  ports: [{port: 80}]\n",
    );
    client_pod(&s, "client");
    let front = jsonpath(&s, "svc/front", "{.spec.clusterIP}");
    let (_, resolv) = exec_sh(&s, "client", "cat /etc/resolv.conf");
    assert!(
        resolv.contains("search default.svc.corp.test svc.corp.test corp.test"),
        "{resolv}"
    );
    let (ok, text) = nslookup(&s, "client", "front.default.svc.corp.test.");
    assert!(ok && text.contains(&front), "{text}");
    let (_, text) = nslookup(&s, "client", "front");
    assert!(
        text.contains(&format!(
            "Name:\tfront.default.svc.corp.test\nAddress: {front}"
        )),
        "{text}"
    );
    // PTR names are in the zone too.
    let (ok, text) = nslookup(&s, "client", &front);
    assert!(ok && text.contains("front.default.svc.corp.test"), "{text}");
}

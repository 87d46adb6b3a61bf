//! Service ClusterIP and NodePort allocation, as kube-apiserver's service
//! REST storage does it: addresses from the service CIDR, node ports from
//! the node-port range, duplicates and out-of-range values refused with 422.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rand::Rng;
use resources::validation::{ErrorType, FieldError};
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, p) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "service CIDR {s:?} must have a prefix between /8 and /30"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The first usable address: the `kubernetes` Service's ClusterIP.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// What one call allocated, so it can be given back if the write fails.
#[derive(Debug, Default)]
pub struct Allocation {
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
}

pub struct ServiceAllocator {
    cidr: Cidr,
    ports: (u16, u16),
    used: Mutex<(HashSet<Ipv4Addr>, HashSet<u16>)>,
}

fn invalid(field: String, value: Value, detail: String) -> FieldError {
    FieldError {
        error_type: ErrorType::Invalid,
        field,
        bad_value: Some(value),
        detail,
    }
}

impl ServiceAllocator {
    pub fn new(cidr: Cidr, ports: (u16, u16)) -> Self {
        ServiceAllocator {
            cidr,
            ports,
            used: Mutex::new((HashSet::new(), HashSet::new())),
        }
    }

    pub fn cidr(&self) -> &Cidr {
        &self.cidr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashSet<Ipv4Addr>, HashSet<u16>)> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a stored Service's addresses and ports as taken.
    pub fn observe(&self, svc: &Value) {
        let (ips, ports) = addresses(svc);
        let mut used = self.lock();
        used.0.extend(ips);
        used.1.extend(ports);
    }

    pub fn release(&self, a: &Allocation) {
        let mut used = self.lock();
        for ip in &a.ips {
            used.0.remove(ip);
        }
        for p in &a.ports {
            used.1.remove(p);
        }
    }

    pub fn release_object(&self, svc: &Value) {
        let (ips, ports) = addresses(svc);
        self.release(&Allocation { ips, ports });
    }

    /// Frees what `old` held and `new` no longer does.
    pub fn release_changed(&self, old: &Value, new: &Value) {
        let (oi, op) = addresses(old);
        let (ni, np) = addresses(new);
        self.release(&Allocation {
            ips: oi.into_iter().filter(|i| !ni.contains(i)).collect(),
            ports: op.into_iter().filter(|p| !np.contains(p)).collect(),
        });
    }

    /// Fills `spec.clusterIP(s)` and node ports of a Service being created
    /// (`old` = None) or updated, keeping what `old` already had.
    pub fn allocate(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Allocation, Vec<FieldError>> {
        let mut used = self.lock();
        let mut alloc = Allocation::default();
        let mut errs = Vec::new();
        let svc_type = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let old_ips = old.map(addresses).unwrap_or_default();

        if svc_type != "ExternalName" {
            let mut ip = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if ip.is_empty() {
                if let Some(o) = old_ip.as_deref().filter(|s| !s.is_empty()) {
                    ip = o.to_string();
                }
            }
            if ip.is_empty() {
                match self.random_ip(&used.0) {
                    Some(a) => {
                        alloc.ips.push(a);
                        ip = a.to_string();
                    }
                    None => errs.push(FieldError {
                        error_type: ErrorType::Internal,
                        field: "spec.clusterIPs".into(),
                        bad_value: None,
                        detail: "failed to allocate a serviceIP: range is full".into(),
                    }),
                }
            } else if ip != "None" && old_ip.as_deref() != Some(ip.as_str()) {
                match ip.parse::<Ipv4Addr>() {
                    Ok(a) if !self.cidr.contains(a) => errs.push(invalid(
                        "spec.clusterIPs".into(),
                        json!([ip]),
                        format!(
                            "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                            self.cidr
                        ),
                    )),
                    Ok(a) if used.0.contains(&a) => errs.push(invalid(
                        "spec.clusterIPs".into(),
                        json!([ip]),
                        format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    )),
                    Ok(a) => alloc.ips.push(a),
                    Err(_) => {} // validation reports the syntax
                }
            }
            if !ip.is_empty() {
                let spec = &mut svc["spec"];
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
                if spec.get("ipFamilies").is_none() {
                    spec["ipFamilies"] = json!(["IPv4"]);
                }
                if spec.get("ipFamilyPolicy").is_none() {
                    spec["ipFamilyPolicy"] = json!("SingleStack");
                }
            }
        }

        let wants_node_ports = svc_type == "NodePort"
            || (svc_type == "LoadBalancer"
                && svc
                    .pointer("/spec/allocateLoadBalancerNodePorts")
                    .and_then(Value::as_bool)
                    .unwrap_or(true));
        if svc_type == "LoadBalancer"
            && svc.pointer("/spec/allocateLoadBalancerNodePorts").is_none()
        {
            svc["spec"]["allocateLoadBalancerNodePorts"] = json!(true);
        }
        let old_ports: Vec<Value> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut in_this: HashSet<(u16, String)> = HashSet::new();
        if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for (i, p) in ports.iter_mut().enumerate() {
                let proto = p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string();
                let given = p.get("nodePort").and_then(Value::as_i64);
                if !wants_node_ports {
                    continue;
                }
                let port = match given {
                    Some(n) => {
                        let n16 = u16::try_from(n)
                            .ok()
                            .filter(|n| *n >= self.ports.0 && *n <= self.ports.1);
                        let Some(n16) = n16 else {
                            errs.push(invalid(
                                format!("spec.ports[{i}].nodePort"),
                                json!(n),
                                format!(
                                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                                    self.ports.0, self.ports.1
                                ),
                            ));
                            continue;
                        };
                        let held_before = old_ips.1.contains(&n16) || alloc.ports.contains(&n16);
                        if !held_before && used.1.contains(&n16) {
                            errs.push(invalid(
                                format!("spec.ports[{i}].nodePort"),
                                json!(n),
                                "provided port is already allocated".into(),
                            ));
                            continue;
                        }
                        if !held_before {
                            alloc.ports.push(n16);
                        }
                        n16
                    }
                    None => {
                        let reuse = old_ports.iter().find(|op| {
                            op.get("port") == p.get("port")
                                && op.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                    == proto
                        });
                        match reuse
                            .and_then(|op| op.get("nodePort"))
                            .and_then(Value::as_u64)
                        {
                            Some(n) => n as u16,
                            None => match self.random_port(&used.1, &alloc.ports) {
                                Some(n) => {
                                    alloc.ports.push(n);
                                    n
                                }
                                None => {
                                    errs.push(FieldError {
                                        error_type: ErrorType::Internal,
                                        field: format!("spec.ports[{i}].nodePort"),
                                        bad_value: None,
                                        detail: "failed to allocate a nodePort: range is full"
                                            .into(),
                                    });
                                    continue;
                                }
                            },
                        }
                    }
                };
                if !in_this.insert((port, proto.clone())) {
                    errs.push(FieldError {
                        error_type: ErrorType::Duplicate,
                        field: format!("spec.ports[{i}].nodePort"),
                        bad_value: Some(json!(port)),
                        detail: String::new(),
                    });
                }
                p["nodePort"] = json!(port);
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        if !dry_run {
            used.0.extend(alloc.ips.iter().copied());
            used.1.extend(alloc.ports.iter().copied());
        }
        Ok(alloc)
    }

    fn random_ip(&self, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let size = self.cidr.size();
        // Skip the network address, the first address (the `kubernetes`
        // Service's) and the broadcast address.
        let usable = size.checked_sub(3)?;
        if usable == 0 {
            return None;
        }
        let base = u32::from(self.cidr.base);
        let start = rand::rng().random_range(0..usable);
        (0..usable)
            .map(|i| Ipv4Addr::from(base + 2 + (start + i) % usable))
            .find(|a| !used.contains(a))
    }

    fn random_port(&self, used: &HashSet<u16>, taken: &[u16]) -> Option<u16> {
        let n = u32::from(self.ports.1 - self.ports.0) + 1;
        let start = rand::rng().random_range(0..n);
        (0..n)
            .map(|i| self.ports.0 + ((start + i) % n) as u16)
            .find(|p| !used.contains(p) && !taken.contains(p))
    }
}

/// The cluster IP and node ports a Service object holds.
fn addresses(svc: &Value) -> (Vec<Ipv4Addr>, Vec<u16>) {
    let ips = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .into_iter()
        .collect();
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .map(|n| n as u16)
                .collect()
        })
        .unwrap_or_default();
    (ips, ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> ServiceAllocator {
        ServiceAllocator::new(Cidr::parse("10.43.0.0/16").unwrap(), (30000, 32767))
    }

    #[test]
    fn allocates_ips_and_ports_once() {
        let a = alloc();
        let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        a.allocate(&mut s, None, false).unwrap();
        let ip: Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(a.cidr().contains(ip));
        assert_ne!(ip, a.cidr().first());
        let np = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));

        let mut dup = json!({"spec": {"type": "NodePort", "clusterIP": ip.to_string(), "ports": [{"port": 81, "nodePort": np}]}});
        let errs = a.allocate(&mut dup, None, false).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].detail.contains("already allocated"));

        let mut out = json!({"spec": {"type": "NodePort", "clusterIP": "10.44.0.1", "ports": [{"port": 81, "nodePort": 80}]}});
        let errs = a.allocate(&mut out, None, false).unwrap_err();
        assert!(errs[0].detail.contains("not in the valid range"));
        assert!(errs[1].detail.contains("30000-32767"));

        // An update keeps the same address and port.
        let old = s.clone();
        let mut upd = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        a.allocate(&mut upd, Some(&old), false).unwrap();
        assert_eq!(upd["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        assert_eq!(
            upd["spec"]["ports"][0]["nodePort"],
            old["spec"]["ports"][0]["nodePort"]
        );

        a.release_object(&s);
        let mut again = json!({"spec": {"clusterIP": ip.to_string(), "ports": [{"port": 80}]}});
        a.allocate(&mut again, None, false).unwrap();
    }

    #[test]
    fn headless_and_external_name() {
        let a = alloc();
        let mut h = json!({"spec": {"clusterIP": "None", "ports": []}});
        a.allocate(&mut h, None, false).unwrap();
        assert_eq!(h["spec"]["clusterIP"], "None");
        let mut e = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        a.allocate(&mut e, None, false).unwrap();
        assert!(e["spec"].get("clusterIP").is_none());
    }
}

//! The proxier: holds the Services and EndpointSlices it was given, knows
//! what its table holds per Service, and brings the table in line with one
//! nft transaction per sync: a full sync (the whole table replaced) at start
//! and after a failure, otherwise a partial sync that rewrites only the
//! chains, sets and map elements of the Services that changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use client::informer::service_key_of;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

use crate::cidr::Ipv4Cidr;
use crate::endpoints::endpoints_for_port;
use crate::nft;
use crate::rules::{self, Dest, RenderContext, ServiceRules};
use crate::service::service_ports;
use crate::transaction;
use crate::{Config, Error};

/// Which kind of transaction a sync ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// The whole table replaced.
    Full,
    /// Only the changed Services rewritten.
    Partial,
}

/// What one successful sync did.
#[derive(Clone, Debug)]
pub struct SyncStats {
    pub kind: SyncKind,
    /// Services whose rules were (re)written.
    pub services: usize,
    /// Size of the nft script.
    pub bytes: usize,
    /// From the start of the sync to nft's exit: the rules are in force.
    pub duration: Duration,
    pub finished: Instant,
}

/// Every successful sync of any proxier in this process, for observers
/// (the agent's metrics, benchmarks waiting for rules to be in force).
fn syncs() -> &'static watch::Sender<Option<SyncStats>> {
    static SYNCS: OnceLock<watch::Sender<Option<SyncStats>>> = OnceLock::new();
    SYNCS.get_or_init(|| watch::channel(None).0)
}

/// The last successful sync of any proxier in this process.
pub fn last_sync() -> Option<SyncStats> {
    syncs().borrow().clone()
}

/// Sees every later successful sync (as `last_sync`, when it changes).
pub fn subscribe_syncs() -> watch::Receiver<Option<SyncStats>> {
    syncs().subscribe()
}

/// The inputs for one Service key (`ns/name`).
#[derive(Default)]
struct ServiceState {
    service: Option<Arc<Service>>,
    /// Slice name → slice.
    slices: BTreeMap<String, Arc<EndpointSlice>>,
}

/// Who gets a destination several Services claim: the oldest Service, then
/// the smaller key.
type Rank = (Option<Timestamp>, String);

/// The rules a Service wants, before destinations are shared out.
#[derive(Clone)]
struct Desired {
    rank: Rank,
    rules: ServiceRules,
}

/// Turns Services and EndpointSlices into nftables rules. Feed it objects,
/// then call [`Proxier::sync`]; `run` does that from the shared informers,
/// and a benchmark can do the same directly.
pub struct Proxier {
    table: String,
    node_name: String,
    service_cidrs: Vec<Ipv4Cidr>,
    ctx: RenderContext,
    inputs: HashMap<String, ServiceState>,
    /// Slice `ns/name` → the Service key it was filed under.
    slice_service: HashMap<String, String>,
    desired: HashMap<String, Desired>,
    /// What the table holds, per Service.
    applied: HashMap<String, ServiceRules>,
    /// Destination → the Services claiming it; the first one owns it.
    claims: HashMap<Dest, BTreeSet<Rank>>,
    dirty: BTreeSet<String>,
    need_full: bool,
    last: Option<SyncStats>,
}

impl Proxier {
    pub fn new(config: &Config) -> Result<Proxier, Error> {
        Ok(Proxier {
            table: config.table.clone(),
            node_name: config.node_name.clone(),
            service_cidrs: Ipv4Cidr::parse_list(&config.service_cidr)
                .map_err(Error::ServiceCidr)?,
            ctx: RenderContext {
                cluster_cidrs: Ipv4Cidr::parse_list(&config.cluster_cidr)
                    .map_err(Error::ClusterCidr)?,
            },
            inputs: HashMap::new(),
            slice_service: HashMap::new(),
            desired: HashMap::new(),
            applied: HashMap::new(),
            claims: HashMap::new(),
            dirty: BTreeSet::new(),
            need_full: true,
            last: None,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn service_cidrs(&self) -> &[Ipv4Cidr] {
        &self.service_cidrs
    }

    /// Replaces what is known of Service `key` (`ns/name`): the Service (None
    /// when deleted) and all its EndpointSlices. What `run` calls, reading
    /// the informer caches.
    pub fn set_service(
        &mut self,
        key: &str,
        service: Option<Arc<Service>>,
        slices: Vec<Arc<EndpointSlice>>,
    ) {
        let state = self.inputs.entry(key.to_string()).or_default();
        for name in state.slices.keys() {
            self.slice_service
                .remove(&format!("{}/{name}", namespace_of(key)));
        }
        state.service = service;
        state.slices = slices
            .into_iter()
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
            .collect();
        for name in state.slices.keys() {
            self.slice_service
                .insert(format!("{}/{name}", namespace_of(key)), key.to_string());
        }
        if state.service.is_none() && state.slices.is_empty() {
            self.inputs.remove(key);
        }
        self.dirty.insert(key.to_string());
    }

    /// Adds or updates a Service.
    pub fn update_service(&mut self, service: Arc<Service>) {
        let key = object_key(&service.metadata);
        self.inputs.entry(key.clone()).or_default().service = Some(service);
        self.dirty.insert(key);
    }

    /// Forgets a Service (its EndpointSlices stay until deleted).
    pub fn delete_service(&mut self, namespace: &str, name: &str) {
        let key = format!("{namespace}/{name}");
        if let Some(state) = self.inputs.get_mut(&key) {
            state.service = None;
            if state.slices.is_empty() {
                self.inputs.remove(&key);
            }
        }
        self.dirty.insert(key);
    }

    /// Adds or updates an EndpointSlice.
    pub fn update_endpoint_slice(&mut self, slice: Arc<EndpointSlice>) {
        let slice_key = object_key(&slice.metadata);
        self.remove_slice(&slice_key);
        let Some(service) = service_key_of(&slice) else {
            return;
        };
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.inputs
            .entry(service.clone())
            .or_default()
            .slices
            .insert(name, slice);
        self.slice_service.insert(slice_key, service.clone());
        self.dirty.insert(service);
    }

    /// Forgets an EndpointSlice.
    pub fn delete_endpoint_slice(&mut self, namespace: &str, name: &str) {
        self.remove_slice(&format!("{namespace}/{name}"));
    }

    fn remove_slice(&mut self, slice_key: &str) {
        let Some(service) = self.slice_service.remove(slice_key) else {
            return;
        };
        let name = slice_key.split_once('/').map_or(slice_key, |(_, n)| n);
        if let Some(state) = self.inputs.get_mut(&service) {
            state.slices.remove(name);
            if state.service.is_none() && state.slices.is_empty() {
                self.inputs.remove(&service);
            }
        }
        self.dirty.insert(service);
    }

    /// Makes the next sync a full one.
    pub fn request_full_sync(&mut self) {
        self.need_full = true;
    }

    /// Whether a sync has anything to do.
    pub fn needs_sync(&self) -> bool {
        self.need_full || !self.dirty.is_empty()
    }

    /// The last successful sync of this proxier.
    pub fn last_sync(&self) -> Option<&SyncStats> {
        self.last.as_ref()
    }

    /// Brings the table in line with what the proxier was given: a full sync
    /// the first time and after any failure, else a partial one over the
    /// changed Services (nothing at all when nothing changed). A failed
    /// transaction changes nothing in the kernel; the next sync is full.
    pub async fn sync(&mut self) -> Result<Option<SyncStats>, Error> {
        let start = Instant::now();
        let plan = if self.need_full {
            None
        } else if self.dirty.is_empty() {
            return Ok(None);
        } else {
            self.plan_partial()
        };
        let (kind, plan) = match plan {
            Some(plan) => (SyncKind::Partial, plan),
            None => (SyncKind::Full, self.plan_full()),
        };
        let services = plan.applied.len();
        let bytes = plan.script.len();
        if let Err(e) = nft::run(&plan.script).await {
            self.need_full = true;
            return Err(Error::Nft(e));
        }
        plan.commit(self, kind);
        let finished = Instant::now();
        let stats = SyncStats {
            kind,
            services,
            bytes,
            duration: finished - start,
            finished,
        };
        tracing::debug!(
            table = %self.table,
            kind = ?kind,
            services,
            bytes,
            total_services = self.applied.len(),
            elapsed = ?stats.duration,
            "synced nftables rules"
        );
        self.last = Some(stats.clone());
        syncs().send_replace(Some(stats.clone()));
        Ok(Some(stats))
    }

    /// The full-sync script for the current inputs (what a full sync runs).
    pub fn full_sync_script(&self) -> String {
        self.plan_full().script
    }

    fn render(&self, key: &str) -> Option<Desired> {
        let state = self.inputs.get(key)?;
        let service = state.service.as_ref()?;
        let ports = service_ports(service);
        if ports.is_empty() {
            return None;
        }
        let slices: Vec<Arc<EndpointSlice>> = state.slices.values().cloned().collect();
        let ports: Vec<_> = ports
            .into_iter()
            .map(|p| {
                let eps = endpoints_for_port(&slices, &p.port_name, p.protocol, &self.node_name);
                (p, eps)
            })
            .collect();
        let rules = rules::render_service(&ports, &self.ctx);
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        Some(Desired {
            rank: (created, key.to_string()),
            rules,
        })
    }

    fn plan_full(&self) -> Plan {
        let mut desired: HashMap<String, Desired> = HashMap::new();
        for key in self.inputs.keys() {
            if let Some(d) = self.render(key) {
                desired.insert(key.clone(), d);
            }
        }
        let mut claims: HashMap<Dest, BTreeSet<Rank>> = HashMap::new();
        for d in desired.values() {
            for dest in d.rules.dests() {
                claims.entry(dest).or_default().insert(d.rank.clone());
            }
        }
        let mut applied: BTreeMap<String, ServiceRules> = BTreeMap::new();
        for (key, d) in &desired {
            applied.insert(key.clone(), owned_rules(&d.rules, key, &claims));
        }
        let skeleton = rules::skeleton(&self.table, &self.service_cidrs);
        let script = transaction::full(&self.table, &skeleton, applied.values());
        Plan {
            script,
            desired: desired.into_iter().map(|(k, d)| (k, Some(d))).collect(),
            claims,
            applied,
        }
    }

    /// None when only a full sync can do it.
    fn plan_partial(&self) -> Option<Plan> {
        let mut desired: HashMap<String, Option<Desired>> = HashMap::new();
        // Claims of the destinations that change hands, as they will be.
        let mut claims: HashMap<Dest, BTreeSet<Rank>> = HashMap::new();
        let mut affected: BTreeSet<String> = self.dirty.clone();
        for key in &self.dirty {
            let old = self.desired.get(key);
            let new = self.render(key);
            let old_dests: BTreeSet<Dest> = old.iter().flat_map(|d| d.rules.dests()).collect();
            let new_dests: BTreeSet<Dest> = new.iter().flat_map(|d| d.rules.dests()).collect();
            let old_rank = old.map(|d| d.rank.clone());
            let new_rank = new.as_ref().map(|d| d.rank.clone());
            for dest in old_dests.union(&new_dests) {
                if old_rank == new_rank && old_dests.contains(dest) && new_dests.contains(dest) {
                    continue;
                }
                let set = claims
                    .entry(*dest)
                    .or_insert_with(|| self.claims.get(dest).cloned().unwrap_or_default());
                if let Some(r) = &old_rank {
                    set.remove(r);
                }
                if let (Some(r), true) = (&new_rank, new_dests.contains(dest)) {
                    set.insert(r.clone());
                }
            }
            desired.insert(key.clone(), new);
        }
        // A destination changing hands rewrites its old and new owner.
        for (dest, set) in &claims {
            let before = self.claims.get(dest).and_then(|s| s.first()).map(|r| &r.1);
            let after = set.first().map(|r| &r.1);
            if before != after {
                affected.extend(before.cloned());
                affected.extend(after.cloned());
            }
        }
        let all_claims = |dest: &Dest| claims.get(dest).or_else(|| self.claims.get(dest));
        let mut applied: BTreeMap<String, ServiceRules> = BTreeMap::new();
        for key in &affected {
            let want = match desired.get(key) {
                Some(d) => d.as_ref(),
                None => self.desired.get(key),
            };
            let rules = match want {
                Some(d) => d.rules.retain_dests(|dest| {
                    all_claims(dest).and_then(|s| s.first()).map(|r| &r.1) == Some(key)
                }),
                None => ServiceRules::default(),
            };
            applied.insert(key.clone(), rules);
        }
        let empty = ServiceRules::default();
        let pairs: Vec<(&ServiceRules, &ServiceRules)> = applied
            .iter()
            .map(|(key, new)| (self.applied.get(key).unwrap_or(&empty), new))
            .collect();
        let script = transaction::partial(&self.table, &pairs).ok()?;
        Some(Plan {
            script,
            desired,
            claims,
            applied,
        })
    }
}

/// A sync's transaction and the state it leads to.
struct Plan {
    script: String,
    /// The Services rendered anew (None: no rules any more).
    desired: HashMap<String, Option<Desired>>,
    /// The destinations whose claims changed (all of them, for a full sync).
    claims: HashMap<Dest, BTreeSet<Rank>>,
    /// The Services whose table contents this transaction sets.
    applied: BTreeMap<String, ServiceRules>,
}

impl Plan {
    fn commit(self, p: &mut Proxier, kind: SyncKind) {
        if kind == SyncKind::Full {
            p.desired.clear();
            p.claims.clear();
            p.applied.clear();
            p.need_full = false;
        }
        p.dirty.clear();
        for (key, d) in self.desired {
            match d {
                Some(d) => p.desired.insert(key, d),
                None => p.desired.remove(&key),
            };
        }
        for (dest, set) in self.claims {
            if set.is_empty() {
                p.claims.remove(&dest);
            } else {
                p.claims.insert(dest, set);
            }
        }
        for (key, rules) in self.applied {
            if rules.is_empty() {
                p.applied.remove(&key);
            } else {
                p.applied.insert(key, rules);
            }
        }
    }
}

/// `rules` without the destinations another Service owns.
fn owned_rules(
    rules: &ServiceRules,
    key: &str,
    claims: &HashMap<Dest, BTreeSet<Rank>>,
) -> ServiceRules {
    rules.retain_dests(|dest| {
        claims
            .get(dest)
            .and_then(|s| s.first())
            .map(|r| r.1.as_str())
            == Some(key)
    })
}

fn namespace_of(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn object_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            node_name: "node-a".into(),
            node_ips: vec![],
            service_cidr: "10.43.0.0/16".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            table: "skiff".into(),
        }
    }

    fn service(name: &str, ip: &str, extra: serde_json::Value) -> Arc<Service> {
        let mut v = serde_json::json!({
            "metadata": {"namespace": "ns", "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}
        });
        if let serde_json::Value::Object(m) = extra {
            for (k, x) in m {
                v["spec"][k] = x;
            }
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn slice(svc: &str, name: &str, ips: &[&str]) -> Arc<EndpointSlice> {
        let eps: Vec<_> = ips
            .iter()
            .map(|ip| serde_json::json!({"addresses": [ip]}))
            .collect();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"namespace": "ns", "name": name,
                             "labels": {"kubernetes.io/service-name": svc}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": eps
            }))
            .unwrap(),
        )
    }

    /// Pretends the plan ran: what a successful sync commits.
    fn apply(p: &mut Proxier) -> (SyncKind, String) {
        let (kind, plan) = if p.need_full {
            (SyncKind::Full, p.plan_full())
        } else {
            match p.plan_partial() {
                Some(plan) => (SyncKind::Partial, plan),
                None => (SyncKind::Full, p.plan_full()),
            }
        };
        let script = plan.script.clone();
        plan.commit(p, kind);
        (kind, script)
    }

    #[test]
    fn first_sync_is_full_then_partial() {
        let mut p = Proxier::new(&config()).unwrap();
        p.update_service(service("a", "10.43.0.10", serde_json::json!({})));
        p.update_endpoint_slice(slice("a", "a-1", &["10.42.0.11", "10.42.0.12"]));
        p.update_service(service("b", "10.43.0.11", serde_json::json!({})));
        let (kind, script) = apply(&mut p);
        assert_eq!(kind, SyncKind::Full);
        assert!(script.starts_with("add table ip skiff\ndelete table ip skiff\n"));
        assert!(script.contains("10.43.0.11 . tcp . 80 : goto reject-chain"));
        assert!(!p.needs_sync());

        // One endpoint more: only Service a's service chain and a new
        // endpoint chain are written.
        p.update_endpoint_slice(slice(
            "a",
            "a-1",
            &["10.42.0.11", "10.42.0.12", "10.42.0.13"],
        ));
        let (kind, script) = apply(&mut p);
        assert_eq!(kind, SyncKind::Partial);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("add chain")).count(),
            1
        );
        assert!(lines[0].starts_with("flush chain ip skiff service-"));
        assert!(script.contains("dnat to 10.42.0.13:8080"));
        assert!(!script.contains("10.42.0.11:8080"));
        assert!(!script.contains("10.43.0.11"));

        // Nothing changed: nothing to do.
        assert!(!p.needs_sync());

        // Service a deleted with its slice: everything of it goes.
        p.delete_service("ns", "a");
        p.delete_endpoint_slice("ns", "a-1");
        let (_, script) = apply(&mut p);
        assert!(script.starts_with("delete element ip skiff service-ips { 10.43.0.10 . tcp . 80 }"));
        assert_eq!(script.matches("delete chain").count(), 4);
        assert!(!p.applied.contains_key("ns/a"));
        assert!(p.applied.contains_key("ns/b"));
    }

    #[test]
    fn endpoints_gone_rejects() {
        let mut p = Proxier::new(&config()).unwrap();
        p.update_service(service("a", "10.43.0.10", serde_json::json!({})));
        p.update_endpoint_slice(slice("a", "a-1", &["10.42.0.11"]));
        apply(&mut p);
        p.update_endpoint_slice(slice("a", "a-1", &[]));
        let (_, script) = apply(&mut p);
        assert!(script.contains("delete element ip skiff service-ips { 10.43.0.10 . tcp . 80 }"));
        assert!(script.contains("add element ip skiff no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }"));
    }

    #[test]
    fn shared_load_balancer_port_goes_to_one_service() {
        let lb = |name: &str, ip: &str| {
            let mut v = serde_json::json!({
                "metadata": {"namespace": "ns", "name": name},
                "spec": {"type": "LoadBalancer", "clusterIP": ip,
                         "ports": [{"name": "http", "port": 80, "nodePort": 0}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}]}}
            });
            v["spec"]["ports"][0]
                .as_object_mut()
                .unwrap()
                .remove("nodePort");
            Arc::new(serde_json::from_value::<Service>(v).unwrap())
        };
        let mut p = Proxier::new(&config()).unwrap();
        p.update_service(lb("a", "10.43.0.10"));
        p.update_endpoint_slice(slice("a", "a-1", &["10.42.0.11"]));
        p.update_service(lb("b", "10.43.0.11"));
        p.update_endpoint_slice(slice("b", "b-1", &["10.42.0.12"]));
        let (_, script) = apply(&mut p);
        assert_eq!(script.matches("172.30.0.2 . tcp . 80 :").count(), 1);
        assert!(script.contains("172.30.0.2 . tcp . 80 : goto external-"));
        assert_eq!(p.claims.len(), 3);
        let owner = |p: &Proxier| {
            p.applied
                .iter()
                .filter(|(_, r)| r.elements.keys().any(|(_, k)| k.starts_with("172.30.0.2")))
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(owner(&p), vec!["ns/a"]);

        // a goes away: b takes the address over in the same partial sync.
        p.delete_service("ns", "a");
        let (kind, script) = apply(&mut p);
        assert_eq!(kind, SyncKind::Partial);
        let del = script
            .find("delete element ip skiff service-ips { 172.30.0.2 . tcp . 80 }")
            .unwrap();
        let add = script
            .find("add element ip skiff service-ips { 172.30.0.2 . tcp . 80 : goto external-")
            .unwrap();
        assert!(del < add);
        assert_eq!(owner(&p), vec!["ns/b"]);

        // a comes back without a creation time (as b): the ranks tie, so
        // the smaller key wins and the element moves back. (A real
        // re-created Service is younger and would leave it with b.)
        p.update_service(lb("a", "10.43.0.10"));
        let (_, script) = apply(&mut p);
        assert!(script.contains("delete element ip skiff service-ips { 172.30.0.2 . tcp . 80 }"));
        assert_eq!(owner(&p), vec!["ns/a"]);
    }

    #[test]
    fn affinity_timeout_change_forces_full_sync() {
        let mut p = Proxier::new(&config()).unwrap();
        let sticky = |t: i32| {
            serde_json::json!({"sessionAffinity": "ClientIP",
                               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": t}}})
        };
        p.update_service(service("a", "10.43.0.10", sticky(10)));
        p.update_endpoint_slice(slice("a", "a-1", &["10.42.0.11"]));
        apply(&mut p);
        p.update_service(service("a", "10.43.0.10", sticky(20)));
        let (kind, script) = apply(&mut p);
        assert_eq!(kind, SyncKind::Full);
        assert!(script.contains("timeout 20s"));
    }

    #[test]
    fn set_service_replaces_slices() {
        let mut p = Proxier::new(&config()).unwrap();
        p.set_service(
            "ns/a",
            Some(service("a", "10.43.0.10", serde_json::json!({}))),
            vec![
                slice("a", "a-1", &["10.42.0.11"]),
                slice("a", "a-2", &["10.42.0.12"]),
            ],
        );
        apply(&mut p);
        assert_eq!(p.applied["ns/a"].chains.len(), 3);
        p.set_service(
            "ns/a",
            Some(service("a", "10.43.0.10", serde_json::json!({}))),
            vec![slice("a", "a-2", &["10.42.0.12"])],
        );
        let (_, script) = apply(&mut p);
        assert_eq!(script.matches("delete chain").count(), 1);
        p.set_service("ns/a", None, vec![]);
        apply(&mut p);
        assert!(p.applied.is_empty() && p.inputs.is_empty() && p.claims.is_empty());
    }

    #[test]
    fn headless_service_has_no_rules() {
        let mut p = Proxier::new(&config()).unwrap();
        p.update_service(service("h", "None", serde_json::json!({})));
        p.update_endpoint_slice(slice("h", "h-1", &["10.42.0.11"]));
        let (_, script) = apply(&mut p);
        assert!(!script.contains("10.42.0.11"));
        assert!(p.applied.is_empty());
    }
}

//! Slice planning (staging `k8s.io/endpointslice` reconciler): given the
//! endpoints wanted per (address type, ports) and the slices that exist,
//! decide which slices to create, update and delete with as little churn as
//! upstream: endpoints stay in the slice they are in, changed slices are
//! filled before an untouched one is, and new slices are made only for
//! what does not fit. Pure: the controllers do the writes.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

/// The ports of a group of endpoints, in a canonical order.
pub type PortsKey = String;

/// What a set of endpoints serving the same ports with the same address type
/// should look like.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub address_type: String,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// Sorts ports canonically; the key of their group.
pub fn ports_key(address_type: &str, ports: &mut [EndpointPort]) -> PortsKey {
    ports.sort_by_key(port_sort_key);
    let parts: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.as_deref().unwrap_or("TCP"),
                p.app_protocol.as_deref().unwrap_or_default()
            )
        })
        .collect();
    format!("{address_type}|{}", parts.join(","))
}

fn port_sort_key(p: &EndpointPort) -> (String, i32, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.port.unwrap_or(0),
        p.protocol.clone().unwrap_or_default(),
    )
}

/// An endpoint's identity (`hashEndpoint`): its addresses, hostname and the
/// object it stands for; everything else may change in place.
fn endpoint_key(e: &Endpoint) -> (Vec<String>, Option<String>, Option<(String, String)>) {
    let mut addrs = e.addresses.clone();
    addrs.sort();
    (
        addrs,
        e.hostname.clone(),
        e.target_ref.as_ref().map(|r| {
            (
                r.namespace.clone().unwrap_or_default(),
                r.name.clone().unwrap_or_default(),
            )
        }),
    )
}

/// What to write.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// How the slices of one owner are made.
pub struct Params<'a> {
    /// At most this many endpoints per slice.
    pub max_endpoints: usize,
    /// A new slice (metadata: generateName, labels, annotations, owner) for
    /// these ports and address type, without endpoints.
    pub new_slice: &'a (dyn Fn(&str, &[EndpointPort]) -> EndpointSlice + Sync),
    /// Whether an existing slice's metadata is what [`Params::new_slice`]
    /// would write (labels, annotations that matter).
    pub meta_current: &'a (dyn Fn(&EndpointSlice) -> bool + Sync),
    /// Brings an existing slice's metadata up to date.
    pub fix_meta: &'a (dyn Fn(&mut EndpointSlice) + Sync),
    /// Whether an owner with no endpoints keeps one empty slice (upstream's
    /// placeholder, for Services with a selector).
    pub placeholder: Option<&'a str>,
}

/// Plans the slices for `desired` (groups by [`ports_key`]) given the
/// owner's `existing` slices. Slices of other address types or ports no
/// longer wanted are deleted, or reused by name for new ones.
pub fn reconcile(
    desired: BTreeMap<PortsKey, Group>,
    existing: Vec<EndpointSlice>,
    params: &Params,
) -> Plan {
    let mut plan = Plan::default();
    let mut existing_by_key: BTreeMap<PortsKey, Vec<EndpointSlice>> = BTreeMap::new();
    for mut s in existing {
        let at = s.address_type.clone();
        let mut ports = s.ports.take().unwrap_or_default();
        let key = ports_key(&at, &mut ports);
        s.ports = (!ports.is_empty()).then_some(ports);
        existing_by_key.entry(key).or_default().push(s);
    }
    let mut desired = desired;
    let mut kept_total = 0usize;
    for (key, slices) in existing_by_key {
        match desired.remove(&key) {
            None => plan.delete.extend(slices),
            Some(group) => {
                let out = reconcile_ports(group, slices, params);
                kept_total += out.kept;
                plan.create.extend(out.create);
                plan.update.extend(out.update);
                plan.delete.extend(out.delete);
            }
        }
    }
    for (_, group) in desired {
        if group.endpoints.is_empty() {
            continue;
        }
        plan.create
            .extend(chunk(&group, group.endpoints.clone(), params));
    }
    // An owner whose slices would all go keeps (or gets) one placeholder.
    if let Some(address_type) = params.placeholder {
        if kept_total + plan.update.len() + plan.create.len() == 0 {
            let placeholder = (params.new_slice)(address_type, &[]);
            let same = |s: &EndpointSlice| {
                s.address_type == placeholder.address_type
                    && s.endpoints.is_empty()
                    && s.ports.as_ref().is_none_or(Vec::is_empty)
                    && (params.meta_current)(s)
            };
            if let Some(i) = plan.delete.iter().position(same) {
                plan.delete.remove(i);
            } else {
                plan.create.push(placeholder);
            }
        }
    }
    finalize(plan)
}

struct PortsOutcome {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
    kept: usize,
}

/// `reconcileByPortMapping` for the slices of one ports key.
fn reconcile_ports(group: Group, slices: Vec<EndpointSlice>, params: &Params) -> PortsOutcome {
    let mut remaining: BTreeMap<_, Endpoint> = BTreeMap::new();
    let mut order = Vec::new();
    for e in &group.endpoints {
        let k = endpoint_key(e);
        if remaining.insert(k.clone(), e.clone()).is_none() {
            order.push(k);
        }
    }
    let mut out = PortsOutcome {
        create: Vec::new(),
        update: Vec::new(),
        delete: Vec::new(),
        kept: 0,
    };
    let mut unchanged: Vec<EndpointSlice> = Vec::new();
    // 1. Keep endpoints where they are, updated in place; drop the gone.
    for mut slice in slices {
        let mut changed = !(params.meta_current)(&slice);
        let mut kept = Vec::new();
        for e in &slice.endpoints {
            match remaining.remove(&endpoint_key(e)) {
                Some(want) => {
                    if &want != e {
                        changed = true;
                    }
                    kept.push(want);
                }
                None => changed = true,
            }
        }
        if kept.len() > params.max_endpoints {
            changed = true;
        }
        if !changed {
            unchanged.push(slice);
            continue;
        }
        if kept.is_empty() {
            out.delete.push(slice);
            continue;
        }
        (params.fix_meta)(&mut slice);
        slice.endpoints = kept;
        out.update.push(slice);
    }
    let mut left: Vec<Endpoint> = order.iter().filter_map(|k| remaining.remove(k)).collect();
    // 2. Fill the slices being written anyway, fullest first.
    out.update
        .sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for s in &mut out.update {
        while s.endpoints.len() < params.max_endpoints && !left.is_empty() {
            s.endpoints.push(left.remove(0));
        }
    }
    // 3. The rest goes into one untouched slice with room for all of it...
    if !left.is_empty() {
        unchanged.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
        if let Some(i) = unchanged
            .iter()
            .position(|s| s.endpoints.len() + left.len() <= params.max_endpoints)
        {
            let mut s = unchanged.remove(i);
            s.endpoints.append(&mut left);
            out.update.push(s);
        }
    }
    // 4. ...or into new slices.
    if !left.is_empty() {
        out.create.extend(chunk(&group, left, params));
    }
    out.kept = unchanged.len();
    out
}

/// New slices for `endpoints`, at most `max_endpoints` each.
fn chunk(group: &Group, endpoints: Vec<Endpoint>, params: &Params) -> Vec<EndpointSlice> {
    endpoints
        .chunks(params.max_endpoints.max(1))
        .map(|eps| {
            let mut s = (params.new_slice)(&group.address_type, &group.ports);
            s.endpoints = eps.to_vec();
            s
        })
        .collect()
}

/// Turns a delete and a create of the same address type into an update of
/// the deleted slice (its name reused), as upstream's `finalize` does.
fn finalize(mut plan: Plan) -> Plan {
    let mut creates = std::mem::take(&mut plan.create);
    let mut deletes = Vec::new();
    let mut reused: HashSet<usize> = HashSet::new();
    for old in std::mem::take(&mut plan.delete) {
        let pos = creates
            .iter()
            .enumerate()
            .position(|(i, c)| !reused.contains(&i) && c.address_type == old.address_type);
        match pos {
            Some(i) => {
                reused.insert(i);
                let c = &mut creates[i];
                c.metadata.name = old.metadata.name.clone();
                c.metadata.generate_name = None;
                c.metadata.resource_version = old.metadata.resource_version.clone();
                c.metadata.uid = old.metadata.uid.clone();
            }
            None => deletes.push(old),
        }
    }
    for (i, c) in creates.into_iter().enumerate() {
        if reused.contains(&i) {
            plan.update.push(c);
        } else {
            plan.create.push(c);
        }
    }
    plan.delete = deletes;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::EndpointConditions;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ep(i: usize, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![format!("10.42.{}.{}", i / 250, i % 250)],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(format!("p{i}")),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn http(port: i32) -> Vec<EndpointPort> {
        vec![EndpointPort {
            name: Some("http".into()),
            port: Some(port),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]
    }

    fn new_slice(at: &str, ports: &[EndpointPort]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some("web-".into()),
                ..Default::default()
            },
            address_type: at.into(),
            ports: (!ports.is_empty()).then(|| ports.to_vec()),
            endpoints: Vec::new(),
        }
    }

    fn check(
        desired: Vec<(Vec<EndpointPort>, Vec<Endpoint>)>,
        existing: Vec<EndpointSlice>,
    ) -> Plan {
        let mut groups = BTreeMap::new();
        for (mut ports, endpoints) in desired {
            let key = ports_key("IPv4", &mut ports);
            groups.insert(
                key,
                Group {
                    address_type: "IPv4".into(),
                    ports,
                    endpoints,
                },
            );
        }
        let params = Params {
            max_endpoints: 100,
            new_slice: &new_slice,
            meta_current: &|_| true,
            fix_meta: &|_| {},
            placeholder: Some("IPv4"),
        };
        reconcile(groups, existing, &params)
    }

    fn named(name: &str, ports: Vec<EndpointPort>, endpoints: Vec<Endpoint>) -> EndpointSlice {
        let mut s = new_slice("IPv4", &ports);
        s.metadata.name = Some(name.into());
        s.metadata.generate_name = None;
        s.endpoints = endpoints;
        s
    }

    fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
        slices.iter().map(|s| s.endpoints.len()).collect()
    }

    #[test]
    fn at_most_100_endpoints_per_slice() {
        let eps: Vec<Endpoint> = (0..250).map(|i| ep(i, true)).collect();
        let plan = check(vec![(http(80), eps)], vec![]);
        assert_eq!(sizes(&plan.create), vec![100, 100, 50]);
        assert!(plan.update.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn unchanged_slices_are_left_alone() {
        let eps: Vec<Endpoint> = (0..3).map(|i| ep(i, true)).collect();
        let plan = check(
            vec![(http(80), eps.clone())],
            vec![named("web-a", http(80), eps)],
        );
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_changed_endpoint_is_updated_in_place_and_new_ones_fill_it() {
        let mut eps: Vec<Endpoint> = (0..3).map(|i| ep(i, true)).collect();
        let existing = vec![named("web-a", http(80), eps.clone())];
        eps[1] = ep(1, false);
        eps.push(ep(3, true));
        let plan = check(vec![(http(80), eps)], existing);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        let s = &plan.update[0];
        assert_eq!(s.metadata.name.as_deref(), Some("web-a"));
        assert_eq!(s.endpoints.len(), 4);
        assert_eq!(
            s.endpoints[1].conditions.as_ref().unwrap().ready,
            Some(false)
        );
    }

    #[test]
    fn new_endpoints_go_into_an_untouched_slice_with_room() {
        let full: Vec<Endpoint> = (0..100).map(|i| ep(i, true)).collect();
        let some: Vec<Endpoint> = (100..150).map(|i| ep(i, true)).collect();
        let existing = vec![
            named("web-full", http(80), full.clone()),
            named("web-some", http(80), some.clone()),
        ];
        let mut all = full;
        all.extend(some);
        all.push(ep(150, true));
        let plan = check(vec![(http(80), all)], existing);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-some"));
        assert_eq!(plan.update[0].endpoints.len(), 51);
    }

    #[test]
    fn pods_resolving_ports_differently_get_their_own_slices() {
        let plan = check(
            vec![
                (http(8080), vec![ep(0, true)]),
                (http(8081), vec![ep(1, true)]),
            ],
            vec![],
        );
        assert_eq!(plan.create.len(), 2);
        let ports: Vec<i32> = plan
            .create
            .iter()
            .map(|s| s.ports.as_ref().unwrap()[0].port.unwrap())
            .collect();
        assert_eq!(ports, vec![8080, 8081]);
    }

    #[test]
    fn changed_ports_reuse_the_old_slice_name() {
        let existing = vec![named("web-a", http(80), vec![ep(0, true)])];
        let plan = check(vec![(http(8080), vec![ep(0, true)])], existing);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-a"));
        assert_eq!(plan.update[0].ports.as_ref().unwrap()[0].port, Some(8080));
    }

    #[test]
    fn no_endpoints_leaves_one_placeholder() {
        let plan = check(vec![], vec![]);
        assert_eq!(plan.create.len(), 1);
        assert!(plan.create[0].endpoints.is_empty() && plan.create[0].ports.is_none());
        // The last endpoint going turns its slice into the placeholder.
        let existing = vec![named("web-a", http(80), vec![ep(0, true)])];
        let plan = check(vec![], existing);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert!(plan.update[0].endpoints.is_empty() && plan.update[0].ports.is_none());
        // And an existing placeholder stays as it is.
        let existing = vec![named("web-a", vec![], vec![])];
        assert!(check(vec![], existing).is_empty());
    }

    #[test]
    fn emptied_slices_are_deleted_when_others_remain() {
        let existing = vec![
            named("web-a", http(80), vec![ep(0, true)]),
            named("web-b", http(80), vec![ep(1, true)]),
        ];
        let plan = check(vec![(http(80), vec![ep(1, true)])], existing);
        assert!(plan.create.is_empty() && plan.update.is_empty());
        assert_eq!(plan.delete.len(), 1);
        assert_eq!(plan.delete[0].metadata.name.as_deref(), Some("web-a"));
    }
}

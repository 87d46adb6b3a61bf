//! Answers for the cluster zone and the reverse zones, as CoreDNS's
//! `kubernetes` plugin gives them in k3s' default Corefile:
//!
//! ```text
//! kubernetes cluster.local in-addr.arpa ip6.arpa {
//!   pods insecure
//!   fallthrough in-addr.arpa ip6.arpa
//! }
//! ```
//!
//! The shape follows the plugin so that answers match it case by case: a
//! name is parsed into a request (`parse_request`), the request is looked up
//! into found entries (`services`), and each query type turns entries into
//! records. A name that is not found is NXDOMAIN in the cluster zone and goes
//! on to the upstreams in the reverse zones (the `fallthrough`). Pure: no I/O.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::cluster::{ServiceKind, State};

/// What `dns-version.<zone>` TXT answers (the DNS schema version of the
/// Kubernetes DNS specification).
pub const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// CoreDNS gives the `dns-version` record a TTL of its own.
const DNS_VERSION_TTL: u32 = 28800;
/// Longest CNAME chain followed inside the zone (CoreDNS's `maxCnameChainLength`).
const MAX_CNAME_CHAIN: usize = 10;

const REVERSE_ZONES: [&str; 2] = ["in-addr.arpa", "ip6.arpa"];

/// The zone answers.
pub(crate) struct Kubernetes {
    /// The cluster domain, lowercase, without a trailing dot.
    domain: String,
    domain_labels: Vec<String>,
    ttl: u32,
    /// The addresses the server listens on that others can reach: the
    /// `ns.dns.<zone>` records, or the Service whose endpoint they are.
    local_ips: Vec<IpAddr>,
}

/// What to do with a query.
pub(crate) enum Outcome {
    Reply(Reply),
    /// Not this server's to answer: send it to the upstreams.
    Forward,
}

/// An authoritative reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// An ExternalName outside the zone: on a successful upstream lookup
    /// the answers become `prefix` + the upstream's answers and the SOA
    /// goes; if the lookup fails the reply stays NODATA.
    pub chase: Option<Chase>,
}

#[derive(Debug)]
pub(crate) struct Chase {
    /// The CNAME chain down to `target`.
    pub prefix: Vec<Record>,
    pub target: Name,
    pub qtype: RecordType,
}

/// The plugin's "name error": NXDOMAIN, or fall through in reverse zones.
#[derive(Debug)]
struct NameError;

/// One thing a name stands for (CoreDNS's `msg.Service`).
#[derive(Debug)]
struct Found {
    /// The domain the entry is named by (SRV targets, NS names), no trailing dot.
    key: String,
    host: Host,
    port: i32,
}

#[derive(Debug)]
enum Host {
    Ip(IpAddr),
    /// A CNAME target (ExternalName), no trailing dot.
    Name(String),
}

/// A parsed query name (CoreDNS's `recordRequest`).
#[derive(Debug, Default)]
struct RecordRequest<'a> {
    port: &'a str,
    protocol: &'a str,
    endpoint: &'a str,
    service: &'a str,
    namespace: &'a str,
    pod_or_svc: &'a str,
}

/// A question within one of the zones.
struct Question<'a> {
    qname: &'a Name,
    qtype: RecordType,
    /// Every label of the name, lowercase.
    labels: Vec<String>,
    zone_labels: usize,
    /// The zone as the query spelled it, without a trailing dot.
    zone: String,
    reverse: bool,
}

impl Question<'_> {
    /// The labels below the zone.
    fn relative(&self) -> &[String] {
        &self.labels[..self.labels.len() - self.zone_labels]
    }

    fn is_apex(&self) -> bool {
        self.labels.len() == self.zone_labels
    }

    fn name_is(&self, other: &str) -> bool {
        self.labels.join(".") == other.to_ascii_lowercase()
    }
}

fn labels_lower(name: &Name) -> Vec<String> {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect()
}

fn name(domain: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))).ok()
}

fn strip_underscore(s: &str) -> &str {
    s.strip_prefix('_').unwrap_or(s)
}

fn match_port_and_protocol(port: &str, name: &str, protocol: &str, proto: &str) -> bool {
    (port.is_empty() || port.eq_ignore_ascii_case(name))
        && (protocol.is_empty() || protocol.eq_ignore_ascii_case(proto))
}

/// `<svc>.<ns>.svc.cluster.local` → (service, namespace, ...): the labels
/// are read from the right; two labels before the service are port and
/// protocol (`_http._tcp`), one is an endpoint's hostname.
fn parse_request(rel: &[String]) -> Result<RecordRequest<'_>, NameError> {
    let mut r = RecordRequest::default();
    if rel.is_empty() || (rel.len() == 1 && (rel[0] == "svc" || rel[0] == "pod")) {
        return Ok(r);
    }
    let n = rel.len();
    r.pod_or_svc = &rel[n - 1];
    if r.pod_or_svc != "pod" && r.pod_or_svc != "svc" {
        return Err(NameError);
    }
    if n < 2 {
        return Ok(r);
    }
    r.namespace = &rel[n - 2];
    if n < 3 {
        return Ok(r);
    }
    r.service = &rel[n - 3];
    match n - 3 {
        0 => {}
        1 => r.endpoint = &rel[0],
        2 => {
            r.port = strip_underscore(&rel[0]);
            r.protocol = strip_underscore(&rel[1]);
        }
        _ => return Err(NameError),
    }
    Ok(r)
}

/// The label an endpoint is known by: its hostname, or its address with
/// dashes (`10-42-0-5`), as CoreDNS names endpoints without one.
pub(crate) fn endpoint_hostname(hostname: Option<&str>, ip: &IpAddr) -> String {
    if let Some(h) = hostname {
        return h.to_string();
    }
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let dashed = v6.to_string().replace(':', "-");
            if dashed.ends_with('-') {
                dashed + "0"
            } else {
                dashed
            }
        }
    }
}

/// The address a reverse name stands for, if it is a full one.
fn reverse_ip(labels: &[String]) -> Option<IpAddr> {
    let n = labels.len();
    if n == 6 && labels[4] == "in-addr" && labels[5] == "arpa" {
        let mut octets = [0u8; 4];
        for (i, l) in labels[..4].iter().rev().enumerate() {
            octets[i] = l.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if n == 34 && labels[32] == "ip6" && labels[33] == "arpa" {
        let mut v: u128 = 0;
        for l in labels[..32].iter().rev() {
            if l.len() != 1 {
                return None;
            }
            v = (v << 4) | u128::from_str_radix(l, 16).ok()?;
        }
        return Some(IpAddr::V6(Ipv6Addr::from(v)));
    }
    None
}

impl Kubernetes {
    pub fn new(domain: &str, ttl: u32, local_ips: Vec<IpAddr>) -> Kubernetes {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        Kubernetes {
            domain_labels: domain.split('.').map(str::to_string).collect(),
            domain,
            ttl,
            local_ips,
        }
    }

    fn question<'a>(&self, qname: &'a Name, qtype: RecordType) -> Option<Question<'a>> {
        let labels = labels_lower(qname);
        // The longest zone that holds the name.
        let mut best: Option<(usize, bool)> = None;
        let zones = std::iter::once((self.domain_labels.clone(), false)).chain(
            REVERSE_ZONES
                .iter()
                .map(|z| (z.split('.').map(str::to_string).collect::<Vec<_>>(), true)),
        );
        for (zone, reverse) in zones {
            if labels.len() >= zone.len()
                && labels[labels.len() - zone.len()..] == zone[..]
                && best.is_none_or(|(n, _)| zone.len() > n)
            {
                best = Some((zone.len(), reverse));
            }
        }
        let (zone_labels, reverse) = best?;
        let zone = qname.trim_to(zone_labels).to_ascii();
        Some(Question {
            qname,
            qtype,
            labels,
            zone_labels,
            zone: zone.trim_end_matches('.').to_string(),
            reverse,
        })
    }

    fn record(&self, owner: &Name, data: RData) -> Record {
        Record::from_rdata(owner.clone(), self.ttl, data)
    }

    fn address_record(&self, owner: &Name, ip: IpAddr) -> Record {
        match ip {
            IpAddr::V4(v4) => self.record(owner, RData::A(A(v4))),
            IpAddr::V6(v6) => self.record(owner, RData::AAAA(AAAA(v6))),
        }
    }

    fn soa(&self, q: &Question, serial: u32) -> Option<Record> {
        let zone = q.qname.trim_to(q.zone_labels);
        let soa = SOA::new(
            name(&format!("ns.dns.{}", q.zone))?,
            name(&format!("hostmaster.{}", q.zone))?,
            serial,
            7200,
            1800,
            86400,
            self.ttl,
        );
        Some(Record::from_rdata(zone, self.ttl.min(300), RData::SOA(soa)))
    }

    /// Answers `qname`/`qtype` from `st`.
    pub fn resolve(
        &self,
        st: &State,
        synced: bool,
        serial: u32,
        qname: &Name,
        qtype: RecordType,
    ) -> Outcome {
        let Some(q) = self.question(qname, qtype) else {
            return Outcome::Forward;
        };
        let mut reply = Reply {
            rcode: ResponseCode::NoError,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            chase: None,
        };
        let result = match qtype {
            RecordType::A | RecordType::AAAA => self.address(st, &q, 0).map(|(r, c)| {
                reply.answers = r;
                reply.chase = c;
            }),
            RecordType::TXT => self.txt(st, &q).map(|r| reply.answers = r),
            RecordType::CNAME => self.cname(st, &q).map(|r| reply.answers = r),
            RecordType::PTR => self.ptr(st, &q).map(|r| reply.answers = r),
            RecordType::SRV => self.srv(st, &q).map(|(r, e)| {
                reply.answers = r;
                reply.additionals = e;
            }),
            RecordType::SOA => {
                if q.is_apex() {
                    reply.answers.extend(self.soa(&q, serial));
                }
                Ok(())
            }
            RecordType::AXFR | RecordType::IXFR => {
                reply.rcode = ResponseCode::Refused;
                return Outcome::Reply(reply);
            }
            RecordType::NS if q.is_apex() => {
                let (r, e) = self.ns(st, &q);
                reply.answers = r;
                reply.additionals = e;
                Ok(())
            }
            // Any other type: whether the name exists, as an A lookup says.
            _ => self.services(st, &q, RecordType::A).map(|_| ()),
        };
        match result {
            Err(NameError) if q.reverse => return Outcome::Forward,
            Err(NameError) => {
                reply.rcode = if synced {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::ServFail
                };
                reply.answers.clear();
                reply.additionals.clear();
                reply.chase = None;
                reply.authorities.extend(self.soa(&q, serial));
            }
            Ok(()) if reply.answers.is_empty() => {
                reply.authorities.extend(self.soa(&q, serial));
            }
            Ok(()) => {}
        }
        Outcome::Reply(reply)
    }

    /// What the name stands for (CoreDNS's `Services`).
    fn services(
        &self,
        st: &State,
        q: &Question,
        qtype: RecordType,
    ) -> Result<Vec<Found>, NameError> {
        if qtype == RecordType::NS {
            return Ok(self.ns_addrs(st, &q.zone));
        }
        if q.name_is(&format!("ns.dns.{}", q.zone)) {
            let mut found = self.ns_addrs(st, &q.zone);
            found.retain(|f| match f.host {
                Host::Ip(IpAddr::V4(_)) => qtype == RecordType::A,
                Host::Ip(IpAddr::V6(_)) => qtype == RecordType::AAAA,
                Host::Name(_) => false,
            });
            return Ok(found);
        }
        let mut found = self.records(st, q)?;
        if qtype == RecordType::SRV {
            found.retain(|f| matches!(f.host, Host::Ip(_)));
        }
        Ok(found)
    }

    /// The name server names and addresses: the Service whose endpoint this
    /// server's address is (`kube-dns`), else `ns.dns.<zone>` itself.
    fn ns_addrs(&self, st: &State, zone: &str) -> Vec<Found> {
        let mut found = Vec::new();
        let mut endpoint_seen = false;
        for local in &self.local_ips {
            for slice in st.slices_with_ip(local) {
                endpoint_seen = true;
                let Some(svc) = st.service(&slice.namespace, &slice.service) else {
                    continue;
                };
                let svc_name = format!("{}.{}.svc.{zone}", svc.name, svc.namespace);
                match &svc.kind {
                    ServiceKind::Headless => {
                        for e in slice.usable(svc.publish_not_ready) {
                            for ip in &e.addresses {
                                found.push(Found {
                                    key: format!(
                                        "{}.{svc_name}",
                                        endpoint_hostname(e.hostname.as_deref(), ip)
                                    ),
                                    host: Host::Ip(*ip),
                                    port: -1,
                                });
                            }
                        }
                    }
                    ServiceKind::ClusterIp(ips) => {
                        for ip in ips {
                            found.push(Found {
                                key: svc_name.clone(),
                                host: Host::Ip(*ip),
                                port: -1,
                            });
                        }
                    }
                    ServiceKind::ExternalName(_) => {}
                }
            }
        }
        if !endpoint_seen {
            for ip in &self.local_ips {
                found.push(Found {
                    key: format!("ns.dns.{zone}"),
                    host: Host::Ip(*ip),
                    port: -1,
                });
            }
        }
        found
    }

    /// CoreDNS's `Records`: the services or pod a name in the zone is.
    fn records(&self, st: &State, q: &Question) -> Result<Vec<Found>, NameError> {
        let r = parse_request(q.relative())?;
        if r.pod_or_svc.is_empty() {
            return Ok(Vec::new());
        }
        if q.reverse || !st.namespace_exists(r.namespace) {
            return Err(NameError);
        }
        if r.pod_or_svc == "pod" {
            return self.find_pods(&r, q);
        }
        self.find_services(st, &r, q)
    }

    /// `pods insecure`: `1-2-3-4.<ns>.pod.<zone>` is 1.2.3.4 whether or not
    /// such a pod exists, in any existing namespace.
    fn find_pods(&self, r: &RecordRequest, q: &Question) -> Result<Vec<Found>, NameError> {
        let pod = r.service;
        if pod.is_empty() {
            return Ok(Vec::new());
        }
        let text = if pod.matches('-').count() == 3 && !pod.contains("--") {
            pod.replace('-', ".")
        } else {
            pod.replace('-', ":")
        };
        let ip: IpAddr = text.parse().map_err(|_| NameError)?;
        Ok(vec![Found {
            key: format!("{pod}.{}.pod.{}", r.namespace, q.zone),
            host: Host::Ip(ip),
            port: -1,
        }])
    }

    fn find_services(
        &self,
        st: &State,
        r: &RecordRequest,
        q: &Question,
    ) -> Result<Vec<Found>, NameError> {
        if r.service.is_empty() {
            return Ok(Vec::new());
        }
        let svc = st.service(r.namespace, r.service).ok_or(NameError)?;
        let svc_domain = format!("{}.{}.svc.{}", svc.name, svc.namespace, q.zone);
        let mut found = Vec::new();
        let mut matched = false;
        match &svc.kind {
            ServiceKind::ExternalName(target) => {
                if !r.endpoint.is_empty() || !r.port.is_empty() || !r.protocol.is_empty() {
                    return Err(NameError);
                }
                // An IP in externalName is not a name to alias: no record.
                if target.is_empty() || target.parse::<IpAddr>().is_ok() {
                    return Err(NameError);
                }
                found.push(Found {
                    key: svc_domain,
                    host: Host::Name(target.trim_end_matches('.').to_string()),
                    port: -1,
                });
                return Ok(found);
            }
            kind if *kind == ServiceKind::Headless || !r.endpoint.is_empty() => {
                for slice in st.slices_of(&svc.namespace, &svc.name) {
                    for e in slice.usable(svc.publish_not_ready) {
                        for ip in &e.addresses {
                            let hostname = endpoint_hostname(e.hostname.as_deref(), ip);
                            if !r.endpoint.is_empty() && !r.endpoint.eq_ignore_ascii_case(&hostname)
                            {
                                continue;
                            }
                            for p in &slice.ports {
                                if !match_port_and_protocol(
                                    r.port,
                                    &p.name,
                                    r.protocol,
                                    &p.protocol,
                                ) {
                                    continue;
                                }
                                matched = true;
                                found.push(Found {
                                    key: format!("{hostname}.{svc_domain}"),
                                    host: Host::Ip(*ip),
                                    port: p.port,
                                });
                            }
                        }
                    }
                }
            }
            ServiceKind::ClusterIp(ips) => {
                for p in &svc.ports {
                    if !match_port_and_protocol(r.port, &p.name, r.protocol, &p.protocol) {
                        continue;
                    }
                    matched = true;
                    for ip in ips {
                        found.push(Found {
                            key: svc_domain.clone(),
                            host: Host::Ip(*ip),
                            port: p.port,
                        });
                    }
                }
            }
            ServiceKind::Headless => {}
        }
        if matched {
            Ok(found)
        } else {
            Err(NameError)
        }
    }

    /// A and AAAA, following ExternalName CNAMEs within the zone and
    /// leaving those outside to the caller ([`Chase`]).
    fn address(
        &self,
        st: &State,
        q: &Question,
        depth: usize,
    ) -> Result<(Vec<Record>, Option<Chase>), NameError> {
        let found = self.services(st, q, q.qtype)?;
        let mut records = Vec::new();
        let mut chase = None;
        let mut seen = HashSet::new();
        for f in found {
            match f.host {
                Host::Name(target) => {
                    let Some(target) = name(&target) else {
                        continue;
                    };
                    if labels_lower(&target) == q.labels || depth >= MAX_CNAME_CHAIN {
                        continue;
                    }
                    let cname = self.record(q.qname, RData::CNAME(CNAME(target.clone())));
                    match self.question(&target, q.qtype) {
                        Some(q2) if !q2.reverse && q2.zone_labels == q.zone_labels => {
                            if let Ok((next, next_chase)) = self.address(st, &q2, depth + 1) {
                                if !next.is_empty() {
                                    records.push(cname);
                                    records.extend(next);
                                } else if let Some(mut c) = next_chase {
                                    c.prefix.insert(0, cname);
                                    chase = Some(c);
                                }
                            }
                        }
                        _ => {
                            chase = Some(Chase {
                                prefix: vec![cname],
                                target,
                                qtype: q.qtype,
                            })
                        }
                    }
                }
                Host::Ip(ip) => {
                    let wanted = match ip {
                        IpAddr::V4(_) => q.qtype == RecordType::A,
                        IpAddr::V6(_) => q.qtype == RecordType::AAAA,
                    };
                    if wanted && seen.insert(ip) {
                        records.push(self.address_record(q.qname, ip));
                    }
                }
            }
        }
        Ok((records, chase))
    }

    fn txt(&self, st: &State, q: &Question) -> Result<Vec<Record>, NameError> {
        if q.relative() == ["dns-version"] {
            let txt = TXT::new(vec![DNS_SCHEMA_VERSION.to_string()]);
            return Ok(vec![Record::from_rdata(
                q.qname.clone(),
                DNS_VERSION_TTL,
                RData::TXT(txt),
            )]);
        }
        // A name with records has no TXT (NODATA); any other is NXDOMAIN,
        // namespaces included, as CoreDNS answers.
        match self.records(st, q) {
            Ok(found) if !found.is_empty() => Ok(Vec::new()),
            _ => Err(NameError),
        }
    }

    fn cname(&self, st: &State, q: &Question) -> Result<Vec<Record>, NameError> {
        let found = self.services(st, q, RecordType::CNAME)?;
        Ok(match found.first() {
            Some(Found {
                host: Host::Name(target),
                ..
            }) => name(target)
                .map(|t| self.record(q.qname, RData::CNAME(CNAME(t))))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        })
    }

    /// SRV records with the target's addresses in the additional section;
    /// weights split 100 evenly over the entries, as CoreDNS does.
    fn srv(&self, st: &State, q: &Question) -> Result<(Vec<Record>, Vec<Record>), NameError> {
        let found = self.services(st, q, RecordType::SRV)?;
        let total = 100.0 * found.len() as f64;
        let weight = ((100.0 / total) * 100.0).floor() as u16;
        let weight = weight.max(1);
        let mut records = Vec::new();
        let mut extra = Vec::new();
        let mut seen_srv = HashSet::new();
        let mut seen_addr = HashSet::new();
        for f in &found {
            if f.port < 0 {
                continue;
            }
            let Host::Ip(ip) = f.host else { continue };
            let Some(target) = name(&f.key) else { continue };
            if seen_srv.insert((f.key.clone(), f.port)) {
                let srv = SRV::new(0, weight, f.port as u16, target.clone());
                records.push(self.record(q.qname, RData::SRV(srv)));
            }
            if seen_addr.insert((f.key.clone(), ip)) {
                extra.push(self.address_record(&target, ip));
            }
        }
        Ok((records, extra))
    }

    /// PTR for service cluster IPs (`<svc>.<ns>.svc.<zone>`) and endpoint
    /// addresses (`<hostname>.<svc>.<ns>.svc.<zone>`).
    fn ptr(&self, st: &State, q: &Question) -> Result<Vec<Record>, NameError> {
        let Some(ip) = reverse_ip(&q.labels) else {
            self.records(st, q)?;
            return Ok(Vec::new());
        };
        let mut targets = Vec::new();
        if let Some(svc) = st.services_with_ip(&ip).first() {
            targets.push(format!(
                "{}.{}.svc.{}",
                svc.name, svc.namespace, self.domain
            ));
        } else {
            for slice in st.slices_with_ip(&ip) {
                let publish = st
                    .service(&slice.namespace, &slice.service)
                    .is_some_and(|s| s.publish_not_ready);
                for e in slice.usable(publish) {
                    if e.addresses.contains(&ip) {
                        targets.push(format!(
                            "{}.{}.{}.svc.{}",
                            endpoint_hostname(e.hostname.as_deref(), &ip),
                            slice.service,
                            slice.namespace,
                            self.domain
                        ));
                    }
                }
            }
        }
        if targets.is_empty() {
            return Err(NameError);
        }
        let mut seen = HashSet::new();
        Ok(targets
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .filter_map(|t| name(&t))
            .map(|t| self.record(q.qname, RData::PTR(PTR(t))))
            .collect())
    }

    fn ns(&self, st: &State, q: &Question) -> (Vec<Record>, Vec<Record>) {
        let mut records = Vec::new();
        let mut extra = Vec::new();
        let mut seen = HashSet::new();
        for f in self.ns_addrs(st, &q.zone) {
            let (Host::Ip(ip), Some(ns)) = (&f.host, name(&f.key)) else {
                continue;
            };
            extra.push(self.address_record(&ns, *ip));
            if seen.insert(f.key.clone()) {
                records.push(self.record(q.qname, RData::NS(NS(ns))));
            }
        }
        (records, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::{Kubernetes, Name, Outcome, Record, RecordType};
    use crate::cluster::Cluster;
    use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{
        Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(ns: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn namespace(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn ports(ports: &[(&str, i32)]) -> Vec<ServicePort> {
        ports
            .iter()
            .map(|(n, p)| ServicePort {
                name: Some(n.to_string()),
                port: *p,
                protocol: Some("TCP".into()),
                ..Default::default()
            })
            .collect()
    }

    fn service(ns: &str, name: &str, ips: &[&str], p: &[(&str, i32)]) -> Service {
        Service {
            metadata: meta(ns, name),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                cluster_ip: ips.first().map(|s| s.to_string()),
                cluster_ips: Some(ips.iter().map(|s| s.to_string()).collect()),
                ports: Some(ports(p)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn external(ns: &str, name: &str, target: &str) -> Service {
        Service {
            metadata: meta(ns, name),
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some(target.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// (addresses, hostname, ready)
    type Ep<'a> = (&'a [&'a str], Option<&'a str>, bool);

    fn slice(ns: &str, name: &str, svc: &str, eps: &[Ep], p: &[(&str, i32)]) -> EndpointSlice {
        let mut m = meta(ns, name);
        m.labels = Some(
            [(
                client::informer::SERVICE_NAME_LABEL.to_string(),
                svc.to_string(),
            )]
            .into(),
        );
        EndpointSlice {
            metadata: m,
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(a, h, r)| Endpoint {
                    addresses: a.iter().map(|s| s.to_string()).collect(),
                    hostname: h.map(str::to_string),
                    conditions: Some(EndpointConditions {
                        ready: Some(*r),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ports: Some(
                p.iter()
                    .map(|(n, port)| EndpointPort {
                        name: Some(n.to_string()),
                        port: Some(*port),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    /// default: web (ClusterIP, http 80 + metrics 9090), dual (dual-stack),
    /// nginx (headless, StatefulSet pods web-0/web-1 ready, web-2 not),
    /// plain (headless, endpoints without hostnames), ext (ExternalName),
    /// alias (ExternalName inside the zone).
    fn cluster() -> Cluster {
        let c = Cluster::new();
        for ns in ["default", "kube-system", "empty"] {
            c.apply_namespace(&namespace(ns));
        }
        c.apply_service(&service(
            "default",
            "web",
            &["10.43.0.20"],
            &[("http", 80), ("metrics", 9090)],
        ));
        c.apply_service(&service(
            "default",
            "dual",
            &["10.43.0.21", "fd00:43::21"],
            &[("http", 80)],
        ));
        c.apply_service(&service("default", "nginx", &["None"], &[("web", 80)]));
        c.apply_endpoint_slice(&slice(
            "default",
            "nginx-abc",
            "nginx",
            &[
                (&["10.42.0.10"], Some("web-0"), true),
                (&["10.42.0.11"], Some("web-1"), true),
                (&["10.42.0.12"], Some("web-2"), false),
            ],
            &[("web", 80)],
        ));
        c.apply_service(&service("default", "plain", &["None"], &[]));
        c.apply_endpoint_slice(&slice(
            "default",
            "plain-1",
            "plain",
            &[(&["10.42.0.20"], None, true)],
            &[],
        ));
        c.apply_endpoint_slice(&slice(
            "default",
            "web-1",
            "web",
            &[(&["10.42.0.30"], None, true)],
            &[("http", 8080)],
        ));
        c.apply_service(&external("default", "ext", "example.com"));
        c.apply_service(&external(
            "default",
            "alias",
            "web.default.svc.cluster.local",
        ));
        c.apply_service(&service(
            "kube-system",
            "kube-dns",
            &["10.43.0.10"],
            &[("dns", 53)],
        ));
        c.apply_endpoint_slice(&slice(
            "kube-system",
            "kube-dns-node",
            "kube-dns",
            &[(&["192.168.5.2"], None, true)],
            &[("dns", 53)],
        ));
        c.set_synced();
        c
    }

    fn render(outcome: Outcome) -> String {
        let r = match outcome {
            Outcome::Forward => return "FORWARD".into(),
            Outcome::Reply(r) => r,
        };
        let mut out = vec![format!("{:?}", r.rcode).to_uppercase()];
        let line = |sec: &str, rec: &Record| {
            format!(
                "{sec} {} {} {} {}",
                rec.name,
                rec.ttl,
                rec.record_type(),
                rec.data
            )
        };
        out.extend(r.answers.iter().map(|x| line("an", x)));
        out.extend(r.authorities.iter().map(|x| {
            // The SOA serial is the time; show the rest.
            let l = line("ns", x);
            if x.record_type() == RecordType::SOA {
                format!("ns {} {} SOA", x.name, x.ttl)
            } else {
                l
            }
        }));
        out.extend(r.additionals.iter().map(|x| line("ad", x)));
        if let Some(c) = r.chase {
            out.extend(c.prefix.iter().map(|x| line("chase", x)));
            out.push(format!("chase {} {}", c.target, c.qtype));
        }
        out.join("\n")
    }

    fn query(c: &Cluster, z: &Kubernetes, qname: &str, qtype: RecordType) -> String {
        let name = Name::from_ascii(qname).unwrap();
        render(z.resolve(&c.read(), c.has_synced(), c.serial(), &name, qtype))
    }

    fn zone() -> Kubernetes {
        Kubernetes::new("cluster.local", 5, vec!["192.168.5.2".parse().unwrap()])
    }

    /// Each case: (name, type, expected rendering).
    fn check(c: &Cluster, z: &Kubernetes, cases: &[(&str, RecordType, &str)]) {
        for (qname, qtype, want) in cases {
            let got = query(c, z, qname, *qtype);
            assert_eq!(got, want.trim(), "{qname} {qtype}");
        }
    }

    const SOA_LOCAL: &str = "ns cluster.local. 5 SOA";
    use RecordType::*;

    #[test]
    fn services() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                (
                    "web.default.svc.cluster.local.",
                    A,
                    "NOERROR\nan web.default.svc.cluster.local. 5 A 10.43.0.20",
                ),
                // An IPv4 service has no AAAA: NODATA.
                (
                    "web.default.svc.cluster.local.",
                    AAAA,
                    &format!("NOERROR\n{SOA_LOCAL}"),
                ),
                (
                    "dual.default.svc.cluster.local.",
                    AAAA,
                    "NOERROR\nan dual.default.svc.cluster.local. 5 AAAA fd00:43::21",
                ),
                (
                    "dual.default.svc.cluster.local.",
                    A,
                    "NOERROR\nan dual.default.svc.cluster.local. 5 A 10.43.0.21",
                ),
                // Names are case-insensitive; the answer keeps the query's spelling.
                (
                    "WEB.Default.SVC.Cluster.Local.",
                    A,
                    "NOERROR\nan WEB.Default.SVC.Cluster.Local. 5 A 10.43.0.20",
                ),
                (
                    "nope.default.svc.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                (
                    "web.nope.svc.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                // A namespace that exists is a name without records.
                (
                    "default.svc.cluster.local.",
                    A,
                    &format!("NOERROR\n{SOA_LOCAL}"),
                ),
                (
                    "nope.svc.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                ("svc.cluster.local.", A, &format!("NOERROR\n{SOA_LOCAL}")),
                ("cluster.local.", A, &format!("NOERROR\n{SOA_LOCAL}")),
                ("foo.cluster.local.", A, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                (
                    "a.b.c.web.default.svc.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                // Other types: NODATA where the name exists.
                (
                    "web.default.svc.cluster.local.",
                    MX,
                    &format!("NOERROR\n{SOA_LOCAL}"),
                ),
                (
                    "nope.default.svc.cluster.local.",
                    HTTPS,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                // An endpoint of a ClusterIP service by its dashed address.
                (
                    "10-42-0-30.web.default.svc.cluster.local.",
                    A,
                    "NOERROR\nan 10-42-0-30.web.default.svc.cluster.local. 5 A 10.42.0.30",
                ),
            ],
        );
    }

    #[test]
    fn headless_and_hostnames() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                // Ready endpoints only.
                ("nginx.default.svc.cluster.local.", A, "NOERROR\nan nginx.default.svc.cluster.local. 5 A 10.42.0.10\nan nginx.default.svc.cluster.local. 5 A 10.42.0.11"),
                ("web-0.nginx.default.svc.cluster.local.", A, "NOERROR\nan web-0.nginx.default.svc.cluster.local. 5 A 10.42.0.10"),
                ("web-2.nginx.default.svc.cluster.local.", A, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                ("plain.default.svc.cluster.local.", A, "NOERROR\nan plain.default.svc.cluster.local. 5 A 10.42.0.20"),
                ("10-42-0-20.plain.default.svc.cluster.local.", A, "NOERROR\nan 10-42-0-20.plain.default.svc.cluster.local. 5 A 10.42.0.20"),
            ],
        );
        // publishNotReadyAddresses: the not-ready pod resolves too.
        let mut svc = service("default", "nginx", &["None"], &[("web", 80)]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        c.apply_service(&svc);
        check(
            &c,
            &zone(),
            &[(
                "web-2.nginx.default.svc.cluster.local.",
                A,
                "NOERROR\nan web-2.nginx.default.svc.cluster.local. 5 A 10.42.0.12",
            )],
        );
        // A headless service without endpoints does not exist, as in CoreDNS.
        c.apply_service(&service("default", "lonely", &["None"], &[]));
        check(
            &c,
            &zone(),
            &[(
                "lonely.default.svc.cluster.local.",
                A,
                &format!("NXDOMAIN\n{SOA_LOCAL}"),
            )],
        );
    }

    #[test]
    fn srv() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                ("_http._tcp.web.default.svc.cluster.local.", SRV, "NOERROR\nan _http._tcp.web.default.svc.cluster.local. 5 SRV 0 100 80 web.default.svc.cluster.local.\nad web.default.svc.cluster.local. 5 A 10.43.0.20"),
                ("web.default.svc.cluster.local.", SRV, "NOERROR\nan web.default.svc.cluster.local. 5 SRV 0 50 80 web.default.svc.cluster.local.\nan web.default.svc.cluster.local. 5 SRV 0 50 9090 web.default.svc.cluster.local.\nad web.default.svc.cluster.local. 5 A 10.43.0.20"),
                ("_web._tcp.nginx.default.svc.cluster.local.", SRV, "NOERROR\nan _web._tcp.nginx.default.svc.cluster.local. 5 SRV 0 50 80 web-0.nginx.default.svc.cluster.local.\nan _web._tcp.nginx.default.svc.cluster.local. 5 SRV 0 50 80 web-1.nginx.default.svc.cluster.local.\nad web-0.nginx.default.svc.cluster.local. 5 A 10.42.0.10\nad web-1.nginx.default.svc.cluster.local. 5 A 10.42.0.11"),
                ("_nope._tcp.web.default.svc.cluster.local.", SRV, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                ("_http._udp.web.default.svc.cluster.local.", SRV, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                // A port-less headless service: the name exists, no SRV.
                ("plain.default.svc.cluster.local.", SRV, &format!("NOERROR\n{SOA_LOCAL}")),
                ("ext.default.svc.cluster.local.", SRV, &format!("NOERROR\n{SOA_LOCAL}")),
            ],
        );
    }

    #[test]
    fn external_name() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                // Outside the zone: the server asks the upstreams for the target.
                ("ext.default.svc.cluster.local.", A, &format!("NOERROR\n{SOA_LOCAL}\nchase ext.default.svc.cluster.local. 5 CNAME example.com.\nchase example.com. A")),
                ("ext.default.svc.cluster.local.", CNAME, "NOERROR\nan ext.default.svc.cluster.local. 5 CNAME example.com."),
                // Inside the zone: followed here.
                ("alias.default.svc.cluster.local.", A, "NOERROR\nan alias.default.svc.cluster.local. 5 CNAME web.default.svc.cluster.local.\nan web.default.svc.cluster.local. 5 A 10.43.0.20"),
                ("_http._tcp.ext.default.svc.cluster.local.", SRV, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                ("web.default.svc.cluster.local.", CNAME, &format!("NOERROR\n{SOA_LOCAL}")),
            ],
        );
    }

    #[test]
    fn reverse() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                ("20.0.43.10.in-addr.arpa.", PTR, "NOERROR\nan 20.0.43.10.in-addr.arpa. 5 PTR web.default.svc.cluster.local."),
                ("10.0.42.10.in-addr.arpa.", PTR, "NOERROR\nan 10.0.42.10.in-addr.arpa. 5 PTR web-0.nginx.default.svc.cluster.local."),
                ("20.0.42.10.in-addr.arpa.", PTR, "NOERROR\nan 20.0.42.10.in-addr.arpa. 5 PTR 10-42-0-20.plain.default.svc.cluster.local."),
                ("1.2.0.192.in-addr.arpa.", PTR, "FORWARD"),
                // Not ready: not served.
                ("12.0.42.10.in-addr.arpa.", PTR, "FORWARD"),
                ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.d.f.ip6.arpa.", PTR, "FORWARD"),
                ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", PTR, "FORWARD"),
                ("20.0.43.10.in-addr.arpa.", A, "FORWARD"),
            ],
        );
        let ip6 = "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.";
        check(
            &c,
            &zone(),
            &[(
                ip6,
                PTR,
                &format!("NOERROR\nan {ip6} 5 PTR dual.default.svc.cluster.local."),
            )],
        );
    }

    #[test]
    fn pods_insecure() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                (
                    "10-42-0-99.default.pod.cluster.local.",
                    A,
                    "NOERROR\nan 10-42-0-99.default.pod.cluster.local. 5 A 10.42.0.99",
                ),
                (
                    "fd00-42--5.default.pod.cluster.local.",
                    AAAA,
                    "NOERROR\nan fd00-42--5.default.pod.cluster.local. 5 AAAA fd00:42::5",
                ),
                (
                    "10-42-0-99.nope.pod.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                (
                    "not-an-ip.default.pod.cluster.local.",
                    A,
                    &format!("NXDOMAIN\n{SOA_LOCAL}"),
                ),
                (
                    "default.pod.cluster.local.",
                    A,
                    &format!("NOERROR\n{SOA_LOCAL}"),
                ),
            ],
        );
    }

    #[test]
    fn zone_records() {
        let c = cluster();
        check(
            &c,
            &zone(),
            &[
                ("dns-version.cluster.local.", TXT, "NOERROR\nan dns-version.cluster.local. 28800 TXT 1.1.0"),
                ("web.default.svc.cluster.local.", TXT, &format!("NOERROR\n{SOA_LOCAL}")),
                ("default.svc.cluster.local.", TXT, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                // The server's own address is kube-dns' endpoint.
                ("cluster.local.", NS, "NOERROR\nan cluster.local. 5 NS kube-dns.kube-system.svc.cluster.local.\nad kube-dns.kube-system.svc.cluster.local. 5 A 10.43.0.10"),
                ("ns.dns.cluster.local.", A, "NOERROR\nan ns.dns.cluster.local. 5 A 10.43.0.10"),
                ("cluster.local.", AXFR, "REFUSED"),
                ("example.com.", A, "FORWARD"),
                ("local.", A, "FORWARD"),
            ],
        );
        let soa = query(&c, &zone(), "cluster.local.", SOA);
        assert!(
            soa.starts_with(
                "NOERROR\nan cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. "
            ),
            "{soa}"
        );
        assert!(soa.ends_with(" 7200 1800 86400 5"), "{soa}");
    }

    #[test]
    fn cluster_domain() {
        let c = cluster();
        let z = Kubernetes::new("corp.internal", 30, vec![]);
        check(
            &c,
            &z,
            &[
                (
                    "web.default.svc.corp.internal.",
                    A,
                    "NOERROR\nan web.default.svc.corp.internal. 30 A 10.43.0.20",
                ),
                ("web.default.svc.cluster.local.", A, "FORWARD"),
                (
                    "20.0.43.10.in-addr.arpa.",
                    PTR,
                    "NOERROR\nan 20.0.43.10.in-addr.arpa. 30 PTR web.default.svc.corp.internal.",
                ),
                (
                    "nope.corp.internal.",
                    A,
                    "NXDOMAIN\nns corp.internal. 30 SOA",
                ),
            ],
        );
    }

    #[test]
    fn follows_changes() {
        let c = cluster();
        c.delete_service(&service("default", "web", &["10.43.0.20"], &[]));
        c.apply_endpoint_slice(&slice(
            "default",
            "nginx-abc",
            "nginx",
            &[
                (&["10.42.0.10"], Some("web-0"), false),
                (&["10.42.0.11"], Some("web-1"), true),
            ],
            &[("web", 80)],
        ));
        c.apply_endpoint_slice(&slice(
            "default",
            "nginx-def",
            "nginx",
            &[(&["10.42.1.7"], Some("web-3"), true)],
            &[("web", 80)],
        ));
        c.delete_namespace(&namespace("empty"));
        check(
            &c,
            &zone(),
            &[
                ("web.default.svc.cluster.local.", A, &format!("NXDOMAIN\n{SOA_LOCAL}")),
                ("20.0.43.10.in-addr.arpa.", PTR, "FORWARD"),
                ("nginx.default.svc.cluster.local.", A, "NOERROR\nan nginx.default.svc.cluster.local. 5 A 10.42.0.11\nan nginx.default.svc.cluster.local. 5 A 10.42.1.7"),
                ("empty.svc.cluster.local.", A, &format!("NXDOMAIN\n{SOA_LOCAL}")),
            ],
        );
    }

    #[test]
    fn unsynced_misses_are_servfail() {
        let c = Cluster::new();
        check(
            &c,
            &zone(),
            &[(
                "web.default.svc.cluster.local.",
                A,
                &format!("SERVFAIL\n{SOA_LOCAL}"),
            )],
        );
    }

    /// The answer logic alone, without sockets: how much of a query's cost
    /// is the lookup. `cargo test -p dns --release --lib -- --ignored --nocapture resolve_cost`
    #[test]
    #[ignore]
    fn resolve_cost() {
        let c = Cluster::new();
        c.apply_namespace(&namespace("bench"));
        for i in 0..1000 {
            let ip = format!("10.43.{}.{}", i / 250 + 1, i % 250 + 1);
            c.apply_service(&service(
                "bench",
                &format!("svc{i}"),
                &[&ip],
                &[("http", 80)],
            ));
        }
        c.set_synced();
        let z = zone();
        let names: Vec<Name> = (0..1000)
            .map(|i| Name::from_ascii(format!("svc{i}.bench.svc.cluster.local.")).unwrap())
            .collect();
        let n = 200_000;
        let t = std::time::Instant::now();
        for i in 0..n {
            let st = c.read();
            let out = z.resolve(&st, true, 0, &names[i % names.len()], A);
            assert!(matches!(out, Outcome::Reply(ref r) if r.answers.len() == 1));
        }
        println!(
            "resolve: {:?} per query over 1,000 services",
            t.elapsed() / n as u32
        );
    }
}

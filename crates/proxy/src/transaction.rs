//! nft scripts: the full sync that replaces the whole table, and the partial
//! sync that rewrites only what changed for some Services. Pure: the
//! proxier runs the text with `nft -f -`, one atomic transaction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::rules::{Map, ServiceRules};

/// A partial sync cannot express the change (an affinity set's declaration
/// differs, which nft cannot alter in place): do a full sync.
#[derive(Debug, PartialEq, Eq)]
pub struct NeedsFullSync;

/// Replaces table `table` atomically: creating it first makes the delete
/// valid when it does not exist yet. Affinity state starts empty.
pub fn full<'a>(
    table: &str,
    skeleton: &str,
    services: impl IntoIterator<Item = &'a ServiceRules>,
) -> String {
    let services: Vec<&ServiceRules> = services.into_iter().collect();
    let mut s = String::with_capacity(256 * services.len() + skeleton.len() + 256);
    let _ = writeln!(s, "add table ip {table}");
    let _ = writeln!(s, "delete table ip {table}");
    s.push_str(skeleton);
    for svc in &services {
        for (name, decl) in &svc.sets {
            let _ = writeln!(s, "add set ip {table} {name} {{ {decl} }}");
        }
    }
    // Chains first, so rules may jump to any of them.
    for svc in &services {
        for name in svc.chains.keys() {
            let _ = writeln!(s, "add chain ip {table} {name}");
        }
    }
    for svc in &services {
        for (name, rules) in &svc.chains {
            for rule in rules {
                let _ = writeln!(s, "add rule ip {table} {name} {rule}");
            }
        }
    }
    let mut by_map: BTreeMap<Map, Vec<String>> = BTreeMap::new();
    for svc in &services {
        for ((map, key), e) in &svc.elements {
            by_map
                .entry(*map)
                .or_default()
                .push(format!("{key} : {}", e.value));
        }
    }
    for (map, elements) in by_map {
        // One command per batch keeps lines short enough for nft's parser.
        for chunk in elements.chunks(1000) {
            let _ = writeln!(
                s,
                "add element ip {table} {} {{ {} }}",
                map.name(),
                chunk.join(", ")
            );
        }
    }
    s
}

/// The commands that turn `old` into `new` for each Service in `changes`,
/// ordered so every reference stays valid inside the transaction: elements
/// that go away first, then chains emptied, chains and sets deleted, sets
/// and chains created, rules written, elements added.
pub fn partial(
    table: &str,
    changes: &[(&ServiceRules, &ServiceRules)],
) -> Result<String, NeedsFullSync> {
    let mut del_elements = String::new();
    let mut flush = String::new();
    let mut delete = String::new();
    let mut add_sets = String::new();
    let mut add_chains = String::new();
    let mut add_rules = String::new();
    let mut add_elements = String::new();

    for (old, new) in changes {
        for ((map, key), e) in &old.elements {
            if new.elements.get(&(*map, key.clone())) != Some(e) {
                let _ = writeln!(
                    del_elements,
                    "delete element ip {table} {} {{ {key} }}",
                    map.name()
                );
            }
        }
        for ((map, key), e) in &new.elements {
            if old.elements.get(&(*map, key.clone())) != Some(e) {
                let _ = writeln!(
                    add_elements,
                    "add element ip {table} {} {{ {key} : {} }}",
                    map.name(),
                    e.value
                );
            }
        }
        for (name, decl) in &old.sets {
            match new.sets.get(name) {
                None => {
                    let _ = writeln!(delete, "delete set ip {table} {name}");
                }
                Some(d) if d != decl => return Err(NeedsFullSync),
                Some(_) => {}
            }
        }
        for (name, decl) in &new.sets {
            if !old.sets.contains_key(name) {
                let _ = writeln!(add_sets, "add set ip {table} {name} {{ {decl} }}");
            }
        }
        for (name, rules) in &old.chains {
            match new.chains.get(name) {
                None => {
                    let _ = writeln!(flush, "flush chain ip {table} {name}");
                    let _ = writeln!(delete, "delete chain ip {table} {name}");
                }
                Some(r) if r != rules => {
                    let _ = writeln!(flush, "flush chain ip {table} {name}");
                }
                Some(_) => {}
            }
        }
        for (name, rules) in &new.chains {
            let changed = match old.chains.get(name) {
                None => {
                    let _ = writeln!(add_chains, "add chain ip {table} {name}");
                    true
                }
                Some(r) => r != rules,
            };
            if changed {
                for rule in rules {
                    let _ = writeln!(add_rules, "add rule ip {table} {name} {rule}");
                }
            }
        }
    }
    Ok([
        del_elements,
        flush,
        delete,
        add_sets,
        add_chains,
        add_rules,
        add_elements,
    ]
    .concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Dest, Element};
    use crate::service::Protocol;

    fn rules(
        chains: &[(&str, &[&str])],
        sets: &[(&str, &str)],
        elements: &[(&str, &str)],
    ) -> ServiceRules {
        let mut r = ServiceRules::default();
        for (c, rs) in chains {
            r.chains
                .insert(c.to_string(), rs.iter().map(|s| s.to_string()).collect());
        }
        for (n, d) in sets {
            r.sets.insert(n.to_string(), d.to_string());
        }
        for (k, v) in elements {
            r.elements.insert(
                (Map::ServiceIps, k.to_string()),
                Element {
                    value: v.to_string(),
                    dest: Dest::NodePort(Protocol::Tcp, 1),
                },
            );
        }
        r
    }

    fn check(old: &ServiceRules, new: &ServiceRules, expect: &str) {
        let got = partial("t", &[(old, new)]).unwrap();
        let expect: String = expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(got, expect, "got:\n{got}");
    }

    #[test]
    fn unchanged_is_empty() {
        let r = rules(&[("c", &["r1"])], &[("s", "d")], &[("k", "goto c")]);
        check(&r, &r, "");
    }

    #[test]
    fn endpoint_replaced() {
        let old = rules(
            &[
                ("svc", &["numgen a"]),
                ("ep-a", &["dnat a"]),
                ("ep-b", &["dnat b"]),
            ],
            &[],
            &[("k", "goto svc")],
        );
        let new = rules(
            &[
                ("svc", &["numgen b"]),
                ("ep-b", &["dnat b"]),
                ("ep-c", &["dnat c"]),
            ],
            &[],
            &[("k", "goto svc")],
        );
        check(
            &old,
            &new,
            "
            flush chain ip t ep-a
            flush chain ip t svc
            delete chain ip t ep-a
            add chain ip t ep-c
            add rule ip t ep-c dnat c
            add rule ip t svc numgen b
            ",
        );
    }

    #[test]
    fn service_created_and_deleted() {
        let none = ServiceRules::default();
        let r = rules(&[("svc", &["x"])], &[("aff", "decl")], &[("k", "goto svc")]);
        check(
            &none,
            &r,
            "
            add set ip t aff { decl }
            add chain ip t svc
            add rule ip t svc x
            add element ip t service-ips { k : goto svc }
            ",
        );
        check(
            &r,
            &none,
            "
            delete element ip t service-ips { k }
            flush chain ip t svc
            delete set ip t aff
            delete chain ip t svc
            ",
        );
    }

    #[test]
    fn element_value_change_is_delete_then_add() {
        let old = rules(&[], &[], &[("k", "goto a")]);
        let new = rules(&[], &[], &[("k", "goto reject-chain")]);
        check(
            &old,
            &new,
            "
            delete element ip t service-ips { k }
            add element ip t service-ips { k : goto reject-chain }
            ",
        );
    }

    #[test]
    fn changed_set_declaration_needs_full_sync() {
        let old = rules(&[], &[("aff", "timeout 10s")], &[]);
        let new = rules(&[], &[("aff", "timeout 20s")], &[]);
        assert_eq!(partial("t", &[(&old, &new)]), Err(NeedsFullSync));
    }

    #[test]
    fn full_replaces_table() {
        let r = rules(&[("svc", &["x"])], &[("aff", "decl")], &[("k", "goto svc")]);
        let s = full("t", "SKELETON\n", [&r]);
        assert_eq!(
            s,
            "add table ip t\ndelete table ip t\nSKELETON\nadd set ip t aff { decl }\nadd chain ip t svc\n\
             add rule ip t svc x\nadd element ip t service-ips { k : goto svc }\n"
        );
    }
}

//! IPv4 CIDRs as given on the command line (`--service-cidr`, `--cluster-cidr`).
//! The proxier programs IPv4 only, so IPv6 parts of a dual-stack list are
//! skipped here.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network, `10.43.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid CIDR {0:?}")]
pub struct InvalidCidr(pub String);

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Cidr, InvalidCidr> {
        if prefix > 32 {
            return Err(InvalidCidr(format!("{addr}/{prefix}")));
        }
        let mask = Self::mask(prefix);
        Ok(Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.addr)
    }

    /// The IPv4 CIDRs of a comma-separated list; IPv6 entries are skipped.
    pub fn parse_list(list: &str) -> Result<Vec<Ipv4Cidr>, InvalidCidr> {
        let mut out = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.contains(':') {
                continue;
            }
            out.push(part.parse()?);
        }
        Ok(out)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = InvalidCidr;

    fn from_str(s: &str) -> Result<Ipv4Cidr, InvalidCidr> {
        let bad = || InvalidCidr(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        Ipv4Cidr::new(addr.parse().map_err(|_| bad())?, prefix)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let c: Ipv4Cidr = "10.43.7.1/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.43.0.0/16");
        assert!(c.contains("10.43.255.1".parse().unwrap()));
        assert!(!c.contains("10.44.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("nope".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn list_skips_ipv6() {
        let l = Ipv4Cidr::parse_list("10.43.0.0/16, fd00::/112").unwrap();
        assert_eq!(l.len(), 1);
        assert!(Ipv4Cidr::parse_list("").unwrap().is_empty());
    }
}

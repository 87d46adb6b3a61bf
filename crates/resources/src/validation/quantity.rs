//! Kubernetes resource quantities (`resource.Quantity`): parsing and
//! comparison. The canonical form is not produced; values are kept in nano
//! units so that comparisons are exact for everything the API accepts.

use std::cmp::Ordering;

const FORMAT_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX_ERR: &str = "unable to parse quantity's suffix";

/// A parsed quantity such as `500m`, `1Gi` or `1e3`.
#[derive(Clone, Debug)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

impl Quantity {
    /// The value in nano units (saturating at the `i128` range).
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }
    /// The value in milli units, rounded up (`Quantity.MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }
    /// The value in whole units, rounded up (`Quantity.Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000_000)
    }
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
    /// The text this quantity was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 {
        q + 1
    } else {
        q
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Parse a quantity string as `resource.ParseQuantity` does.
pub fn parse_quantity(s: &str) -> Result<Quantity, String> {
    if s.is_empty() {
        return Err(FORMAT_ERR.to_string());
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    if bytes[0] == b'+' || bytes[0] == b'-' {
        negative = bytes[0] == b'-';
        pos = 1;
    }
    let num_start = pos;
    while pos < bytes.len() && (bytes[pos].is_ascii_digit() || bytes[pos] == b'.') {
        pos += 1;
    }
    let number = &s[num_start..pos];
    let suffix = &s[pos..];
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(FORMAT_ERR.to_string());
    }
    // The suffix must match [eEinumkKMGTP]*[-+]?[0-9]*.
    let sb = suffix.as_bytes();
    let mut i = 0;
    while i < sb.len() && b"eEinumkKMGTP".contains(&sb[i]) {
        i += 1;
    }
    if i < sb.len() && (sb[i] == b'+' || sb[i] == b'-') {
        i += 1;
    }
    while i < sb.len() && sb[i].is_ascii_digit() {
        i += 1;
    }
    if i != sb.len() {
        return Err(FORMAT_ERR.to_string());
    }
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other if other.len() > 1 && (other.starts_with('e') || other.starts_with('E')) => {
            let e: i32 = other[1..].parse().map_err(|_| SUFFIX_ERR.to_string())?;
            (e, 0)
        }
        _ => return Err(SUFFIX_ERR.to_string()),
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let mut mantissa: u128 = 0;
    let mut frac_len: i32 = 0;
    for (idx, c) in int_part.bytes().chain(frac_part.bytes()).enumerate() {
        let is_frac = idx >= int_part.len();
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(c - b'0')))
        {
            Some(m) => {
                mantissa = m;
                if is_frac {
                    frac_len += 1;
                }
            }
            None => {
                // Too many digits: further integer digits scale the value up,
                // further fraction digits are below what can matter.
                if !is_frac {
                    frac_len -= 1;
                }
            }
        }
    }
    let scale = 9 + exp10 - frac_len;
    let magnitude = scale_value(mantissa, scale, exp2);
    let nanos = if negative { -magnitude } else { magnitude };
    Ok(Quantity {
        nanos,
        text: s.to_string(),
    })
}

/// `mantissa * 10^scale * 2^exp2`, rounded up, saturating at `i128::MAX`.
fn scale_value(mantissa: u128, scale: i32, exp2: u32) -> i128 {
    if mantissa == 0 {
        return 0;
    }
    let max = i128::MAX as u128;
    let with_pow2 = match mantissa.checked_mul(1u128 << exp2) {
        Some(v) => v,
        None => return i128::MAX,
    };
    let v = if scale >= 0 {
        match 10u128
            .checked_pow(scale as u32)
            .and_then(|p| with_pow2.checked_mul(p))
        {
            Some(v) => v,
            None => return i128::MAX,
        }
    } else {
        match 10u128.checked_pow((-scale) as u32) {
            Some(p) => with_pow2.div_ceil(p),
            None => 1,
        }
    };
    v.min(max) as i128
}

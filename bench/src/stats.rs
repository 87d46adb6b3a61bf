//! Latency summaries and number formatting for the report.

use std::time::Duration;

/// Sorted samples with nearest-rank percentiles.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Latencies(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0 < p <= 100); zero when there are no samples.
    pub fn pct(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Milliseconds below one second, seconds above.
pub fn dur(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        ms(d)
    } else {
        secs(d)
    }
}

pub fn rate(n: f64) -> String {
    if n >= 100.0 {
        format!("{:.0}/s", n)
    } else {
        format!("{n:.1}/s")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One line of the final table.
pub struct Row {
    pub phase: &'static str,
    pub figure: String,
    pub value: String,
    pub context: String,
}

pub fn print_table(rows: &[Row]) {
    let w = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (w0, w1, w2) = (
        w(|r| r.phase, "phase"),
        w(|r| &r.figure, "figure"),
        w(|r| &r.value, "measured"),
    );
    println!();
    println!(
        "{:<w0$}  {:<w1$}  {:>w2$}  floor / context",
        "phase", "figure", "measured"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 6 + 40));
    for r in rows {
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {}",
            r.phase, r.figure, r.value, r.context
        );
    }
}

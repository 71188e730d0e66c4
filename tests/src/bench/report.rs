//! The results table: one row per figure, with the target or reference it is judged against.

use std::fmt::Write as _;

/// Rows of (figure, value, target or reference).
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<[String; 3]>,
}

impl Table {
    pub fn row(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
    ) {
        self.rows.push([figure.into(), value.into(), target.into()]);
    }

    pub fn markdown(&self) -> String {
        let mut out =
            String::from("| figure | measured | target / reference |\n| --- | ---: | --- |\n");
        for [figure, value, target] in &self.rows {
            let _ = writeln!(out, "| {figure} | {value} | {target} |");
        }
        out
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    // Groups of three from the right: the first group takes what is left over.
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..first].to_string();
    for group in digits.as_bytes()[first..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn millis(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped_by_three() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-4200.0), "-4,200");
    }
}

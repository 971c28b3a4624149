//! Human-friendly sizes: `64M`, `2G`, `1.5GiB` in options; `1.2 GiB` in reports.

use crate::error::{Error, Result};

/// Parses a byte size: a number with an optional unit `K`, `M`, `G`, `T` (powers of 1024; `KB`,
/// `KiB`, ... accepted alike, case-insensitive) or `B`.
///
/// Exactly: optional whitespace; a decimal number without sign or exponent (`64`, `1.5`, `.5`);
/// optional whitespace; an optional unit (`K`, `M`, `G`, `T`, each alone or followed by `B` or `iB`;
/// or `B` or `iB` alone, for bytes); optional whitespace. A fraction is rounded to the nearest byte.
/// The one parser of sizes: the command line's options, the benchmark harness and `benches/` use it.
///
/// # Errors
///
/// [`Error::InvalidInput`] for anything else, or a size of 2^64 bytes or more (given with a fraction:
/// 1.8 x 10^19 bytes or more).
///
/// # Examples
///
/// ```
/// use sparsedisk::units::parse_size;
/// assert_eq!(parse_size("64M")?, 64 << 20);
/// assert_eq!(parse_size("1.5g")?, 3 << 29);
/// assert_eq!(parse_size("4096")?, 4096);
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(format!(
            "cannot read {text:?} as a size: expected a number with an optional unit K, M, G or T (e.g. 64M, 2G)"
        ))
    };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(&unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    if number.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(scale).ok_or_else(bad);
    }
    let x: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (x * scale as f64).round();
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Formats a byte count with a binary unit, e.g. `1.50 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Peak resident memory of this process in bytes (`VmHWM` on Linux), if the platform tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_size("7B").unwrap(), 7);
        for bad in ["", "G", "12Q", "-1M", "1e3", "99999999999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(format_bytes(12), "12 B");
    }

    /// The whole accepted syntax, as the command line's `--memory`, `--segment-size` and the
    /// benchmark harness's sizes read it.
    #[test]
    fn size_syntax() {
        // A unit in any case, with or without `B` / `iB`, after optional spaces; surrounding spaces.
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("4096b", 4096),
            ("7iB", 7),
            (" 64 M ", 64 << 20),
            ("64MiB", 64 << 20),
            ("64mb", 64 << 20),
            ("2KIB", 2 << 10),
            ("3t", 3 << 40),
            ("3TB", 3 << 40),
            ("1.5GiB", 3 << 29),
            ("0.5K", 512),
            (".5K", 512),
            ("18446744073709551615", u64::MAX),
            ("16777215T", ((1 << 24) - 1) << 40),
        ] {
            assert_eq!(parse_size(text).unwrap(), bytes, "{text:?}");
        }
        // Fractions round to the nearest byte.
        assert_eq!(parse_size("1.4B").unwrap(), 1);
        assert_eq!(parse_size("1.6").unwrap(), 2);
        // No sign, exponent, digit grouping, second number, unknown or misplaced unit; nothing of
        // 2^64 bytes or more.
        for bad in [
            "+5",
            "5 5",
            "1 000",
            "1.2.3M",
            "M5",
            "5MiBs",
            "5P",
            "5Ki B",
            "inf",
            "NaN",
            "16777216T",
            "18446744073709551616",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        let message = parse_size("12Q").unwrap_err().to_string();
        assert!(message.contains("cannot read \"12Q\" as a size"), "{message}");
    }
}

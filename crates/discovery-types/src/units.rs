//! airlift's duration (`500ms`, `30s`, `1m`, `1h`, `1d`) and data size (`512kB`, `1MB`)
//! syntax, so an existing `etc/config.properties` reads the same here. One parser for
//! the server's configuration and the CLI's flags.

use std::time::Duration;

/// Parses an airlift duration: a non-negative decimal number and a unit
/// (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`), optionally separated by spaces.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)?;
    let nanos_per_unit: f64 = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "" => {
            return Err(format!(
                "'{text}' needs a unit (ms, s, m, h or d), e.g. 30s"
            ))
        }
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{text}' (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    let nanos = number * nanos_per_unit;
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(format!("'{text}' is too long a duration"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Parses an airlift data size: a number and a unit (`B`, `kB`, `MB`, `GB`, `TB`), powers
/// of 1024 as in airlift.
pub fn parse_data_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let multiplier: f64 = match unit {
        "B" => 1.0,
        "kB" | "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "" => return Err(format!("'{text}' needs a unit (B, kB, MB or GB), e.g. 1MB")),
        other => {
            return Err(format!(
                "unknown data size unit '{other}' in '{text}' (use B, kB, MB, GB or TB)"
            ))
        }
    };
    let bytes = number * multiplier;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    Ok(bytes.round() as u64)
}

/// Splits `"1.5 s"` into `(1.5, "s")`.
fn split_number(text: &str) -> Result<(f64, &str), String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a non-negative number"))?;
    Ok((number, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_airlift_syntax() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration(" 1m ").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("10 s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("0ms").unwrap(), Duration::ZERO);
        for bad in ["", "30", "s", "-1s", "1w", "1.2.3s", "ten s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn data_sizes_in_airlift_syntax() {
        assert_eq!(parse_data_size("1MB").unwrap(), 1024 * 1024);
        assert_eq!(parse_data_size("512kB").unwrap(), 512 * 1024);
        assert_eq!(parse_data_size("100B").unwrap(), 100);
        assert_eq!(parse_data_size("1.5GB").unwrap(), 1536 * 1024 * 1024);
        for bad in ["", "1", "1mb", "MB", "-1MB"] {
            assert!(parse_data_size(bad).is_err(), "{bad:?} must be refused");
        }
    }
}

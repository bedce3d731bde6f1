//! A small parser of the Prometheus text exposition format (version 0.0.4), so the suites
//! check `/metrics` sample by sample (name, labels, value) instead of grepping text: a
//! substring match would pass on a label that merely contains the expected text.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of an exposition, in order, or the first line that is not one. `# HELP`
/// and `# TYPE` lines are checked for a metric name and skipped; timestamps are ignored.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let fail = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if let Some("HELP" | "TYPE") = words.next() {
                let name = words.next().ok_or_else(|| fail("no metric name"))?;
                if !is_name(name) {
                    return Err(fail("bad metric name"));
                }
            }
            continue;
        }
        samples.push(sample(line).map_err(|why| fail(&why))?);
    }
    Ok(samples)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let key = &rest[..eq];
            if !is_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            let value_text = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let (value, consumed) = label_value(value_text)?;
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key:?} twice"));
            }
            rest = &value_text[consumed..];
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().map_err(|_| format!("bad value {other:?}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The unescaped label value at the start of `text` (just after its opening quote) and
/// how many bytes it took, closing quote included.
fn label_value(text: &str) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, at + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                other => return Err(format!("bad escape {other:?}")),
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

/// The value of the sample named `name` whose labels include every pair of `labels`;
/// `None` when there is none, a panic when several match (the caller was not precise).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = select(samples, name, labels).collect();
    assert!(
        matching.len() <= 1,
        "{} samples of {name} match {labels:?}: {matching:?}",
        matching.len()
    );
    matching.first().map(|s| s.value)
}

/// The samples named `name` whose labels include every pair of `labels`.
pub fn select<'s>(
    samples: &'s [Sample],
    name: &'s str,
    labels: &'s [(&'s str, &'s str)],
) -> impl Iterator<Item = &'s Sample> + 's {
    samples.iter().filter(move |s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\n\
                    a_total{route=\"/v1/service/{type}\",status=\"200\"} 3\n\
                    up 1\n\
                    h_bucket{le=\"+Inf\"} 7 1700000000000\n\
                    q{v=\"a\\\"b\\\\c\\nd\"} -1.5e-3\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(
            value(
                &samples,
                "a_total",
                &[("route", "/v1/service/{type}"), ("status", "200")]
            ),
            Some(3.0)
        );
        assert_eq!(value(&samples, "up", &[]), Some(1.0));
        assert_eq!(value(&samples, "h_bucket", &[("le", "+Inf")]), Some(7.0));
        assert_eq!(samples[3].labels["v"], "a\"b\\c\nd");
        assert_eq!(samples[3].value, -0.0015);
        assert_eq!(value(&samples, "a_total", &[("status", "404")]), None);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "a{b=\"c\" 1",
            "a{b=c} 1",
            "a{b=\"c\"}",
            "a x",
            "1a 1",
            "# TYPE",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

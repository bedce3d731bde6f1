//! `etc/config.properties` text: the properties parser, airlift's duration and data-size
//! syntax (on the whole text and on every value), and the settings built from the pairs
//! (the `--set` path, through the `config` crate, which needs no file).
#![no_main]

use std::collections::BTreeMap;

use discovery_server::config::{parse_data_size, parse_duration, parse_properties};
use discovery_server::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = discovery_types::units::parse_duration(text);
    let _ = discovery_types::units::parse_data_size(text);
    let pairs = parse_properties(text);
    for (_, value) in &pairs {
        let _ = parse_duration(value);
        let _ = parse_data_size(value);
    }
    let _ = Settings::load(None, &pairs);
    let flat: BTreeMap<String, String> = pairs.into_iter().collect();
    let _ = Settings::from_properties(flat.clone(), true);
    let _ = Settings::from_properties(flat, false);
});

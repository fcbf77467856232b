//! Feeds arbitrary bytes to every registered contract: parsing must never panic, and whatever
//! validates must be a fixed point (`normalize(normalize(x)) == normalize(x)`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(value) = ep_contracts::parse_json(text) else { return };
    for entry in ep_contracts::registry::entries() {
        if let Ok(normalized) = entry.normalize(&value) {
            let again = entry.normalize(&normalized);
            assert_eq!(again.as_ref(), Ok(&normalized), "{} is not a fixed point", entry.name);
        }
    }
});

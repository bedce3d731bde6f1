//! `PUT /v1/announcement/{nodeId}` and `POST /v1/announcement/static` bodies: parsed and
//! validated, and what is accepted is stored, looked up, and must pass the rule a peer
//! applies to the same entry (what the API stores, replication must carry).
#![no_main]

use discovery_fuzz::{read_back, registry};
use discovery_server::registry::{Selector, StoreName};
use discovery_types::{DynamicAnnouncement, StaticAnnouncement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(announcement) = DynamicAnnouncement::from_json(data, "test") {
        let services = announcement.clone().into_services("n1");
        let _ = serde_json::to_vec(&services);
        let here = registry();
        if here.announce("n1", announcement).is_ok() {
            assert_eq!(
                here.lookup(Selector::All).services,
                services.len(),
                "every announced service is found"
            );
            read_back(&here);
            let peer = registry();
            let pushed = peer
                .responder()
                .apply_batch("dynamic", here.dump(StoreName::Dynamic));
            assert!(
                pushed.is_ok(),
                "a peer refuses an accepted announcement: {pushed:?}"
            );
        }
    }
    if let Ok(announcement) = StaticAnnouncement::from_json(data, "test") {
        let here = registry();
        if here.add_static(announcement).is_ok() {
            read_back(&here);
            let peer = registry();
            let pushed = peer
                .responder()
                .apply_batch("static", here.dump(StoreName::Static));
            assert!(
                pushed.is_ok(),
                "a peer refuses an accepted static service: {pushed:?}"
            );
        }
    }
});

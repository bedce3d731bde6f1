//! Rendering a lookup response and its ETag.

use std::sync::Arc;

use bytes::Bytes;

use super::index::IndexedService;

/// A rendered lookup answer: the exact body and a tag that changes exactly when the body
/// does. Services are sorted by id, so two servers holding the same services answer with
/// the same bytes and the same tag, and a client switching servers behind a load balancer
/// still gets its 304.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub body: Bytes,
    pub etag: String,
    pub services: usize,
    /// The answer stays exact until this time (ms since the epoch) unless a write changes
    /// it: the earliest expiry among the listed services. `None`: none of them expires.
    pub valid_until: Option<i64>,
}

impl Lookup {
    /// `services` holds the dynamic matches first (`dynamic_count` of them), then the
    /// static ones, sorted by id, then dynamic before static, then entry key, so every
    /// server lists them in the same order. A service id offered by two entries (two
    /// nodes, or a node and a static service) is listed for each: keeping one, as Java
    /// does, would let anyone who can announce hide another node's service behind its
    /// own. Only the same service of the same entry is listed once.
    pub(crate) fn render(
        environment: &str,
        services: Vec<Arc<IndexedService>>,
        dynamic_count: usize,
    ) -> Lookup {
        let mut ranked: Vec<(bool, Arc<IndexedService>)> = services
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i >= dynamic_count, s))
            .collect();
        ranked.sort_by(|(a_static, a), (b_static, b)| {
            a.id.cmp(&b.id)
                .then(a_static.cmp(b_static))
                .then_with(|| a.key.cmp(&b.key))
        });
        ranked.dedup_by(|later, kept| {
            later.0 == kept.0 && later.1.id == kept.1.id && later.1.key == kept.1.key
        });

        let environment_json =
            serde_json::to_string(environment).unwrap_or_else(|_| "\"\"".to_owned());
        let services_len: usize = ranked.iter().map(|(_, s)| s.json.len() + 1).sum();
        let mut body = String::with_capacity(environment_json.len() + services_len + 32);
        body.push_str("{\"environment\":");
        body.push_str(&environment_json);
        body.push_str(",\"services\":[");
        for (i, (_, service)) in ranked.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&service.json);
        }
        body.push_str("]}\n");

        // xxh3's output is fixed by its specification, so servers of different builds tag
        // the same answer identically.
        Lookup {
            valid_until: ranked.iter().filter_map(|(_, s)| s.expires_at()).min(),
            etag: format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body.as_bytes())),
            body: Bytes::from(body),
            services: ranked.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, key: &str) -> Arc<IndexedService> {
        Arc::new(IndexedService::new(
            id.into(),
            key.as_bytes().to_vec(),
            format!(r#"{{"id":"{id}","k":"{key}"}}"#).into_boxed_str(),
            None,
        ))
    }

    #[test]
    fn sorted_by_id_dynamic_first_and_tagged_by_content() {
        let lookup = Lookup::render(
            "testing",
            vec![
                service("b", "n1"),
                service("a", "n1"),
                service("c", "static"),
            ],
            2,
        );
        assert_eq!(
            std::str::from_utf8(&lookup.body).unwrap(),
            "{\"environment\":\"testing\",\"services\":[{\"id\":\"a\",\"k\":\"n1\"},{\"id\":\"b\",\"k\":\"n1\"},{\"id\":\"c\",\"k\":\"static\"}]}\n"
        );
        assert_eq!(lookup.services, 3);

        let same = Lookup::render(
            "testing",
            vec![
                service("a", "n1"),
                service("b", "n1"),
                service("c", "static"),
            ],
            2,
        );
        assert_eq!(
            same.etag, lookup.etag,
            "same answer, same tag, whatever the input order"
        );
        let other = Lookup::render("testing", vec![service("a", "n1")], 1);
        assert_ne!(other.etag, lookup.etag);
        let empty = Lookup::render("testing", vec![], 0);
        assert_eq!(
            &empty.body[..],
            b"{\"environment\":\"testing\",\"services\":[]}\n"
        );
    }

    #[test]
    fn a_service_id_offered_by_two_entries_is_listed_for_each_so_none_hides_another() {
        let lookup = Lookup::render(
            "testing",
            vec![
                service("a", "real-coordinator"),
                service("a", "intruder"),
                service("a", "static"),
            ],
            2,
        );
        assert_eq!(
            std::str::from_utf8(&lookup.body).unwrap(),
            "{\"environment\":\"testing\",\"services\":[{\"id\":\"a\",\"k\":\"intruder\"},{\"id\":\"a\",\"k\":\"real-coordinator\"},{\"id\":\"a\",\"k\":\"static\"}]}\n",
            "sorted by id, dynamic first, then by entry key"
        );
        let same_offer_twice =
            Lookup::render("testing", vec![service("a", "n1"), service("a", "n1")], 2);
        assert_eq!(same_offer_twice.services, 1);
    }
}

//! The request script both servers are sent: every single-node conformance case (1–58
//! and 71) as data, a list of [`Step`]s that each name their case.
//!
//! Bodies and paths may hold templates, evaluated per server when the step is sent:
//! `${now}`, `${t50}`, `${t50+1}`, `${t54-60000}` (clock values in ms; `t50` is bound by
//! a step's [`Request::at`], which a step uses whenever one clock reading must appear
//! twice, as an entry's version and its timestamp), `${s38}` (a value a step captured from that server's
//! answer), and the JSON objects `{"$b64": "text"}` and `{"$b64json": value}` (standard
//! base64 of the text, or of the value's JSON). Service ids are fixed UUIDs, so both
//! servers are sent identical announcements.
//!
//! The script runs in two phases. Phase 1 runs with `discovery.max-age=2s`, for the
//! expiry cases (33–36, 46) and ends by restarting both servers (48). Phase 2 runs on the
//! restarted servers with the defaults (71) and holds everything else.

use std::time::Duration;

use discovery_testkit::announcements::{announcement as ann, service as svc, static_announcement};
pub use discovery_testkit::ENVIRONMENT as ENV;
use serde_json::{json, Value};

use super::compare::Check;

/// One scripted step.
#[derive(Debug, Clone)]
pub struct Step {
    pub case: u32,
    /// Unique within its case; allow-list entries can name it.
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// One request; its answers are compared.
    Send(Request),
    /// Repeats the request until `until` holds for the answer or `deadline` passes; the
    /// last answers are compared (a deadline passing is a difference of its own).
    Poll {
        request: Request,
        until: Until,
        deadline: Duration,
    },
    /// Re-announces with `renew` every `every` for `lasting`, each time checking `probe`
    /// with `until`; compares a summary (statuses seen, probes that failed).
    KeepAlive {
        renew: Box<Request>,
        probe: Box<Request>,
        until: Until,
        every: Duration,
        lasting: Duration,
    },
    /// Announces `count` nodes (one service each, type `bulk`, pool `poolA`), then sends
    /// `lookup` right away (before the first announcements can expire); compares the
    /// statuses seen and the lookup.
    Bulk { count: usize, lookup: Request },
    /// Stops both servers (SIGTERM) and starts them on the same data with the phase-2
    /// configuration.
    Restart,
}

/// A condition on a lookup answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `services` is empty.
    NoServices,
    /// `services` holds this many entries.
    Services(usize),
}

/// The body of a request.
#[derive(Debug, Clone)]
pub enum Payload {
    None,
    /// A JSON template, sent as `application/json` unless the request sets a type.
    Json(Value),
    /// Bytes sent as they are.
    Raw(&'static str),
    /// A JSON template of store entries, sent Smile-encoded.
    Smile(Value),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    /// A path template.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// `Some("")` sends no Content-Type at all; `None` picks the payload's default.
    pub content_type: Option<&'static str>,
    pub payload: Payload,
    pub check: Check,
    /// Binds this variable to the current clock (ms) just before sending.
    pub at: Option<&'static str>,
    /// (variable, JSON pointer into the body or `header:<name>`) to capture.
    pub capture: Option<(&'static str, &'static str)>,
    /// For store dumps: compare only these keys.
    pub keys: Option<Vec<String>>,
}

impl Request {
    /// `METHOD path` as scripted, for reports and allow-list entries.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn new(method: &'static str, path: &str, payload: Payload) -> Request {
        Request {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            content_type: None,
            payload,
            check: Check::Full,
            at: None,
            capture: None,
            keys: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Request {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn content_type(mut self, content_type: &'static str) -> Request {
        self.content_type = Some(content_type);
        self
    }

    pub fn check(mut self, check: Check) -> Request {
        self.check = check;
        self
    }

    pub fn at(mut self, variable: &'static str) -> Request {
        self.at = Some(variable);
        self
    }

    pub fn capture(mut self, variable: &'static str, from: &'static str) -> Request {
        self.capture = Some((variable, from));
        self
    }

    pub fn keys(mut self, keys: &[&str]) -> Request {
        self.keys = Some(keys.iter().map(|k| (*k).to_owned()).collect());
        self
    }
}

fn get(path: &str) -> Request {
    Request::new("GET", path, Payload::None)
}

fn delete(path: &str) -> Request {
    Request::new("DELETE", path, Payload::None)
}

fn put(path: &str, body: Value) -> Request {
    Request::new("PUT", path, Payload::Json(body))
}

fn post(path: &str, body: Value) -> Request {
    Request::new("POST", path, Payload::Json(body))
}

fn raw(method: &'static str, path: &str, body: &'static str) -> Request {
    Request::new(method, path, Payload::Raw(body))
}

/// A fixed service id: the case number and an index, as a dashed UUID.
pub fn u(case: u32, index: u32) -> String {
    format!("00000000-0000-4000-8000-{case:06}{index:06}")
}

/// `PUT /v1/announcement/{node}`.
fn announce(node: &str, body: Value) -> Request {
    put(&format!("/v1/announcement/{node}"), body)
}

fn unannounce(node: &str) -> Request {
    delete(&format!("/v1/announcement/{node}"))
}

/// A valid static announcement with an `http` property.
fn stat(service_type: &str, pool: &str, location: Option<&str>) -> Value {
    static_announcement(service_type, pool, location, json!({"http": "http://host"}))
}

fn post_static(body: Value) -> Request {
    post("/v1/announcement/static", body)
}

/// `GET /v1/store/{store}` as JSON, compared only for `keys`.
fn dump(store: &str, keys: &[&str]) -> Request {
    get(&format!("/v1/store/{store}"))
        .header("accept", "application/json")
        .keys(keys)
}

/// A raw dynamic entry template for `node` whose value lists `services`.
fn entry(node: &str, services: Option<Value>, version: &str, max_age: Option<i64>) -> Value {
    let mut entry = json!({
        "key": {"$b64": node},
        "version": {"sequence": version},
        "timestamp": version,
    });
    if let Some(services) = services {
        entry["value"] = json!({"$b64json": services});
    }
    if let Some(max_age) = max_age {
        entry["maxAgeInMs"] = json!(max_age);
    }
    entry
}

/// A stored service as a raw entry's value holds it.
fn stored(id: &str, node: &str, service_type: &str, pool: &str, location: &str) -> Value {
    json!({"id": id, "nodeId": node, "type": service_type, "pool": pool,
           "location": location, "properties": {}})
}

/// Collects the steps of one case.
struct Case<'a> {
    number: u32,
    steps: &'a mut Vec<Step>,
}

impl Case<'_> {
    fn step(&mut self, name: &str, action: Action) -> &mut Self {
        assert!(
            !self
                .steps
                .iter()
                .any(|s| s.case == self.number && s.name == name),
            "case {} has two steps named {name:?}",
            self.number
        );
        self.steps.push(Step {
            case: self.number,
            name: name.to_owned(),
            action,
        });
        self
    }

    fn send(&mut self, name: &str, request: Request) -> &mut Self {
        self.step(name, Action::Send(request))
    }
}

struct Script {
    steps: Vec<Step>,
}

impl Script {
    fn case(&mut self, number: u32) -> Case<'_> {
        Case {
            number,
            steps: &mut self.steps,
        }
    }
}

/// Phase 1 (`discovery.max-age=2s`): expiry, static durability, the restart.
pub fn phase_one() -> Vec<Step> {
    let mut s = Script { steps: Vec::new() };
    let http = json!({"http": "http://h"});

    s.case(46).send(
        "create a static service",
        post_static(stat("c46", "p", Some("/s46"))).capture("s46", "/id"),
    );
    s.case(34)
        .step(
            "re-announce every 500 ms for 6 s",
            Action::KeepAlive {
                renew: Box::new(announce(
                    "n34",
                    ann("p", "/n34", vec![svc(&u(34, 1), "c34", http.clone())]),
                )),
                probe: Box::new(get("/v1/service/c34/p")),
                until: Until::Services(1),
                every: Duration::from_millis(500),
                lasting: Duration::from_secs(6),
            },
        )
        .send("unannounce", unannounce("n34"));
    // More than 5 s (the keep-alive) after its creation.
    s.case(46)
        .send("still listed after 6 s", get("/v1/service/c46/p"))
        .send("still in the static list", get("/v1/announcement/static"));
    s.case(33)
        .send(
            "announce",
            announce(
                "n33",
                ann("p", "/n33", vec![svc(&u(33, 1), "c33", http.clone())]),
            ),
        )
        .send("visible at once", get("/v1/service/c33/p"))
        .step(
            "gone after max-age",
            Action::Poll {
                request: get("/v1/service/c33/p"),
                until: Until::NoServices,
                deadline: Duration::from_secs(15),
            },
        );
    s.case(35)
        .send(
            "announce old",
            announce(
                "n35",
                ann("p", "/n35", vec![svc(&u(35, 1), "c35", http.clone())]),
            ),
        )
        .step(
            "old expires",
            Action::Poll {
                request: get("/v1/service/c35/p"),
                until: Until::NoServices,
                deadline: Duration::from_secs(15),
            },
        )
        .send(
            "announce new",
            announce(
                "n35",
                ann("p", "/n35", vec![svc(&u(35, 2), "c35", http.clone())]),
            ),
        )
        .send("only the new is listed", get("/v1/service/c35/p"));
    s.case(36)
        .send(
            "announce",
            announce(
                "n36",
                ann("p", "/n36", vec![svc(&u(36, 1), "c36", http.clone())]),
            ),
        )
        .send("raw entry", dump("dynamic", &["n36"]));
    s.case(48)
        .send(
            "create a static service",
            post_static(stat("c48", "p", Some("/s48"))).capture("s48", "/id"),
        )
        .step("restart both servers", Action::Restart)
        .send("still listed after the restart", get("/v1/service/c48/p"))
        .send(
            "static list after the restart",
            get("/v1/announcement/static"),
        )
        .send("delete", delete("/v1/announcement/static/${s48}"))
        .send("delete case 46's", delete("/v1/announcement/static/${s46}"))
        .send("static list empty", get("/v1/announcement/static"));
    s.steps
}

/// Phase 2 (defaults): everything else.
pub fn phase_two() -> Vec<Step> {
    let mut s = Script { steps: Vec::new() };
    let http = |port: u32| json!({"http": format!("http://localhost:{port}")});

    // Dynamic announce and lookup.
    s.case(1).send(
        "announce",
        announce(
            "n1",
            ann(
                "alpha",
                "/a/b/c",
                vec![svc(&u(1, 1), "storage", http(1111))],
            ),
        ),
    );
    s.case(2)
        .send("lookup type and pool", get("/v1/service/storage/alpha"));
    s.case(3)
        .send("lookup type", get("/v1/service/storage"))
        .send("lookup all", get("/v1/service"));
    s.case(4)
        .send("unknown type", get("/v1/service/unknown"))
        .send("unknown pool", get("/v1/service/storage/unknown"))
        .send("unannounce case 1's node", unannounce("n1"))
        .send("nothing left", get("/v1/service"));
    s.case(5)
        .send(
            "announce three services",
            announce(
                "n5",
                ann(
                    "poolA",
                    "/n5",
                    vec![
                        svc(&u(5, 1), "storage", http(1)),
                        svc(&u(5, 2), "web", http(2)),
                        svc(&u(5, 3), "monitoring", http(3)),
                    ],
                ),
            ),
        )
        .send("lookup all", get("/v1/service"))
        .send("unannounce", unannounce("n5"));
    s.case(6)
        .send(
            "announce n61",
            announce(
                "n61",
                ann("poolA", "/n61", vec![svc(&u(6, 1), "storage", http(1))]),
            ),
        )
        .send(
            "announce n62",
            announce(
                "n62",
                ann("poolA", "/n62", vec![svc(&u(6, 2), "web", http(2))]),
            ),
        )
        .send(
            "announce n63",
            announce(
                "n63",
                ann("poolA", "/n63", vec![svc(&u(6, 3), "monitoring", http(3))]),
            ),
        )
        .send("lookup all", get("/v1/service"))
        .send("lookup storage", get("/v1/service/storage"))
        .send("unannounce n61", unannounce("n61"))
        .send("unannounce n62", unannounce("n62"))
        .send("unannounce n63", unannounce("n63"));
    s.case(7)
        .send(
            "announce red",
            announce(
                "red",
                ann(
                    "alpha",
                    "/red",
                    vec![
                        svc(&u(7, 1), "storage", http(1)),
                        svc(&u(7, 2), "web", http(2)),
                    ],
                ),
            ),
        )
        .send(
            "announce green",
            announce(
                "green",
                ann("alpha", "/green", vec![svc(&u(7, 3), "storage", http(3))]),
            ),
        )
        .send(
            "announce blue",
            announce(
                "blue",
                ann("beta", "/blue", vec![svc(&u(7, 4), "storage", http(4))]),
            ),
        )
        .send("storage/alpha", get("/v1/service/storage/alpha"))
        .send("storage/beta", get("/v1/service/storage/beta"))
        .send("web", get("/v1/service/web"))
        .send("storage", get("/v1/service/storage"))
        .send("all", get("/v1/service"))
        .send("unannounce red", unannounce("red"))
        .send("unannounce green", unannounce("green"))
        .send("unannounce blue", unannounce("blue"));
    s.case(8)
        .send(
            "announce existing",
            announce(
                "n8",
                ann(
                    "p",
                    "/n8",
                    vec![svc(&u(8, 1), "c8", json!({"key": "existing"}))],
                ),
            ),
        )
        .send(
            "replace with new",
            announce(
                "n8",
                ann("p", "/n8", vec![svc(&u(8, 2), "c8", json!({"key": "new"}))]),
            ),
        )
        .send("only new is listed", get("/v1/service/c8"))
        .send("unannounce", unannounce("n8"));
    s.case(9)
        .send(
            "announce at /old",
            announce("n9", ann("p", "/old", vec![svc(&u(9, 1), "c9", http(1))])),
        )
        .send(
            "re-announce at /new",
            announce("n9", ann("p", "/new", vec![svc(&u(9, 1), "c9", http(1))])),
        )
        .send("new location listed", get("/v1/service/c9"))
        .send("unannounce", unannounce("n9"));
    s.case(10)
        .send(
            "announce without location",
            announce(
                "test123",
                json!({"environment": ENV, "pool": "p",
                                       "services": [svc(&u(10, 1), "c10", http(1))]}),
            ),
        )
        .send("default location", get("/v1/service/c10"))
        .send("unannounce", unannounce("test123"));
    s.case(11)
        .send(
            "announce with null location",
            announce(
                "n11",
                json!({"environment": ENV, "pool": "p", "location": null,
                                   "services": [svc(&u(11, 1), "c11", http(1))]}),
            ),
        )
        .send("default location", get("/v1/service/c11"))
        .send(
            "announce with empty location",
            announce("n11e", ann("p", "", vec![svc(&u(11, 2), "c11e", http(1))])),
        )
        .send("empty location kept", get("/v1/service/c11e"))
        .send("unannounce", unannounce("n11"))
        .send("unannounce n11e", unannounce("n11e"));
    s.case(12)
        .send(
            "wrong environment",
            announce(
                "n12",
                json!({"environment": "production", "pool": "p", "location": "/n12",
                                   "services": [svc(&u(12, 1), "c12", http(1))]}),
            )
            .check(Check::Text),
        )
        .send("nothing stored", get("/v1/service/c12"));
    s.case(13)
        .send(
            "announce",
            announce(
                "n13",
                ann("p", "/n13", vec![svc(&u(13, 1), "c13", http(1))]),
            ),
        )
        .send(
            "wrong environment",
            announce(
                "n13",
                json!({"environment": "production", "pool": "p", "location": "/n13",
                                   "services": [svc(&u(13, 2), "c13", http(2))]}),
            )
            .check(Check::Text),
        )
        .send("original still listed", get("/v1/service/c13"))
        .send("unannounce", unannounce("n13"));
    s.case(14)
        .send(
            "empty object",
            announce("n14", json!({})).check(Check::Text),
        )
        .send(
            "no environment field",
            announce(
                "n14",
                json!({"pool": "p", "services": [svc(&u(14, 1), "c14", http(1))]}),
            )
            .check(Check::Text),
        )
        .send(
            "null environment",
            announce(
                "n14",
                json!({"environment": null, "pool": "p",
                                   "services": [svc(&u(14, 1), "c14", http(1))]}),
            )
            .check(Check::Text),
        )
        .send("nothing stored", get("/v1/service/c14"));
    s.case(15)
        .send(
            "malformed JSON",
            raw("PUT", "/v1/announcement/n15", r#"{"environment":"#)
                .content_type("application/json")
                .check(Check::Status),
        )
        .send("nothing stored", get("/v1/service"));
    let bad = |services: Value| json!({"environment": ENV, "pool": "p", "location": "/n16", "services": services});
    s.case(16)
        .send(
            "services is an object",
            announce("n16", bad(json!({}))).check(Check::Status),
        )
        .send(
            "id is a number",
            announce(
                "n16",
                bad(json!([{"id": 7, "type": "c16", "properties": {}}])),
            )
            .check(Check::Status),
        )
        .send(
            "nested property object",
            announce(
                "n16",
                bad(json!([svc(&u(16, 1), "c16", json!({"a": {"b": "c"}}))])),
            )
            .check(Check::Status),
        )
        .send(
            "empty id",
            announce("n16", bad(json!([svc("", "c16", json!({}))]))).check(Check::Status),
        )
        .send(
            "null property value",
            announce(
                "n16",
                bad(json!([svc(&u(16, 1), "c16", json!({"a": null}))])),
            )
            .check(Check::Status),
        )
        .send("nothing stored", get("/v1/service/c16"))
        // Beyond the conformance case: the id checks of COMPATIBILITY.md.
        .send(
            "id is not a UUID",
            announce("n16x", bad(json!([svc("not-a-uuid", "c16x", json!({}))])))
                .check(Check::Status),
        )
        .send(
            "two services share an id",
            announce(
                "n16d",
                bad(json!([
                    svc(&u(16, 2), "c16d", json!({"a": "1"})),
                    svc(&u(16, 2), "c16d", json!({"a": "2"}))
                ])),
            )
            .check(Check::Status),
        )
        .send(
            "exact duplicates collapse",
            announce(
                "n16e",
                bad(json!([
                    svc(&u(16, 3), "c16e", json!({"a": "1"})),
                    svc(&u(16, 3), "c16e", json!({"a": "1"}))
                ])),
            ),
        )
        .send("listed once", get("/v1/service/c16e"))
        .send("unannounce n16x", unannounce("n16x"))
        .send("unannounce n16d", unannounce("n16d"))
        .send("unannounce n16e", unannounce("n16e"));
    s.case(17)
        .send(
            "missing pool",
            announce(
                "n17",
                json!({"environment": ENV, "location": "/n17",
                                   "services": [svc(&u(17, 1), "c17", http(1))]}),
            )
            .check(Check::Status),
        )
        .send("nothing stored", get("/v1/service/c17"))
        .send(
            "missing pool, no services",
            announce(
                "n17e",
                json!({"environment": ENV, "location": "/n17e", "services": []}),
            )
            .check(Check::Status),
        )
        .send("unannounce n17e", unannounce("n17e"));
    s.case(18)
        .send(
            "missing services",
            announce(
                "n18",
                json!({"environment": ENV, "pool": "p", "location": "/n18"}),
            )
            .check(Check::Status),
        )
        .send(
            "null services",
            announce(
                "n18",
                json!({"environment": ENV, "pool": "p", "location": "/n18", "services": null}),
            )
            .check(Check::Status),
        )
        .send("nothing stored", get("/v1/service"));
    let one = |service: Value| json!({"environment": ENV, "pool": "p", "location": "/n19", "services": [service]});
    s.case(19)
        .send(
            "service without id",
            announce("n19", one(json!({"type": "c19", "properties": {}}))).check(Check::Status),
        )
        .send(
            "service without type",
            announce("n19", one(json!({"id": u(19, 1), "properties": {}}))).check(Check::Status),
        )
        .send(
            "service without properties",
            announce("n19", one(json!({"id": u(19, 1), "type": "c19"}))).check(Check::Status),
        )
        .send("nothing stored", get("/v1/service"));
    s.case(20)
        .send(
            "unknown fields",
            announce(
                "n20",
                json!({"environment": ENV, "nodeId": "other", "foo": 1, "pool": "p", "location": "/n20",
                       "services": [{"id": u(20, 1), "type": "c20", "properties": {}, "bar": true}]}),
            ),
        )
        .send("node id from the path", get("/v1/service/c20"))
        .send("unannounce", unannounce("n20"));
    s.case(21)
        .send(
            "numbers and booleans",
            announce(
                "n21",
                ann(
                    "p",
                    "/n21",
                    vec![svc(&u(21, 1), "c21", json!({"port": 8080, "tls": true}))],
                ),
            ),
        )
        .send("listed as strings", get("/v1/service/c21"))
        .send("unannounce", unannounce("n21"));
    s.case(22)
        .send(
            "text/plain",
            put(
                "/v1/announcement/n22",
                ann("p", "/n22", vec![svc(&u(22, 1), "c22", http(1))]),
            )
            .content_type("text/plain")
            .check(Check::Status),
        )
        .send("nothing stored", get("/v1/service/c22"))
        // Beyond the conformance case: a request without any Content-Type.
        .send(
            "no content type",
            put(
                "/v1/announcement/n22",
                ann("p", "/n22", vec![svc(&u(22, 1), "c22", http(1))]),
            )
            .content_type("")
            .check(Check::Status),
        )
        .send("after no content type", get("/v1/service/c22"))
        .send("unannounce", unannounce("n22"));
    s.case(23)
        .send(
            "announce",
            announce(
                "n23",
                ann("p", "/n23", vec![svc(&u(23, 1), "c23", http(1))]),
            ),
        )
        .send(
            "announce no services",
            announce("n23", ann("p", "/n23", vec![])),
        )
        .send("nothing from n23", get("/v1/service"))
        .send("unannounce", unannounce("n23"));
    s.case(24)
        .send(
            "n241 announces the id",
            announce(
                "n241",
                ann("p", "/n241", vec![svc(&u(24, 1), "c24", http(1))]),
            ),
        )
        .send(
            "n242 announces the id",
            announce(
                "n242",
                ann("p", "/n242", vec![svc(&u(24, 1), "c24", http(2))]),
            ),
        )
        .send("listed once", get("/v1/service/c24"))
        .send("unannounce n241", unannounce("n241"))
        .send("unannounce n242", unannounce("n242"));
    s.case(25)
        .send(
            "announce",
            announce(
                "n25",
                ann("p", "/n25", vec![svc(&u(25, 1), "c25", http(1))]),
            ),
        )
        .send(
            "lookup headers",
            get("/v1/service/c25/p").capture("etag25", "header:etag"),
        )
        .send(
            "lookup with If-None-Match",
            get("/v1/service/c25/p").header("if-none-match", "${etag25}"),
        )
        .send(
            "lookup with the airlift client's ETag header",
            get("/v1/service/c25/p").header("etag", "${etag25}"),
        )
        .send("unannounce", unannounce("n25"));
    s.case(26)
        .send(
            "GET an announcement",
            get("/v1/announcement/n1").check(Check::Status),
        )
        .send(
            "POST a lookup",
            post("/v1/service", json!({})).check(Check::Status),
        )
        .send("unknown path", get("/v1/nothing").check(Check::Status));
    s.case(27)
        .send(
            "node id static",
            announce(
                "static",
                ann("p", "/static", vec![svc(&u(27, 1), "c27", http(1))]),
            ),
        )
        .send("lookup", get("/v1/service/c27"))
        .send("unannounce static", unannounce("static"))
        .send("lookup after unannounce", get("/v1/service/c27"));
    s.case(28)
        .send("no taco yet", get("/v1/service/taco"))
        .send(
            "airlift-style announce",
            put(
                "/v1/announcement/n28",
                json!({"environment": ENV, "nodeId": "n28", "location": "/n28", "pool": "general",
                       "services": [svc(&u(28, 1), "taco", json!({"http": "http://127.0.0.1:1"}))]}),
            )
            .header("user-agent", "n28"),
        )
        .send("one taco", get("/v1/service/taco"))
        .send("unannounce", unannounce("n28"))
        .send("no taco after unannounce", get("/v1/service/taco"));

    // Delete.
    s.case(29)
        .send(
            "announce blue",
            announce(
                "blue",
                ann(
                    "poolA",
                    "/blue",
                    vec![
                        svc(&u(29, 1), "c29s", http(1)),
                        svc(&u(29, 2), "c29w", http(2)),
                    ],
                ),
            ),
        )
        .send(
            "announce red",
            announce(
                "red",
                ann("poolA", "/red", vec![svc(&u(29, 3), "c29s", http(3))]),
            ),
        )
        .send("delete blue", unannounce("blue"))
        .send("storage lists only red", get("/v1/service/c29s"))
        .send("web/poolA is empty", get("/v1/service/c29w/poolA"));
    s.case(30)
        .send("delete an unknown node", unannounce("never-announced"))
        .send("red unaffected", get("/v1/service/c29s"))
        .send("unannounce red", unannounce("red"));
    s.case(31)
        .send(
            "announce",
            announce(
                "n31",
                ann("p", "/n31", vec![svc(&u(31, 1), "c31", http(1))]),
            ),
        )
        .send("delete", unannounce("n31"))
        .send(
            "announce again",
            announce(
                "n31",
                ann("p", "/n31", vec![svc(&u(31, 1), "c31", http(1))]),
            ),
        )
        .send("listed", get("/v1/service/c31"))
        .send("unannounce", unannounce("n31"));
    s.case(32)
        .send(
            "announce",
            announce(
                "n32",
                ann("p", "/n32", vec![svc(&u(32, 1), "c32", http(1))]),
            ),
        )
        .send("delete", unannounce("n32"))
        .send("tombstone in the raw store", dump("dynamic", &["n32"]));

    // Static.
    s.case(38).send(
        "create",
        post_static(stat("apple", "red", Some("/a/b/c"))).capture("s38", "/id"),
    );
    s.case(39)
        .send("listed by type and pool", get("/v1/service/apple/red"));
    s.case(40)
        .send(
            "a dynamic announcement",
            announce(
                "n40",
                ann("red", "/n40", vec![svc(&u(40, 1), "apple", http(1))]),
            ),
        )
        .send(
            "static list has static only",
            get("/v1/announcement/static"),
        )
        .send("unannounce", unannounce("n40"));
    s.case(41)
        .send(
            "create without location",
            post_static(stat("c41", "p", None)).capture("s41", "/id"),
        )
        .send("default location", get("/v1/announcement/static"));
    s.case(42)
        .send(
            "wrong environment",
            post_static(
                json!({"environment": "production", "type": "c42", "pool": "p",
                               "properties": {}}),
            )
            .check(Check::Text),
        )
        .send("nothing stored", get("/v1/service/c42"));
    s.case(43)
        .send(
            "missing type",
            post_static(json!({"environment": ENV, "pool": "p", "properties": {}}))
                .check(Check::Status),
        )
        .send(
            "missing pool",
            post_static(json!({"environment": ENV, "type": "c43", "properties": {}}))
                .check(Check::Status),
        )
        .send(
            "missing properties",
            post_static(json!({"environment": ENV, "type": "c43", "pool": "p"}))
                .check(Check::Status),
        )
        .send("nothing stored", get("/v1/announcement/static"));
    s.case(44)
        .send("delete", delete("/v1/announcement/static/${s41}"))
        .send("gone from the static list", get("/v1/announcement/static"))
        .send("gone from lookups", get("/v1/service/c41"));
    s.case(45)
        .send(
            "delete an unknown id",
            delete(&format!("/v1/announcement/static/{}", u(45, 1))),
        )
        .send(
            "delete a non-UUID id",
            delete("/v1/announcement/static/garbage").check(Check::Status),
        );
    s.case(47)
        .send(
            "a dynamic apple/red",
            announce(
                "n47",
                ann("red", "/n47", vec![svc(&u(47, 1), "apple", http(1))]),
            ),
        )
        .send("union of both", get("/v1/service/apple/red"))
        .send("unannounce", unannounce("n47"))
        .send("delete case 38's", delete("/v1/announcement/static/${s38}"))
        .send("nothing left", get("/v1/service/apple/red"));

    // The raw stores.
    s.case(49)
        .send(
            "GET an unknown store",
            get("/v1/store/nosuch").check(Check::Status),
        )
        .send(
            "POST an unknown store",
            post("/v1/store/nosuch", json!([])).check(Check::Status),
        );
    let node_x = |location: &str| json!([stored(&u(50, 9), "node-x", "t", "p", location)]);
    s.case(50)
        .send(
            "post an entry",
            post(
                "/v1/store/dynamic",
                json!([entry("node-x", Some(node_x("/l")), "${t50}", Some(30000))]),
            )
            .at("t50"),
        )
        .send("listed", get("/v1/service/t/p"))
        .send("raw entry", dump("dynamic", &["node-x"]));
    s.case(51)
        .send(
            "post an older version",
            post(
                "/v1/store/dynamic",
                json!([entry(
                    "node-x",
                    Some(node_x("/older")),
                    "${t50-10000}",
                    Some(30000)
                )]),
            ),
        )
        .send("original kept", get("/v1/service/t/p"));
    s.case(52)
        .send(
            "post the same version, other value",
            post(
                "/v1/store/dynamic",
                json!([entry(
                    "node-x",
                    Some(node_x("/zzz-equal")),
                    "${t50}",
                    Some(30000)
                )]),
            ),
        )
        .send("after the equal version", get("/v1/service/t/p"));
    s.case(53)
        .send(
            "post a newer tombstone",
            post(
                "/v1/store/dynamic",
                json!([entry("node-x", None, "${t50+1}", None)]),
            ),
        )
        .send("gone", get("/v1/service/t/p"))
        .send("tombstone", dump("dynamic", &["node-x"]));
    s.case(54)
        .send(
            "post an expired entry",
            post(
                "/v1/store/dynamic",
                json!([entry(
                    "node-y",
                    Some(json!([stored(&u(54, 1), "node-y", "t54", "p", "/l")])),
                    "${t54-60000}",
                    Some(30000)
                )]),
            )
            .at("t54"),
        )
        .send("not listed", get("/v1/service/t54"))
        .send("not stored", dump("dynamic", &["node-y"]));
    s.case(55)
        .send(
            "post an old tombstone",
            post(
                "/v1/store/dynamic",
                json!([entry("node-z", None, "${t55-172800000}", None)]),
            )
            .at("t55"),
        )
        .send("not stored", dump("dynamic", &["node-z"]));
    let valid = || {
        entry(
            "node-v",
            Some(json!([stored(&u(56, 1), "node-v", "t56", "p", "/l")])),
            "${t56}",
            Some(30000),
        )
    };
    let mut zero_age = entry("node-w", None, "${t56}", None);
    zero_age["maxAgeInMs"] = json!(0);
    let mut no_key = entry("node-w", None, "${t56}", None);
    no_key.as_object_mut().map(|o| o.remove("key"));
    let mut no_version = entry("node-w", None, "${t56}", None);
    no_version.as_object_mut().map(|o| o.remove("version"));
    s.case(56)
        .send(
            "maxAgeInMs 0",
            post("/v1/store/dynamic", json!([valid(), zero_age]))
                .at("t56")
                .check(Check::Status),
        )
        .send(
            "missing key",
            post("/v1/store/dynamic", json!([valid(), no_key]))
                .at("t56")
                .check(Check::Status),
        )
        .send(
            "missing version",
            post("/v1/store/dynamic", json!([valid(), no_version]))
                .at("t56")
                .check(Check::Status),
        )
        .send(
            "valid entry not applied",
            dump("dynamic", &["node-v", "node-w"]),
        )
        .send("not listed", get("/v1/service/t56"));
    let smile_batch = json!([
        entry(
            "node-s1",
            Some(json!([stored(
                &u(57, 1),
                "node-s1",
                "t57",
                "p",
                "/node-s1"
            )])),
            "${t57}",
            Some(30000)
        ),
        entry("node-s2", None, "${t57+1}", None),
    ]);
    s.case(57)
        .send(
            "post Smile",
            Request::new("POST", "/v1/store/dynamic", Payload::Smile(smile_batch)).at("t57"),
        )
        .send("both stored", dump("dynamic", &["node-s1", "node-s2"]))
        .send("listed", get("/v1/service/t57"));
    s.case(58)
        .send(
            "dump as Smile",
            get("/v1/store/dynamic")
                .header("accept", "application/x-jackson-smile")
                .keys(&["node-s1", "node-s2"]),
        )
        .send(
            "dump without Accept",
            get("/v1/store/dynamic").keys(&["node-s1", "node-s2"]),
        );

    // Defaults (the phase runs without overrides).
    s.case(71)
        .send(
            "announce",
            announce(
                "n71",
                ann("p", "/n71", vec![svc(&u(71, 1), "c71", http(1))]),
            ),
        )
        .send(
            "raw entry has the default max age",
            dump("dynamic", &["n71"]),
        )
        .send("unannounce", unannounce("n71"));

    // Last, so that no later lookup lists 5000 services.
    s.case(37).step(
        "announce 5000 nodes, all listed",
        Action::Bulk {
            count: 5000,
            lookup: get("/v1/service/bulk/poolA"),
        },
    );
    s.steps
}

/// The id and announcement of bulk node `index` (case 37).
pub fn bulk_node(index: usize) -> (String, Value) {
    let id = format!("00000000-0000-4000-8037-{index:012}");
    let node = format!("bulk-{index}");
    let body = ann(
        "poolA",
        &format!("/{node}"),
        vec![svc(&id, "bulk", json!({"http": "http://h"}))],
    );
    (node, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_covers_every_single_node_case() {
        let steps: Vec<Step> = phase_one().into_iter().chain(phase_two()).collect();
        let covered: std::collections::BTreeSet<u32> = steps.iter().map(|s| s.case).collect();
        let expected: std::collections::BTreeSet<u32> = (1..=58).chain([71]).collect();
        assert_eq!(covered, expected);
    }

    #[test]
    fn ids_are_uuids() {
        assert_eq!(u(7, 3), "00000000-0000-4000-8000-000007000003");
        assert!(uuid::Uuid::parse_str(&u(999_999, 999_999)).is_ok());
        let (node, body) = bulk_node(4999);
        assert_eq!(node, "bulk-4999");
        let id = body["services"][0]["id"].as_str().expect("a service id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}

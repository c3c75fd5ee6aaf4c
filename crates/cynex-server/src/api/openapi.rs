//! The OpenAPI 3.0 description of `/api/v1`, served at `/api/v1/openapi.json`. It is written here
//! by hand next to the routes (one entry per route in `api::router`; a test checks they agree)
//! and fuzzed in CI by schemathesis, which must find no server error.

use axum::Json;
use serde_json::{json, Value};

fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
        "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}})
}

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok_json(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}})
}

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn qr(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": true, "description": desc, "schema": schema})
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// Responses every authenticated endpoint may give.
fn common(mut ok: serde_json::Map<String, Value>) -> Value {
    ok.insert("400".into(), err("bad request (a parameter or the body is wrong)"));
    ok.insert("401".into(), err("not authenticated"));
    ok.insert("403".into(), err("not allowed for this account"));
    ok.insert("404".into(), err("not found (or not visible to this account)"));
    ok.insert("422".into(), err("well-formed but not processable"));
    ok.insert("503".into(), err("busy: retry later"));
    Value::Object(ok)
}

fn op(summary: &str, tag: &str, params: Vec<Value>, ok_code: &str, ok_desc: &str) -> Value {
    let mut r = serde_json::Map::new();
    r.insert(ok_code.into(), if ok_code == "204" { json!({"description": ok_desc}) } else { ok_json(ok_desc) });
    json!({"summary": summary, "tags": [tag], "parameters": params, "responses": common(r)})
}

fn with_body(mut o: Value, b: Value) -> Value {
    o["requestBody"] = b;
    o
}

fn time() -> Value {
    json!({"type": "string", "description": "RFC 3339 time or a date", "example": "2026-11-01T00:00:00Z"})
}

fn range_params() -> Vec<Value> {
    vec![
        q("scope", "analysis scope", json!({"type": "string", "default": "all"})),
        q("from", "start of the period (default: the last day with statistics)", time()),
        q("to", "end of the period", time()),
        q("bin", "bin size", json!({"type": "string", "enum": ["5m", "1h", "1d"]})),
        q("limit", "entries per top list", json!({"type": "integer", "minimum": 1, "maximum": 100})),
    ]
}

/// The document.
pub fn spec() -> Value {
    let paths = json!({
        "/api/v1/login": {"post": with_body(
            op("Log in: sets the session cookie and returns the CSRF token", "session", vec![], "200", "the principal"),
            body(json!({"type": "object", "required": ["user", "password"], "additionalProperties": false,
                "properties": {"user": {"type": "string"}, "password": {"type": "string"}}})))},
        "/api/v1/logout": {"post": op("End the session", "session", vec![], "204", "logged out")},
        "/api/v1/me": {"get": op("Who the caller is", "session", vec![], "200", "the principal")},
        "/api/v1/overview": {"get": op("Dashboard: time series, totals, top ports, countries, ASNs and tools", "darknet", range_params(), "200", "overview")},
        "/api/v1/stats": {"get": op("Statistics per bin", "darknet", range_params(), "200", "series")},
        "/api/v1/ports": {"get": op("Busiest ports per hour", "darknet", range_params(), "200", "ports")},
        "/api/v1/findings": {"get": op("Findings: scan events, tool attributions, backscatter attacks, port surges", "darknet", vec![
            q("scope", "analysis scope", json!({"type": "string"})),
            q("kind", "finding kind", json!({"type": "string", "enum": ["scan", "tool", "backscatter", "surge"]})),
            q("from", "overlapping from", time()), q("to", "overlapping to", time()),
            q("ip", "IPv4 address", json!({"type": "string", "format": "ipv4"})),
            q("port", "port", json!({"type": "integer", "minimum": 0, "maximum": 65535})),
            q("tool", "tool name", json!({"type": "string"})),
            q("limit", "page size", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
            q("offset", "rows to skip", json!({"type": "integer", "minimum": 0})),
        ], "200", "findings")},
        "/api/v1/findings/{id}": {"get": op("One finding with its evidence and the packets behind it", "darknet", vec![path_param("id", "finding id")], "200", "finding")},
        "/api/v1/campaigns": {"get": op("Scanning campaigns", "darknet", range_params(), "200", "campaigns")},
        "/api/v1/query": {"post": with_body(
            op("SQL over the lake (operators; SELECT only)", "darknet", vec![], "200", "columns and rows"),
            body(json!({"type": "object", "required": ["sql"], "additionalProperties": false,
                "properties": {"sql": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 10000}}})))},
        "/api/v1/live": {"get": {"summary": "Live darknet traffic as Server-Sent Events", "tags": ["darknet"],
            "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          "401": err("not authenticated")}}},
        "/api/v1/alerts": {"get": op("Member alerts (a member sees its own)", "members", vec![
            q("org", "organisation (operators)", json!({"type": "string"})),
            q("status", "status", json!({"type": "string", "enum": ["open", "acknowledged"]})),
            q("kind", "alert kind", json!({"type": "string"})),
            q("limit", "most alerts", json!({"type": "integer", "minimum": 1, "maximum": 5000})),
        ], "200", "alerts")},
        "/api/v1/alerts/{id}": {"get": op("One alert with its deliveries", "members", vec![path_param("id", "alert id")], "200", "alert")},
        "/api/v1/alerts/{id}/ack": {"post": op("Acknowledge an alert", "members", vec![path_param("id", "alert id")], "200", "alert")},
        "/api/v1/orgs": {
            "get": op("Organisations (a member sees its own)", "members", vec![], "200", "organisations"),
            "post": with_body(op("Add a member organisation (admins)", "members", vec![], "201", "added"),
                body(json!({"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "prefixes": {"type": "array", "items": {"type": "string"}}, "webhook": {"type": "string"}}})))
        },
        "/api/v1/prefixes": {
            "get": op("Registered address space", "members", vec![q("org", "organisation (operators)", json!({"type": "string"}))], "200", "prefixes"),
            "post": with_body(op("Register a prefix", "members", vec![], "201", "added"),
                body(json!({"type": "object", "required": ["prefix"], "additionalProperties": false, "properties": {
                    "prefix": {"type": "string", "example": "192.0.2.0/24"}, "org": {"type": "string"}}})))
        },
        "/api/v1/prefixes/{org}/{prefix}/{len}": {"delete": op("Remove a prefix", "members",
            vec![path_param("org", "organisation"), path_param("prefix", "network address"), path_param("len", "prefix length")], "204", "removed")},
        "/api/v1/watches": {
            "get": op("Watches", "members", vec![q("org", "organisation (operators)", json!({"type": "string"}))], "200", "watches"),
            "post": with_body(op("Add a watch", "members", vec![], "201", "added"),
                body(json!({"type": "object", "required": ["spec"], "additionalProperties": false, "properties": {
                    "spec": {"type": "string", "example": "port:23/tcp"}, "org": {"type": "string"}}})))
        },
        "/api/v1/watches/{id}": {"delete": op("Remove a watch", "members", vec![path_param("id", "watch id")], "204", "removed")},
        "/api/v1/intel/collections": {"get": op("Intelligence collections the caller may use, with what it may see counted", "intel", vec![], "200", "collections")},
        "/api/v1/intel/objects": {"get": op("A page of a collection's objects (TLP applied)", "intel", vec![
            qr("collection", "collection alias or id", json!({"type": "string"})),
            q("type", "STIX type", json!({"type": "string"})),
            q("after", "continue after this date_added (µs)", json!({"type": "integer"})),
            q("limit", "page size", json!({"type": "integer", "minimum": 1, "maximum": 500})),
        ], "200", "objects")},
        "/api/v1/intel/export": {"get": {"summary": "Indicators as a list, CSV or Suricata rules (TLP applied)", "tags": ["intel"],
            "parameters": [
                qr("format", "export format", json!({"type": "string", "enum": ["plain", "csv", "suricata"]})),
                q("collection", "comma-separated aliases", json!({"type": "string"})),
                q("max_tlp", "most restrictive TLP included", json!({"type": "string", "enum": ["clear", "green", "amber", "amber+strict", "red"]})),
            ],
            "responses": {"200": {"description": "the export", "content": {"text/plain": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}}},
                "400": err("bad request"), "401": err("not authenticated"), "404": err("no such collection")}}},
        "/api/v1/intel/correlate": {"get": op("Where an observable or indicator has shown up (TLP and membership applied)", "intel", vec![
            qr("q", "address, domain, URL, hash or indicator id", json!({"type": "string", "minLength": 1})),
            q("limit", "most results per part", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        ], "200", "correlation")},
        "/api/v1/ingest/{format}": {"post": {"summary": "Push a sensor log or capture (member token); same quarantine rules as `cynex ingest`", "tags": ["ingest"],
            "parameters": [path_param("format", "eve, zeek, cowrie, pcap or auto"), qr("sensor", "sending sensor's name", json!({"type": "string"}))],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": ok_json("counts: read = written + quarantined"), "400": err("bad request"), "401": err("not authenticated"),
                "413": err("body too large"), "422": err("not a readable input")}}},
    });
    json!({
        "openapi": "3.0.3",
        "info": {"title": "cynex API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The cybersecurity nexus: darknet statistics and findings, member alerts, intelligence. \
                                 Authenticate with a session cookie (web UI, with X-CSRF-Token on changes) or a bearer API token."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cynex_session"}
            },
            "schemas": {"Error": error_schema()}
        },
        "paths": paths,
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(spec())
}

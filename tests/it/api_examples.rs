//! The OpenAPI document against what the handlers return: every documented
//! example validates against its own schema, and every operation (with its
//! documented request example as the body) is run through the live server,
//! whose answer must have a documented status and validate against the
//! schema documented for it (JSON Schema 2020-12, `$ref`s resolved into
//! the document's components).

use serde_json::{json, Value};

use crate::support::api::{token, Server};

fn document() -> Value {
    serde_json::from_str(include_str!("../../src/api/openapi.json")).unwrap()
}

/// A validator for `schema` whose `#/components/…` references resolve
/// into `doc`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema {schema}: {e}"))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every operation: (method, path, operation object).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

/// Every media type of the document: (where, media type object): request
/// bodies and inline responses of each operation, then the shared
/// responses of `components` (once each, not at every `$ref`).
fn media(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (method, path, op) in operations(doc) {
        if let Some(c) = op["requestBody"]["content"].as_object() {
            for (ty, m) in c {
                out.push((format!("{method} {path} request {ty}"), m.clone()));
            }
        }
        for (status, r) in op["responses"].as_object().unwrap() {
            if let Some(c) = r["content"].as_object() {
                for (ty, m) in c {
                    out.push((format!("{method} {path} {status} {ty}"), m.clone()));
                }
            }
        }
    }
    for (name, r) in doc["components"]["responses"].as_object().unwrap() {
        if let Some(c) = r["content"].as_object() {
            for (ty, m) in c {
                out.push((format!("components/responses/{name} {ty}"), m.clone()));
            }
        }
    }
    out
}

#[test]
fn every_documented_example_fits_its_schema() {
    let doc = document();
    let mut n = 0;
    for (at, m) in media(&doc) {
        if let Some(ex) = m.get("example") {
            let errs = errors(&validator(&doc, &m["schema"]), ex);
            assert!(errs.is_empty(), "{at}: example {ex}: {errs:?}");
            n += 1;
        }
    }
    assert!(n >= 34, "only {n} examples");
}

/// Every request body, and every response body with a schema (each 2xx
/// answer and the shared `Problem`), is documented with an example.
#[test]
fn every_request_and_response_body_has_an_example() {
    let doc = document();
    for (at, m) in media(&doc) {
        if at.contains(" request ") || m.get("schema").is_some() {
            assert!(m.get("example").is_some(), "{at}: no example");
        }
    }
}

#[tokio::test]
async fn every_operation_answers_as_documented() {
    let doc = document();
    let s = Server::start(|_| {}).await;
    let tok = token("REGRU-RU");
    let own = s.domains_of("REGRU-RU", 1).remove(0);
    // Reads first, then writes in document order; whatever the status (a
    // rule may refuse an example in this state), it must be documented
    // and its body must fit the documented schema.
    let mut ops = operations(&doc);
    ops.sort_by_key(|(m, _, _)| m != "GET");
    let mut checked = 0;
    for (method, path, op) in ops {
        let url = s.url(&path.replace("{name}", &own));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = s.http.request(m, &url).bearer_auth(&tok);
        if let Some(ex) = op["requestBody"]["content"]["application/json"].get("example") {
            req = req.json(ex);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16().to_string();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let id = op["operationId"].as_str().unwrap();
        let documented = &op["responses"][&status];
        assert!(
            !documented.is_null(),
            "{id}: status {status} is not documented: {body}"
        );
        let documented = match documented["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                doc["components"]["responses"][name].clone()
            }
            None => documented.clone(),
        };
        if path.ends_with("openapi.json") {
            // The document itself (its validity: api::served_openapi_…).
            continue;
        }
        let schema = &documented["content"][&ct]["schema"];
        assert!(
            !schema.is_null(),
            "{id}: {status} answered {ct}, not documented"
        );
        let errs = errors(&validator(&doc, schema), &body);
        assert!(errs.is_empty(), "{id} ({status}): {body}\n{errs:#?}");
        // A documented example has the members the live answer has (the
        // schemas allow extra members, so only this keeps examples honest).
        if let (Some(ex), Some(live)) = (
            documented["content"][&ct]["example"].as_object(),
            body.as_object(),
        ) {
            let ex: Vec<&String> = ex.keys().collect();
            let live: Vec<&String> = live.keys().collect();
            assert_eq!(
                ex, live,
                "{id} ({status}): example members differ from the answer's"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} operations checked");
}

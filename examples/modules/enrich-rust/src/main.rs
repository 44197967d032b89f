// The guide's "enrich" example in Rust: reads {"payload": {...}, "headers": {...}, "direction": ...}
// on stdin, adds "processed_by" and "timestamp" to the payload and "X-WASM-Processed" to the
// headers, and writes {"payload": ..., "headers": ...} and a newline to stdout. Exits 1 on input
// it cannot use, like the Go original.
//
// Build (needs the wasm32-wasip1 standard library and crates.io):
//   rustup target add wasm32-wasip1
//   cargo build --target wasm32-wasip1 --release
//   cp target/wasm32-wasip1/release/enrich.wasm .
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::process::exit;

use serde_json::{json, Map, Value};

fn main() {
    let mut input = String::new();
    if io::stdin().read_to_string(&mut input).is_err() {
        exit(1);
    }
    let request: Value = serde_json::from_str(&input).unwrap_or_else(|_| exit(1));

    // The payload must be a JSON object (the Go original decodes it into a map).
    let mut payload: Map<String, Value> = match request.get("payload") {
        Some(Value::Object(members)) => members.clone(),
        _ => exit(1),
    };
    // Headers are strings; missing or null headers start empty.
    let mut headers: BTreeMap<String, String> = match request.get("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(value) => serde_json::from_value(value.clone()).unwrap_or_else(|_| exit(1)),
    };

    // Your transformation logic here
    payload.insert("processed_by".to_string(), json!("wasm-module"));
    payload.insert("timestamp".to_string(), json!("2024-01-15T10:00:00Z"));
    headers.insert("X-WASM-Processed".to_string(), "true".to_string());

    // Written field by field: a json! object would sort "headers" before "payload".
    let (Ok(payload), Ok(headers)) = (serde_json::to_string(&payload), serde_json::to_string(&headers)) else {
        exit(1);
    };
    let line = format!("{{\"payload\":{payload},\"headers\":{headers}}}\n");
    if io::stdout().lock().write_all(line.as_bytes()).is_err() {
        exit(1);
    }
}

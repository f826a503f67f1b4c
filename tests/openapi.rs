//! `standard/openapi.yaml` passes an independent OpenAPI 3.1 validator, and the valid
//! fixtures validate against its schemas with an independent JSON Schema implementation.

use std::process::Command;

use crate::support::{python_with, root};

const CHECK: &str = r#"
import json, sys, tomllib, pathlib
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
import jsonschema, referencing
doc, _ = read_from_filename(sys.argv[1])
validate(doc)
# Each valid fixture against its component schema, by a JSON Schema 2020-12 validator.
schemas = doc["components"]["schemas"]
registry = referencing.Registry().with_resource(
    "urn:openapi", referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT202012))
cases = tomllib.loads(pathlib.Path(sys.argv[2], "cases.toml").read_text())["case"]
checked = 0
for c in cases:
    if c["expect"] != "0":
        continue
    name = c["service"][0].upper() + c["service"][1:] + ("Response" if c.get("response") else "Request")
    schema = {"$ref": "urn:openapi#/components/schemas/" + name}
    msg = json.loads(pathlib.Path(sys.argv[2], c["file"]).read_text())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(msg)
    checked += 1
print(f"openapi valid; {checked} valid fixtures validate against it")
"#;

#[test]
fn openapi_document_passes_an_openapi_31_validator() {
    let py = python_with("openapi_spec_validator", "openapi-spec-validator");
    let out = Command::new(py)
        .args(["-c", CHECK])
        .arg(root().join("standard/openapi.yaml"))
        .arg(root().join("tests/fixtures/validate"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("valid fixtures validate"), "{text}");
}

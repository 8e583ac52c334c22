//! The JSON Schema agrees with the loader: the examples (as written, and as the model serializes
//! them) validate against it, and typical mistakes are rejected by both.

use std::path::{Path, PathBuf};

use crosslink_desired::{Document, json_schema, load, load_str, node::parse_documents};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/examples")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn examples_as_written_validate_against_the_schema() {
    let v = validator();
    let mut files = Vec::new();
    yaml_files(&examples(), &mut files);
    assert!(files.len() >= 5);
    for f in files {
        for doc in parse_documents(&std::fs::read_to_string(&f).unwrap()).unwrap() {
            let json = doc.to_json();
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        }
    }
}

#[test]
fn the_model_serializes_to_schema_valid_documents() {
    let v = validator();
    let state = load(&[examples()]).unwrap();
    let docs = state
        .accounts
        .iter()
        .cloned()
        .map(Document::Account)
        .chain(state.gateways.iter().cloned().map(Document::Gateway))
        .chain(state.links.iter().cloned().map(Document::Link));
    for d in docs {
        let json = serde_json::to_value(&d).unwrap();
        let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{json}: {errors:?}");
    }
}

#[test]
fn schema_and_loader_both_reject_unknown_fields_and_bad_kinds() {
    let v = validator();
    let bad = [
        "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {accountId: \"111111111111\", region: eu-central-1, colour: red}\n",
        "apiVersion: crosslink.dev/v1alpha1\nkind: Acount\nmetadata: {name: a}\nspec: {accountId: \"111111111111\", region: eu-central-1}\n",
        "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {region: eu-central-1}\n",
    ];
    for text in bad {
        let doc = &parse_documents(text).unwrap()[0];
        assert!(!v.is_valid(&doc.to_json()), "schema accepted {text}");
        assert!(load_str(Path::new("x.yaml"), text).is_err(), "loader accepted {text}");
    }
}

#[test]
fn loader_survives_hostile_trees() {
    let dir = std::env::temp_dir().join(format!("crosslink-desired-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub/.git")).unwrap();
    std::fs::write(dir.join("sub/.git/ignored.yaml"), "not: [valid").unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
    std::fs::write(dir.join("bad.yaml"), b"kind: Account\nmetadata: {name: \xff}\n").unwrap();
    let err = load(std::slice::from_ref(&dir)).unwrap_err().to_string();
    assert!(err.contains("symlink loop"), "{err}");
    assert!(err.contains("bad.yaml:2:18: the file is not UTF-8"), "{err}");
    assert!(!err.contains("ignored.yaml"), "hidden directories are skipped: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn billion_laughs_fails_fast() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let start = std::time::Instant::now();
    let err = load_str(Path::new("laughs.yaml"), &text).unwrap_err();
    assert!(err.to_string().contains("laughs.yaml"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
}

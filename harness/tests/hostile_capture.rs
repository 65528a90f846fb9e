//! Damaged captures in `corpora/hostile/`: the flow table and diagnostics
//! tether gives for each, as golden snapshots. Nothing panics, everything
//! readable is kept, every diagnostic is located.

use std::path::Path;
use tether::decode::pipeline::{DecodeOptions, decode_capture, flow_table};
use tether::flow::FlowConfig;

fn hostile_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/hostile");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_captures_give_located_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/hostile");
    let files = hostile_files();
    assert!(files.len() >= 15, "{files:?}");
    for name in files {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let value = match flow_table(&bytes[..], &name, FlowConfig::default()) {
            Ok(t) => {
                for d in &t.diagnostics {
                    assert!(
                        d.location.frame.is_some() && d.location.file_offset.is_some()
                            || d.location.connection.is_some(),
                        "{name}: unlocated {d}"
                    );
                }
                serde_json::json!({ "rows": t.rows, "stats": t.stats, "diagnostics": t.diagnostics })
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        // The full decode must survive the same bytes.
        let _ = decode_capture(&bytes[..], &name, DecodeOptions::default());
        insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(format!("hostile_capture__{name}"), value);
        });
    }
}

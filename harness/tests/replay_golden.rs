//! Every replay spec in `replays/`: its verdict is an insta snapshot in
//! `golden/replay__<spec>.snap` (review changes with `cargo insta review`),
//! its expectations hold, and `tether replay`'s own comparison agrees.

use std::path::Path;
use tether::replay::spec::{
    GoldenStatus, check_expectations, collect_specs, compare_golden, load_spec, run_spec,
    snapshot_name,
};

#[test]
fn replay_verdicts_match_golden_and_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let specs = collect_specs(&[root.join("replays")]).unwrap();
    assert!(specs.len() >= 10, "{specs:?}");
    let golden = root.join("golden");
    for path in specs {
        let spec = load_spec(&path).unwrap();
        let verdict = run_spec(&spec).unwrap();
        let json = verdict.to_json();
        let name = snapshot_name(&spec);
        insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false, description => spec.spec.description.clone() }, {
            insta::assert_snapshot!(name.clone(), json);
        });
        let failed = check_expectations(&spec, &verdict).unwrap();
        assert!(failed.is_empty(), "{}: {failed:?}", spec.name);
        assert_eq!(
            compare_golden(&golden, &name, &json, &spec.spec.description, false)
                .unwrap()
                .status,
            GoldenStatus::Matched,
            "{name}: tether replay disagrees with insta about the snapshot"
        );
    }
}

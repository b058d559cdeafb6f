//! Every config file shipped in `config/` loads.
use std::path::Path;

#[test]
fn every_shipped_config_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir("config").expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            zonekeeper::config::Config::load(Path::new(&path))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 2, "expected the dev and production configs");
}

use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn defaults_are_the_regulation() {
    let c = Config::default();
    assert_eq!(c.delegation.test_window, Duration::from_secs(4 * 86400));
    assert_eq!(c.delegation.downtime_budget, Duration::from_secs(7200));
    assert_eq!(c.lifecycle.registration_period, Months(12));
    assert_eq!(c.whois.rate_limit_per_minute, 30);
    c.validate().unwrap();
}

#[test]
fn human_durations_and_unknown_keys() {
    let c = Config::from_toml(
        "[delegation]\ntest_window = \"4s\"\nprobe_interval = \"250ms\"\n[lifecycle]\nregistration_period = \"2y\"\n",
        Path::new("t"),
    )
    .unwrap();
    assert_eq!(c.delegation.test_window, Duration::from_secs(4));
    assert_eq!(c.delegation.probe_interval, Duration::from_millis(250));
    assert_eq!(c.lifecycle.registration_period, Months(24));
    let e = Config::from_toml("[delegation]\ntest_windw = \"4s\"\n", Path::new("t"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("test_windw"), "{e}");
    let e = Config::from_toml(
        "[delegation]\ntest_window = \"four days\"\n",
        Path::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("four days"), "{e}");
    assert!(Config::from_toml("[delegation]\nmin_nameservers = 1\n", Path::new("t")).is_err());
    assert!(Config::from_toml("zones = [\"r_u\"]\n", Path::new("t")).is_err());
}

//! Writes a synthetic registry (import JSON) to stdout:
//! `zonekeeper-synth DOMAINS [SEED]`. Used for the sample in `fixtures/`
//! and the benchmarks' large registries.
use std::io::Write;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let n = args.next().and_then(|a| a.parse::<usize>().ok());
    let seed = args.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(1);
    let Some(n) = n else {
        eprintln!("usage: zonekeeper-synth DOMAINS [SEED]");
        return std::process::ExitCode::from(2);
    };
    let text = zonekeeper::synth::generate(n, seed);
    if std::io::stdout().write_all(text.as_bytes()).is_err() {
        return std::process::ExitCode::from(2);
    }
    std::process::ExitCode::SUCCESS
}

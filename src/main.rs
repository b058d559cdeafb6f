//! `zonekeeper` binary: parses the command line and hands over to
//! [`zonekeeper::cli`]. Exit codes: 0 success, 1 check failed, 2 error.

fn main() -> std::process::ExitCode {
    zonekeeper::limit_malloc_arenas();
    zonekeeper::cli::main()
}

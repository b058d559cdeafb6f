//! Command line (docs/cli.md). Each subcommand is a thin adapter: parse
//! flags, load config, open the store, call the module that does the work,
//! map the outcome to an exit code (0 ok, 1 check failed, 2 bad input or
//! error). Only this edge knows [`Fail`]; the library returns typed errors.
//!
//! - [`check`]: `check` (one-shot readiness check, no store).
//! - [`serve`]: `serve` (config overrides, store, import, demo, then
//!   [`crate::server`]).
//! - `operator`: `domain …`, `retest`, `hold`, `release`, `transfers`,
//!   `reseller move`, offline or through the control socket.
//! - `backup`: `store backup` (offline or through the control socket).
//! - `common`: [`Fail`], `--db` ([`DbArg`]) and [`open_store`], shared by
//!   the subcommands.
//! - here: `import`, `zone export`, `store check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backup;
pub mod check;
mod common;
mod operator;
pub mod serve;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::control::Request;
pub(crate) use common::open_store_raw;
pub use common::{open_store, DbArg, Fail};
pub use operator::DomainCommand;
pub use serve::ServeArgs;

#[derive(Parser)]
#[command(
    name = "zonekeeper",
    version,
    about = "ccTLD delegation verifier and WHOIS/RDAP server"
)]
pub struct Cli {
    /// Config file (TOML). Default: config/zonekeeper.toml if it exists.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// One-shot readiness check of a declared nameserver set.
    Check(check::CheckArgs),
    /// Run scheduler, WHOIS, RDAP, API, metrics and dashboard.
    Serve(ServeArgs),
    /// Load registry data (JSON, docs/import.md); all or nothing.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Parent zone operations.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Restart testing of a domain (after test_failed).
    Retest {
        domain: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Domain operations for operators.
    Domain {
        #[command(subcommand)]
        command: DomainCommand,
    },
    /// Put a domain on hold (dispute): out of the zone, no changes.
    Hold {
        domain: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Store maintenance.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Release a domain from hold.
    Release {
        domain: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List pending registrar changes.
    Transfers {
        #[command(flatten)]
        db: DbArg,
    },
    /// Reseller operations.
    Reseller {
        #[command(subcommand)]
        command: ResellerCommand,
    },
    /// Registrar operations.
    Registrar {
        #[command(subcommand)]
        command: RegistrarCommand,
    },
}

#[derive(Subcommand)]
pub enum RegistrarCommand {
    /// Set or remove the registrar's webhook (docs/api.md, "Webhooks").
    Webhook {
        handle: String,
        /// The https:// URL events are POSTed to (http:// only to a
        /// loopback address).
        #[arg(long, requires = "secret_file", conflicts_with = "clear")]
        url: Option<String>,
        /// A file holding the signing secret (first line; kept off the
        /// command line, where other users could read it).
        #[arg(long, requires = "url", conflicts_with = "clear")]
        secret_file: Option<PathBuf>,
        /// Remove the webhook.
        #[arg(long, required_unless_present = "url")]
        clear: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
pub enum ZoneCommand {
    /// Print the zone's delegations as an RFC 1035 zone file.
    Export {
        #[command(flatten)]
        db: DbArg,
        /// Zone to export (default: the first configured zone).
        #[arg(long)]
        zone: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Check every invariant between records and indexes (exit 1 on problems).
    Check {
        #[command(flatten)]
        db: DbArg,
    },
    /// Write a consistent copy of the redb store to DEST (a new file),
    /// while `serve` runs (through its control socket) or not; the copy is
    /// checked like `store check` before it is renamed into place.
    /// PostgreSQL: use pg_dump (docs/operations.md).
    Backup {
        /// The copy to write; refused if it exists (unless --force).
        dest: PathBuf,
        /// Replace DEST if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
pub enum ResellerCommand {
    /// Move every domain of a reseller to another registrar (one
    /// transaction, one history event per domain).
    Move {
        reseller: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        db: DbArg,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            // Messages quote input (file contents, names, config values):
            // escaped so they cannot drive the terminal. Line feeds stay for
            // the import report, whose lines are escaped one by one.
            eprintln!("zonekeeper: {}", crate::text::escape_keeping_newlines(&msg));
            ExitCode::from(2)
        }
    }
}

pub fn load_config(path: Option<&Path>) -> Result<Config, Fail> {
    Ok(Config::load_or_default(path)?)
}

fn run(cli: Cli) -> Result<ExitCode, Fail> {
    let cfg = load_config(cli.config.as_deref())?;
    let clock = SystemClock;
    match cli.command {
        Command::Check(args) => check::run(cfg, args),
        Command::Serve(args) => serve::run(cfg, args),
        Command::Import { file, db } => {
            // Validate the file before the store is even opened.
            let now = clock.now();
            let result = match crate::import::spool_file(&file, &cfg, now) {
                Ok(spooled) => {
                    // The import's own cache, not the front end's (see
                    // IMPORT_CACHE_MIB for the trade): a serving default
                    // sized for answer caches would halve a bulk write.
                    let mut import_cfg = cfg.clone();
                    import_cfg.store.cache_mib = crate::import::IMPORT_CACHE_MIB;
                    let mut store = open_store_raw(&import_cfg, &db).map_err(|e| {
                        operator::need_store(
                            e,
                            "stop it to import, or restart it with `zonekeeper serve --import FILE`",
                        )
                    })?;
                    let r = crate::import::apply_spooled(&*store, &spooled, &cfg, now);
                    if let Ok(s) = &r {
                        if s.domains - s.unchanged >= crate::import::COMPACT_AFTER_DOMAINS {
                            store.compact()?;
                        }
                    }
                    r
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(s) => {
                    println!(
                        "imported {} registrars, {} contacts, {} domains ({} unchanged, {} tests started)",
                        s.registrars, s.contacts, s.domains, s.unchanged, s.tests_started
                    );
                    for f in &s.flagged {
                        eprintln!("zonekeeper: warning: {}", crate::text::escape(f));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    // Multi-line: the first line is the summary, then one
                    // line per record (each escaped; see main).
                    eprintln!(
                        "zonekeeper: {}",
                        crate::text::escape_keeping_newlines(&e.to_string())
                    );
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Zone {
            command: ZoneCommand::Export { db, zone },
        } => {
            let store = open_store_raw(&cfg, &db).map_err(|e| {
                operator::need_store(
                    e,
                    "it writes the zone file itself (zone.output); stop it to export",
                )
            })?;
            let zone = match zone {
                Some(z) => z,
                None => cfg.zones.first().cloned().unwrap_or_default(),
            };
            let now = clock.now();
            let text = crate::zone::render(
                &*store,
                &cfg,
                &zone,
                now,
                crate::zone::next_serial(None, now),
            )?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Retest { domain, db } => operator::operator(&cfg, &db, &domain, Request::Retest),
        Command::Domain { command } => operator::domain(&cfg, command),
        Command::Transfers { db } => {
            operator::operator_raw(&cfg, &db, String::new(), Request::Transfers)
        }
        Command::Reseller {
            command: ResellerCommand::Move { reseller, to, db },
        } => operator::operator_raw(&cfg, &db, reseller, Request::MoveReseller { to }),
        Command::Registrar {
            command:
                RegistrarCommand::Webhook {
                    handle,
                    url,
                    secret_file,
                    clear: _,
                    db,
                },
        } => {
            let secret = match secret_file {
                Some(f) => {
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| Fail(format!("cannot read {}: {e}", f.display())))?;
                    Some(text.lines().next().unwrap_or_default().trim().to_string())
                }
                None => None,
            };
            operator::operator_raw(&cfg, &db, handle, Request::Webhook { url, secret })
        }
        Command::Hold { domain, reason, db } => {
            operator::operator(&cfg, &db, &domain, Request::Hold { reason })
        }
        Command::Store {
            command: StoreCommand::Check { db },
        } => {
            let store = open_store(&cfg, &db)?;
            let problems = store.verify()?;
            let stats = store.stats()?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!(
                    "consistent: {} domains, {} contacts, {} registrars, {} hosts",
                    stats.domains, stats.contacts, stats.registrars, stats.hosts
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{} problem(s)", problems.len());
                Ok(ExitCode::from(1))
            }
        }
        Command::Store {
            command: StoreCommand::Backup { dest, force, db },
        } => backup::run(&cfg, &db, &dest, force),
        Command::Release { domain, db } => operator::operator(&cfg, &db, &domain, Request::Release),
    }
}

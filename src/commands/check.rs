//! `freshd check`: validate the config and say what is missing.

use super::*;

pub async fn check(path: &Path) -> u8 {
    let config = match Config::load(path, crate::jobs::TYPES) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CONFIG;
        }
    };
    println!("{}: ok", path.display());
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    println!(
        "daemon: time zone {}, secrets {}, state directory {}, control socket {}",
        config.daemon.timezone_name,
        config.daemon.secrets,
        daemon::state_dir_text(&config),
        daemon::socket_text(&config)
    );
    println!("accounts:");
    let http = crate::http::token_client().unwrap_or_default();
    for a in config.accounts.values() {
        let provider = a.provider.map_or("custom", |p| p.as_str());
        println!(
            "  {:<16} {provider}, refreshed {} before expiry",
            a.name,
            config::format_duration(a.refresh_before_expiry)
        );
        print!(
            "{}",
            crate::oauth::discovery::check_report(a, daemon::state_dir(&config), &http).await
        );
    }
    print_jobs(&config);
    0
}

/// Each job, with its next three runs in its time zone.
fn print_jobs(config: &Config) {
    println!("jobs:");
    let now = jiff::Timestamp::now();
    for j in config.jobs.values() {
        println!(
            "  {:<16} {} on {}, {}",
            j.name,
            j.kind.type_name(),
            j.account,
            j.trigger
        );
        let zone = match &j.trigger {
            config::Trigger::Cron { timezone, .. } => timezone.clone(),
            config::Trigger::Every(_) => config.daemon.timezone.clone(),
        };
        let next: Vec<String> = j
            .trigger
            .upcoming(now, 3)
            .into_iter()
            .map(|t| {
                t.to_zoned(zone.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            })
            .collect();
        println!("    next runs: {}", next.join(", "));
    }
}

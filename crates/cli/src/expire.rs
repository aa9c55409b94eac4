//! `hush expire`: applies every deletion that is due, says what it did, and exits.
//!
//! Made for a timer unit or cron (see `contrib/systemd/` and `docs/deletion.md`): while no
//! client runs, expired messages stay on disk until something opens the home, and this is the
//! something. Opening already deletes what lapsed; the command then retries the deletions
//! owed to relays, within the one-shot patience. A relay out of reach is a warning, not a
//! failure: the local part is done, and the next run retries the rest.
//!
//! What it does not do: receive, show or send anything, or wait for a relay beyond
//! [`NETWORK_PATIENCE`].

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use hush_client::{Client, ExpiryReport};
use serde::Serialize;

/// The longest `hush expire` spends on relays: about the one-shot patience (two connection
/// attempts of 3 s to a relay), plus the deletions themselves.
const NETWORK_PATIENCE: Duration = Duration::from_secs(10);

/// What `hush expire --json` prints: one line, counts only.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct ExpiredOut {
    /// Always `expired`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Messages deleted because their time ran out.
    messages: usize,
    /// Blob deletions a relay confirmed.
    relay_deletions_done: usize,
    /// Blob deletions still owed to a relay that could not be reached.
    relay_deletions_owed: usize,
}

impl ExpiredOut {
    fn from_report(report: &ExpiryReport) -> ExpiredOut {
        ExpiredOut {
            kind: "expired",
            messages: report.messages_expired,
            relay_deletions_done: report.relay_deletions_done,
            relay_deletions_owed: report.relay_deletions_owed,
        }
    }

    /// The line for people.
    fn text(&self) -> String {
        format!(
            "expired {}; {} done, {} still owed",
            plural(self.messages, "message"),
            plural(self.relay_deletions_done, "relay deletion"),
            self.relay_deletions_owed
        )
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The warning for deletions that stay owed, naming the relays they wait for.
fn owed_warning(report: &ExpiryReport) -> Option<String> {
    if report.relay_deletions_owed == 0 {
        return None;
    }
    let relays: Vec<String> = report.owed_relays.iter().map(ToString::to_string).collect();
    let to = if relays.is_empty() {
        String::new()
    } else {
        format!(" to {}", relays.join(", "))
    };
    Some(format!(
        "{} stay owed{to}: the relay could not be reached. The local deletions are done; the next `hush expire` retries these",
        plural(report.relay_deletions_owed, "relay deletion")
    ))
}

/// Runs `hush expire` on an open client.
pub(crate) async fn run(client: &Client, json: bool) -> Result<()> {
    let report = client.expire(NETWORK_PATIENCE).await?;
    if let Some(warning) = owed_warning(&report) {
        eprintln!("hush: warning: {warning}");
    }
    let out = ExpiredOut::from_report(&report);
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, &out)?;
        stdout.write_all(b"\n")?;
    } else {
        writeln!(stdout, "{}", out.text())?;
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(expired: usize, done: usize, owed: usize) -> ExpiryReport {
        let mut r = ExpiryReport::default();
        r.messages_expired = expired;
        r.relay_deletions_done = done;
        r.relay_deletions_owed = owed;
        r
    }

    #[test]
    fn prints_counts_only() {
        let out = ExpiredOut::from_report(&report(1, 2, 0));
        assert_eq!(
            out.text(),
            "expired 1 message; 2 relay deletions done, 0 still owed"
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "expired", "messages": 1, "relay_deletions_done": 2,
                "relay_deletions_owed": 0})
        );
    }

    #[test]
    fn warns_only_about_what_stays_owed() {
        assert_eq!(owed_warning(&report(3, 1, 0)), None);
        let mut r = report(0, 0, 2);
        let relay = format!("hush://relay.example:4433#{}", "ab".repeat(32));
        r.owed_relays = vec![relay.parse().unwrap()];
        let w = owed_warning(&r).unwrap();
        assert!(
            w.starts_with("2 relay deletions stay owed to hush://relay.example:4433"),
            "{w}"
        );
    }
}

//! `hush-bench group`: what a group message costs its author. One owner and `--members - 1`
//! members (each a `Client` with its own home, all in this process, every member a contact of
//! the owner) on one relay; the owner sends `--runs` texts of `--message-size` bytes to the
//! group, then a file of `--file-size` bytes to a group of the first `--file-members`.
//!
//! Each send is timed from the call to its return (every member's copy sealed and accepted by
//! the relay), with this process's CPU time over the same span (the members are idle: they do
//! not receive until the end). The envelopes are counted from what the call reports reached.
//! The file is uploaded once; one member saves it and its SHA-256 is checked.
//!
//! What it does not do: receive while timing (delivery to n members is n 1:1 deliveries), or
//! run anywhere but loopback.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, TransferProgress};
use hush_protocol::RelayAddress;
use serde_json::json;

use crate::file::{hash_file, parse_size, start_relay, write_source};
use crate::target::RelaySource;
use crate::{procfs, report};

/// Arguments of `hush-bench group`.
#[derive(Args, Debug)]
pub(crate) struct GroupArgs {
    /// Members of the group, the owner included
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Bytes of each text sent to the group
    #[arg(long, default_value_t = 256)]
    message_size: usize,
    /// Texts sent (the median is reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Members of the group the file goes to, the owner included (0: no file)
    #[arg(long, default_value_t = 10)]
    file_members: usize,
    /// Size of the file, e.g. 100MiB
    #[arg(long, default_value = "100MiB", value_parser = parse_size)]
    file_size: u64,
    #[command(flatten)]
    source: RelaySource,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// One timed send.
struct Timed {
    wall: Duration,
    cpu: Option<Duration>,
    envelopes: usize,
}

/// The owner and its contacts `m1`, `m2`, ... in homes under `dir`.
async fn people(
    relay: &RelayAddress,
    dir: &Path,
    n: usize,
) -> anyhow::Result<(Client, Vec<Client>)> {
    let init = |name: String| async move {
        Client::init(&dir.join(&name), &name, relay.clone(), KeySource::KeyFile)
            .await
            .with_context(|| format!("creating {name}'s home"))
    };
    let owner = init("owner".into()).await?;
    let mut members = Vec::new();
    for i in 1..n {
        let member = init(format!("m{i}")).await?;
        let token = owner.invite(&format!("m{i}")).await?;
        member.accept(&token, "owner").await?;
        members.push(member);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while owner.contacts().await.len() < n - 1 {
        owner.receive(None, Some(Duration::from_secs(1))).await?;
        if Instant::now() > deadline {
            bail!("not every member's answer to its invitation arrived");
        }
    }
    Ok((owner, members))
}

/// Times `send`, with this process's CPU time over it.
async fn timed<F: std::future::Future<Output = anyhow::Result<usize>>>(
    send: F,
) -> anyhow::Result<Timed> {
    let pid = std::process::id();
    let cpu0 = procfs::cpu_time(pid);
    let start = Instant::now();
    let envelopes = send.await?;
    let wall = start.elapsed();
    let cpu = procfs::cpu_time(pid)
        .zip(cpu0)
        .map(|(b, a)| b.saturating_sub(a));
    Ok(Timed {
        wall,
        cpu,
        envelopes,
    })
}

/// Receives on `member` until a group message arrives; returns its id.
async fn group_message(member: &Client) -> anyhow::Result<hush_client::conversation::MessageId> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for e in member.receive(None, Some(Duration::from_secs(5))).await? {
            if let ClientEvent::Message { message, .. } = e {
                if message.group.is_some() && message.file.is_some() {
                    return Ok(message.id);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the file message never arrived");
        }
    }
}

/// Runs the benchmark.
pub(crate) async fn run(a: GroupArgs) -> anyhow::Result<ExitCode> {
    if a.members < 2 || a.file_members > a.members {
        bail!("--members must be at least 2 and at least --file-members");
    }
    let machine = procfs::machine();
    let work = tempfile::tempdir()?;
    let (relay, server, _) = start_relay(&a.source, a.file_size, None).await?;
    let (owner, members) = people(&relay, work.path(), a.members).await?;
    let names: Vec<String> = (1..a.members).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    owner.create_group("bench", None).await?;
    owner.add_to_group("bench", &refs).await?;
    let text = "x".repeat(a.message_size);
    let mut texts = Vec::new();
    for _ in 0..a.runs.max(1) {
        texts.push(
            timed(async {
                let sent = owner.send_group_text("bench", &text, None, false).await?;
                Ok(sent.reached.len())
            })
            .await?,
        );
    }
    let file = if a.file_members >= 2 {
        owner.create_group("bench-file", None).await?;
        owner
            .add_to_group("bench-file", &refs[..a.file_members - 1])
            .await?;
        let src = work.path().join("source.bin");
        let want = write_source(&src, a.file_size)?;
        let t = timed(async {
            let sent = owner
                .send_group_file("bench-file", &src, None, false, &|_: TransferProgress| {})
                .await?;
            Ok(sent.reached.len())
        })
        .await?;
        let id = group_message(&members[0]).await?;
        let out = work.path().join("saved.bin");
        members[0]
            .save_file(id, &out, &|_: TransferProgress| {})
            .await?;
        Some((t, hash_file(&out)? == want))
    } else {
        None
    };
    owner.close().await;
    for m in members {
        m.close().await;
    }
    if let Some(server) = server {
        server.stop().await.context("stopping the relay")?;
    }
    texts.sort_by_key(|t| t.wall);
    let median = &texts[texts.len() / 2];
    let load_end = procfs::load_average();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu_ms = |t: &Timed| t.cpu.map(ms);
    if a.json {
        println!(
            "{}",
            json!({
                "command": "group",
                "commit": report::commit(),
                "machine": machine,
                "load_average_1m_end": load_end,
                "members": a.members,
                "message_bytes": a.message_size,
                "runs": texts.len(),
                "text_wall_ms_median": ms(median.wall),
                "text_cpu_ms_median_run": cpu_ms(median),
                "text_envelopes": median.envelopes,
                "file_members": a.file_members,
                "file_bytes": a.file_size,
                "file_wall_ms": file.as_ref().map(|(t, _)| ms(t.wall)),
                "file_cpu_ms": file.as_ref().and_then(|(t, _)| cpu_ms(t)),
                "file_envelopes": file.as_ref().map(|(t, _)| t.envelopes),
                "file_intact": file.as_ref().map(|(_, ok)| *ok),
            })
        );
    } else {
        println!(
            "hush-bench group: machine {machine}; load average {} -> {}",
            machine["load_average_1m"],
            load_end.map(|l| l.to_string()).unwrap_or_default()
        );
        println!(
            "{} B text to {} members: {:.1} ms wall (median of {}; min {:.1}, max {:.1}), {} ms CPU, {} envelopes",
            a.message_size,
            a.members,
            ms(median.wall),
            texts.len(),
            ms(texts[0].wall),
            ms(texts[texts.len() - 1].wall),
            cpu_ms(median).map_or("n/a".into(), |c| format!("{c:.0}")),
            median.envelopes
        );
        if let Some((t, ok)) = &file {
            println!(
                "{} B file to {} members: {:.0} ms wall, {} ms CPU, one upload, {} file messages; saved intact: {ok}",
                a.file_size,
                a.file_members,
                ms(t.wall),
                cpu_ms(t).map_or("n/a".into(), |c| format!("{c:.0}")),
                t.envelopes
            );
        }
    }
    if file.is_some_and(|(_, ok)| !ok) {
        eprintln!("hush-bench: FAILED: the saved file differs from the source");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

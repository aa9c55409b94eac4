//! `hush send --file` and `hush save`: file transfer from the command line.
//!
//! What it does: sends a file (with a progress bar on a terminal) and prints the message id;
//! saves a received file to the current directory under its sanitised name, or where `--to`
//! says, refusing to overwrite. An interrupted transfer fails with the library's "run the same
//! command again to resume" error and exit status 1. Ctrl-C (SIGINT) during a save stops it:
//! the partly decrypted file is removed (the library decrypts into a file with no name, or one
//! on record) and the command exits with status 1 and a message.
//!
//! What it does not do: list files (`hush read` and `hush history` show file messages).

use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use hush_client::Client;

use crate::output::{Output, Record};
use crate::present::{self, now_secs};
use crate::progress::Bar;

/// `hush send NAME --file PATH`.
pub(crate) async fn send(
    client: &Client,
    name: &str,
    path: &Path,
    timer: Option<Duration>,
    view_once: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    present::contact(client, name).await?;
    let bar = Bar::new(&format!("sending {}", file_label(path)));
    let sent = client
        .send_file(name, path, timer, view_once, &|p| bar.update(p))
        .await;
    bar.finish();
    out.emit(&present::sent_record(name, &sent?), now_secs())
}

/// The file name of `path`, as the progress bar shows it.
pub(crate) fn file_label(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned())
}

/// `hush save MSG_ID [--to PATH]`.
pub(crate) async fn save(
    client: &Client,
    msg_id: &str,
    to: Option<&Path>,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let id = present::parse_message_id(msg_id)?;
    let to = to.unwrap_or(Path::new("."));
    let bar = Bar::new("saving");
    // Dropping the save on Ctrl-C stops its decryption, which removes what it wrote; the
    // runtime waits for that before the process exits.
    let progress = |p| bar.update(p);
    let saved = tokio::select! {
        saved = client.save_file(id, to, &progress) => Some(saved),
        _ = tokio::signal::ctrl_c() => None,
    };
    bar.finish();
    let Some(saved) = saved else {
        bail!("interrupted: nothing was saved (the encrypted copy stays; run the same command again to save it)");
    };
    let path = saved?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    out.emit(
        &Record::Saved {
            id: id.to_hex(),
            path: path.display().to_string(),
            size,
        },
        now_secs(),
    )
}

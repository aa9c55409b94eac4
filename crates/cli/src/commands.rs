//! One function per one-shot command: open the home, call the client, print the result.
//!
//! What it does not do: the interactive chat (see `chat/`), or any protocol work.

use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hush_client::store::KeySource;
use hush_client::{Client, ClientError, ClientEvent, ClientOptions, DEFAULT_INVITATION_LIFETIME};
use hush_protocol::HomeRelay;
use zeroize::Zeroizing;

use crate::args::TimerSetting;
use crate::events::event_notice;
use crate::groups;
use crate::open::key_from_passphrase;
use crate::output::{Output, Record};
use crate::present::{self, contact, message_out, now_secs, timer_secs};
use crate::qr;

/// The most bytes `send` reads from stdin.
const MAX_STDIN_TEXT: u64 = 64 * 1024;

/// `hush init`. The relay is asked first whether it lets this address create queues: a relay
/// that requires a create token the address lacks, refuses the one it carries, or speaks
/// another protocol version stops here with nothing made. A relay out of reach is only a
/// warning: a home can be made offline.
pub(crate) async fn init(
    home: &Path,
    name: &str,
    relay: &str,
    passphrase: bool,
    options: &ClientOptions,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let address: HomeRelay = relay.parse().map_err(|e| {
        // The address may carry a token: it is not repeated in the message.
        anyhow!("invalid relay address ({e}); use hush://HOST:PORT#FINGERPRINT (or hush://TOKEN@HOST:PORT#FINGERPRINT) as the relay's operator gave it")
    })?;
    match Client::check_relay(&address, options).await {
        Ok(_) => {}
        Err(
            e @ (ClientError::TokenRequired { .. }
            | ClientError::TokenRefused { .. }
            | ClientError::RelayVersion { .. }),
        ) => return Err(e.into()),
        Err(e) => {
            eprintln!("hush: warning: could not check the relay ({e}); making the home anyway")
        }
    }
    let key = if passphrase {
        key_from_passphrase(true)?
    } else {
        KeySource::KeyFile
    };
    let client = Client::init(home, name, address, key).await?;
    let record = Record::Initialized {
        name: client.name().to_owned(),
        home: home.display().to_string(),
        relay: client.relay().to_string(),
        passphrase,
    };
    client.close().await;
    out.emit(&record, now_secs())
}

/// `hush token`: stores the create token from an address of this home's relay, once the relay
/// accepts it.
pub(crate) async fn token(
    client: &Client,
    relay: &str,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let address: HomeRelay = relay
        .parse()
        .map_err(|e| anyhow!("invalid relay address ({e})"))?;
    client.set_create_token(&address).await?;
    out.emit(
        &Record::TokenSet {
            relay: client.relay().to_string(),
            token: address.token.is_some(),
        },
        now_secs(),
    )
}

/// `hush invite`.
pub(crate) async fn invite(
    client: &Client,
    as_name: &str,
    expires: Option<Duration>,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let lifetime = expires.unwrap_or(DEFAULT_INVITATION_LIFETIME);
    let invitation = client.invite_expiring(as_name, lifetime).await?;
    let expires_at = client
        .pending_invitations()
        .await
        .into_iter()
        .find(|p| p.name == as_name)
        .and_then(|p| p.expires_at)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| now_secs() + lifetime.as_secs(), |d| d.as_secs());
    out.emit(
        &Record::Invitation {
            invitation: invitation.clone(),
            contact: as_name.to_owned(),
            expires_at,
        },
        now_secs(),
    )?;
    qr::print_on_terminal(
        &format!(
            "invitation for {as_name} (one use, until {}; send it over a channel you trust):",
            crate::output::time_text(expires_at)
        ),
        invitation.as_bytes(),
    );
    Ok(())
}

/// `hush accept`.
pub(crate) async fn accept(
    client: &Client,
    invitation: &str,
    as_name: &str,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    client.accept(invitation.trim(), as_name).await?;
    out.emit(
        &Record::Accepted {
            contact: as_name.to_owned(),
        },
        now_secs(),
    )
}

/// `hush send`.
pub(crate) async fn send(
    client: &Client,
    name: &str,
    text: Option<String>,
    timer: Option<Duration>,
    view_once: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let text = match text {
        Some(text) => Zeroizing::new(text),
        None => read_stdin_text()?,
    };
    if text.is_empty() {
        bail!("the message is empty; give TEXT or pipe it on stdin");
    }
    if groups::is_group(client, name).await {
        return groups::send(client, name, &text, timer, view_once, out).await;
    }
    let sent = client.send_text(name, &text, timer, view_once).await?;
    out.emit(&present::sent_record(name, &sent), now_secs())
}

/// Reads the message from stdin into a buffer sized for the largest one, so that it never
/// grows (which would leave copies of the text in freed memory) and is zeroized when dropped.
fn read_stdin_text() -> Result<Zeroizing<String>> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!("type the message, then Ctrl-D on a new line:");
    }
    let mut text = Zeroizing::new(String::with_capacity(MAX_STDIN_TEXT as usize + 1));
    stdin
        .lock()
        .take(MAX_STDIN_TEXT + 1)
        .read_to_string(&mut text)
        .context("cannot read the message from stdin (it must be UTF-8 text)")?;
    if text.len() as u64 > MAX_STDIN_TEXT {
        bail!("the message on stdin is longer than {MAX_STDIN_TEXT} bytes; shorten it");
    }
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// `hush read`: receives, reveals (starting read timers) and prints.
pub(crate) async fn read(
    client: &Client,
    name: Option<&str>,
    wait: Option<Duration>,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let group = match name {
        Some(name) if groups::is_group(client, name).await => Some(name),
        Some(name) => {
            contact(client, name).await?;
            None
        }
        None => None,
    };
    show_unread(client, name, out).await?;
    // A group's messages come from its members: receive everything, show the group's.
    let events = client
        .receive(name.filter(|_| group.is_none()), wait)
        .await?;
    for event in events {
        match event {
            ClientEvent::Message { contact, message } => {
                let in_group = match message.group {
                    Some(id) => client.group_name(id).await,
                    None => None,
                };
                if group.is_some() && in_group.as_deref() != group {
                    continue;
                }
                // A message erased later in the same batch (unsend, burn) is no longer there.
                let shown = match client.display(&contact, message.id).await {
                    Ok(shown) => shown,
                    Err(err) if present::is_gone(&err) => continue,
                    Err(err) => return Err(err.into()),
                };
                let text = present::body_text(&shown);
                let record = match &in_group {
                    Some(g) => groups::group_message_out(g, &contact, &shown, text),
                    None => message_out(&contact, &shown, text),
                };
                out.emit(&Record::Message(record), now_secs())?;
            }
            ClientEvent::RelayUnreachable { relay } => {
                eprintln!(
                    "hush: warning: cannot reach the relay {relay}; nothing was lost, its messages stay queued there. Try again later"
                );
            }
            other => {
                if let Some(record) = event_notice(&other) {
                    out.emit(&record, now_secs())?;
                }
            }
        }
    }
    Ok(())
}

/// Shows the messages already received but never shown (of `name`, or of every contact): a
/// `read` killed after storing them and before printing them, or `hush chat` open on another
/// contact when they came. They are unread, so `read` shows them first.
async fn show_unread(
    client: &Client,
    name: Option<&str>,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let group_names: Vec<String> = client.groups().await.into_iter().map(|g| g.name).collect();
    for group in group_names
        .iter()
        .filter(|g| name.is_none_or(|n| n == g.as_str()))
    {
        groups::history(client, group, true, out).await?;
    }
    let contacts: Vec<String> = match name {
        Some(name) if group_names.iter().any(|g| g == name) => Vec::new(),
        Some(name) => vec![name.to_owned()],
        None => client
            .contacts()
            .await
            .into_iter()
            .map(|c| c.name)
            .collect(),
    };
    for contact in contacts {
        // A burned contact has no history left.
        let Ok(history) = client.history(&contact).await else {
            continue;
        };
        for view in history {
            if view.outgoing || view.displayed_at.is_some() {
                continue;
            }
            let (shown, text) = present::reveal(client, &contact, view).await?;
            out.emit(
                &Record::Message(message_out(&contact, &shown, text)),
                now_secs(),
            )?;
        }
    }
    Ok(())
}

/// `hush history`: what is stored, both directions. Showing a received message counts as its
/// display, so its read timer starts (and a view-once message is consumed).
pub(crate) async fn history(
    client: &Client,
    name: &str,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    if groups::is_group(client, name).await {
        return groups::history(client, name, false, out).await;
    }
    for view in client.history(name).await? {
        let (shown, text) = present::reveal(client, name, view).await?;
        out.emit(
            &Record::Message(message_out(name, &shown, text)),
            now_secs(),
        )?;
    }
    Ok(())
}

/// `hush contacts`, with invitations not yet answered listed as `pending`.
pub(crate) async fn contacts(client: &Client, out: &mut Output<io::Stdout>) -> Result<()> {
    let now = now_secs();
    for view in client.contacts().await {
        out.emit(&Record::Contact(present::contact_out(&view)), now)?;
    }
    groups::list(client, out).await?;
    for pending in client.pending_invitations().await {
        out.emit(
            &Record::Contact(crate::output::ContactOut {
                kind: "contact",
                name: pending.name,
                verified: false,
                introduced: false,
                timer: None,
                status: "pending".into(),
                members: None,
            }),
            now,
        )?;
    }
    Ok(())
}

/// `hush verify`.
pub(crate) async fn verify(
    client: &Client,
    name: &str,
    mark: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let number = client.safety_number(name).await?;
    if mark {
        client.mark_verified(name).await?;
    }
    let verified = contact(client, name).await?.verified;
    out.emit(
        &Record::SafetyNumber {
            contact: name.to_owned(),
            safety_number: number.digits(),
            verified,
        },
        now_secs(),
    )?;
    qr::print_on_terminal(
        &format!("safety number with {name} (scan each other's code to compare):"),
        &number.qr_payload(),
    );
    Ok(())
}

/// `hush timer`.
pub(crate) async fn timer(
    client: &Client,
    name: &str,
    setting: TimerSetting,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let timer = match setting {
        TimerSetting::After(d) if d.is_zero() => {
            bail!("a timer must be longer than 0s; use `hush timer {name} off` to turn it off")
        }
        TimerSetting::After(d) => Some(d),
        TimerSetting::Off => None,
    };
    if groups::is_group(client, name).await {
        return groups::timer(client, name, timer, out).await;
    }
    client.set_timer(name, timer).await?;
    out.emit(
        &Record::Timer {
            contact: name.to_owned(),
            timer: timer_secs(timer),
        },
        now_secs(),
    )
}

/// `hush unsend`.
pub(crate) async fn unsend(
    client: &Client,
    name: &str,
    id: &str,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    if groups::is_group(client, name).await {
        return groups::unsend(client, name, id, out).await;
    }
    let id = present::parse_message_id(id)?;
    client.unsend(name, id).await?;
    out.emit(
        &Record::Unsent {
            contact: name.to_owned(),
            id: id.to_hex(),
        },
        now_secs(),
    )
}

/// `hush burn`, which asks first on a terminal unless `yes`.
pub(crate) async fn burn(
    client: &Client,
    name: &str,
    yes: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    if groups::is_group(client, name).await {
        bail!("{name} is a group: `hush group burn {name}` burns it for every member (owner only), `hush group leave {name}` erases your copy");
    }
    contact(client, name).await?;
    if !yes && !confirm_burn(name)? {
        bail!("burn cancelled; nothing was deleted");
    }
    let report = client.burn(name).await?;
    out.emit(
        &Record::Burned {
            contact: name.to_owned(),
            contact_told: present::delivery(report.contact_told).into(),
            queue_deleted: present::delivery(report.queue_deleted).into(),
        },
        now_secs(),
    )
}

fn confirm_burn(name: &str) -> Result<bool> {
    crate::confirm::confirm(
        &format!("Burn the whole conversation with {name} on BOTH sides? This cannot be undone. Type yes: "),
        &format!("refusing to burn without confirmation: stdin is not a terminal. Add --yes to burn the conversation with {name} on both sides"),
    )
}

/// `hush block`.
pub(crate) async fn block(client: &Client, name: &str, out: &mut Output<io::Stdout>) -> Result<()> {
    client.block(name).await?;
    out.emit(
        &Record::Blocked {
            contact: name.to_owned(),
        },
        now_secs(),
    )
}

//! The group commands (`hush group ...`), and what `send`, `history`, `unsend`, `timer` and
//! `contacts` do when given a group's name.
//!
//! What it does not do: the chat on a group (see `chat/`), or any group rule (the client
//! library applies them).

use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use hush_client::group::Role;
use hush_client::{Client, GroupSent, GroupView, MessageView};

use crate::args::GroupAction;
use crate::output::{ContactOut, MemberOut, MessageOut, Output, Record};
use crate::present::{self, message_out, now_secs};
use crate::progress::Bar;

/// Whether `name` is one of the client's groups.
pub(crate) async fn is_group(client: &Client, name: &str) -> bool {
    client.groups().await.iter().any(|g| g.name == name)
}

/// `hush group ...`.
pub(crate) async fn run(
    client: &Client,
    action: &GroupAction,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let (group, text, sent) = match action {
        GroupAction::Create { name, timer } => {
            client.create_group(name, *timer).await?;
            let text = "created; add members with `hush group add NAME CONTACT...`";
            (name, text.to_owned(), None)
        }
        GroupAction::Add { name, contacts } => {
            let names: Vec<&str> = contacts.iter().map(String::as_str).collect();
            let sent = client.add_to_group(name, &names).await?;
            (name, format!("added {}", contacts.join(", ")), Some(sent))
        }
        GroupAction::Remove { name, member } => {
            let sent = client.remove_from_group(name, member).await?;
            let text = format!("removed {member}: nothing sent from now on reaches them");
            (name, text, Some(sent))
        }
        GroupAction::Admin {
            name,
            member,
            revoke,
        } => {
            let sent = client.set_group_admin(name, member, !revoke).await?;
            let text = if *revoke {
                format!("{member} is no longer an admin")
            } else {
                format!("{member} is now an admin")
            };
            (name, text, Some(sent))
        }
        GroupAction::Leave { name } => {
            let sent = client.leave_group(name).await?;
            (name, "left; your copy is erased".to_owned(), Some(sent))
        }
        GroupAction::Members { name } => return members(client, name, out).await,
        GroupAction::Burn { name, yes } => {
            group(client, name).await?;
            if !yes && !confirm_burn(name)? {
                bail!("burn cancelled; nothing was deleted");
            }
            let sent = client.burn_group(name).await?;
            let text = "burned: erased here and on every member's device as they receive";
            (name, text.to_owned(), Some(sent))
        }
    };
    out.emit(&record(group, text, None, sent), now_secs())
}

/// The record of a group command's result.
fn record(group: &str, text: String, id: Option<String>, sent: Option<GroupSent>) -> Record {
    let sent = sent.unwrap_or_default();
    Record::Group {
        group: group.to_owned(),
        text,
        id,
        reached: sent.reached,
        unreachable: sent.unreachable,
        owed: sent.owed,
    }
}

/// Group `name`, or a clear error.
async fn group(client: &Client, name: &str) -> Result<GroupView> {
    match client.groups().await.into_iter().find(|g| g.name == name) {
        Some(g) => Ok(g),
        None => Err(hush_client::ClientError::UnknownGroup { name: name.into() }.into()),
    }
}

/// `hush group members`.
async fn members(client: &Client, name: &str, out: &mut Output<io::Stdout>) -> Result<()> {
    for m in client.group_members(name).await? {
        let role = match m.role {
            Role::Owner => "owner",
            Role::Admin => "admin",
            _ => "member",
        };
        let record = Record::Member(MemberOut {
            group: name.to_owned(),
            name: m.name,
            role,
            you: m.is_self,
            contact: m.is_contact,
            verified: m.verified,
            introduced: m.introduced,
        });
        out.emit(&record, now_secs())?;
    }
    Ok(())
}

/// `hush send GROUP TEXT`.
pub(crate) async fn send(
    client: &Client,
    name: &str,
    text: &str,
    timer: Option<Duration>,
    view_once: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let sent = client.send_group_text(name, text, timer, view_once).await?;
    report_sent(name, sent, out)
}

/// `hush send GROUP --file PATH`: one upload, the file message to every member.
pub(crate) async fn send_file(
    client: &Client,
    name: &str,
    path: &Path,
    timer: Option<Duration>,
    view_once: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let label = crate::files::file_label(path);
    let bar = Bar::new(&format!("sending {label} to {name}"));
    let sent = client
        .send_group_file(name, path, timer, view_once, &|p| bar.update(p))
        .await;
    bar.finish();
    report_sent(name, sent?, out)
}

/// Prints what a message to group `name` reached; fails if it reached no member.
fn report_sent(name: &str, sent: GroupSent, out: &mut Output<io::Stdout>) -> Result<()> {
    if sent.reached.is_empty() && !sent.unreachable.is_empty() {
        let why: Vec<String> = sent
            .unreachable
            .iter()
            .map(|(who, why)| format!("{who}: {why}"))
            .collect();
        bail!(
            "the message reached no member of {name} ({}); nothing was sent",
            why.join("; ")
        );
    }
    let id = sent.message.as_ref().map(|m| m.id.to_hex());
    out.emit(&record(name, "sent".to_owned(), id, Some(sent)), now_secs())
}

/// A group message as printed.
pub(crate) fn group_message_out(
    group: &str,
    from: &str,
    view: &MessageView,
    text: Option<String>,
) -> MessageOut {
    MessageOut {
        group: Some(group.to_owned()),
        from: Some(from.to_owned()),
        ..message_out(from, view, text)
    }
}

/// `hush history GROUP`: every message of the group still stored; showing a received one
/// counts as its display.
pub(crate) async fn history(
    client: &Client,
    name: &str,
    unread_only: bool,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    for (author, view) in client.group_history(name).await? {
        if unread_only && (view.outgoing || view.displayed_at.is_some()) {
            continue;
        }
        let (shown, text) = present::reveal(client, &author, view).await?;
        out.emit(
            &Record::Message(group_message_out(name, &author, &shown, text)),
            now_secs(),
        )?;
    }
    Ok(())
}

/// `hush unsend GROUP ID`.
pub(crate) async fn unsend(
    client: &Client,
    name: &str,
    id: &str,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let id = present::parse_message_id(id)?;
    client.unsend_group(name, id).await?;
    let text = format!("unsent {}: deleted on every member's side", id.to_hex());
    out.emit(&record(name, text, None, None), now_secs())
}

/// `hush timer GROUP ...`.
pub(crate) async fn timer(
    client: &Client,
    name: &str,
    timer: Option<Duration>,
    out: &mut Output<io::Stdout>,
) -> Result<()> {
    let sent = client.set_group_timer(name, timer).await?;
    let text = match timer {
        Some(t) => format!("group timer set to {} s", t.as_secs()),
        None => "group timer turned off".to_owned(),
    };
    out.emit(&record(name, text, None, Some(sent)), now_secs())
}

/// The groups as `contacts` lists them.
pub(crate) async fn list(client: &Client, out: &mut Output<io::Stdout>) -> Result<()> {
    for g in client.groups().await {
        let record = Record::Contact(ContactOut {
            kind: "group",
            name: g.name,
            verified: false,
            introduced: false,
            timer: g.timer.map(|d| d.as_secs()),
            status: if g.role.is_some() {
                "active"
            } else {
                "removed"
            }
            .into(),
            members: Some(g.members),
        });
        out.emit(&record, now_secs())?;
    }
    Ok(())
}

fn confirm_burn(name: &str) -> Result<bool> {
    crate::confirm::confirm(
        &format!("Burn the group {name} for EVERY member? This cannot be undone. Type yes: "),
        &format!("refusing to burn without confirmation: stdin is not a terminal. Add --yes to burn the group {name} for every member"),
    )
}

//! What the chat reads from the client: the conversation list with its unread messages, and a
//! conversation (with a contact or in a group) as it opens.
//!
//! Opening a conversation shows its messages, so it counts as their display: their read timers
//! start, and a view-once message is deleted from the store as it appears.
//!
//! What it does not do: change anything but the display state of what it shows.

use anyhow::{anyhow, Result};
use hush_client::group::Role;
use hush_client::{Client, MessageView};

use super::list::Kind;
use super::model::{ChatMessage, ChatModel, Direction, GroupPane, Member};
use super::session::Session;
use crate::present::{self, timer_secs};

/// Whether `name` is one of the client's groups (else, perhaps, a contact).
pub(crate) async fn is_group(client: &Client, name: &str) -> bool {
    client.groups().await.iter().any(|g| g.name == name)
}

/// Fails with a clear message unless `name` is a contact or a group.
pub(crate) async fn check_known(client: &Client, name: &str) -> Result<()> {
    let known =
        is_group(client, name).await || client.contacts().await.iter().any(|c| c.name == name);
    if known {
        Ok(())
    } else {
        Err(anyhow!(
            "no contact or group is called {name:?}; `hush contacts` lists them, and `hush chat` without a name lets you choose"
        ))
    }
}

/// Makes the list hold every contact and group, keeping what it counted.
pub(crate) async fn sync_list(client: &Client, session: &mut Session) {
    let mut known: Vec<(String, Kind)> = client
        .contacts()
        .await
        .into_iter()
        .map(|c| (c.name, Kind::Contact))
        .collect();
    known.extend(
        client
            .groups()
            .await
            .into_iter()
            .map(|g| (g.name, Kind::Group)),
    );
    session.list.sync(known);
    session.recount();
}

/// Fills the list and counts the messages already stored but never shown.
pub(crate) async fn first_list(client: &Client, session: &mut Session) -> Result<()> {
    sync_list(client, session).await;
    let names: Vec<(String, Kind)> = session
        .list
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.kind))
        .collect();
    for (name, kind) in names {
        let views: Vec<MessageView> = match kind {
            Kind::Contact => client.history(&name).await?,
            Kind::Group => client
                .group_history(&name)
                .await?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        };
        for view in views
            .iter()
            .filter(|v| !v.outgoing && v.displayed_at.is_none())
        {
            session.list.add_unread(&name, &view.id.to_hex());
        }
    }
    Ok(())
}

/// Opens conversation `name` (a contact or a group) on screen.
pub(crate) async fn open(client: &Client, session: &mut Session, name: &str) -> Result<()> {
    check_known(client, name).await?;
    let chat = if is_group(client, name).await {
        group_chat(client, name).await?
    } else {
        contact_chat(client, name).await?
    };
    session.open(chat);
    Ok(())
}

/// The conversation with contact `name`, its messages shown.
async fn contact_chat(client: &Client, name: &str) -> Result<ChatModel> {
    let contact = present::contact(client, name).await?;
    let mut model = ChatModel::new(name);
    model.timer = timer_secs(contact.timer);
    model.verified = contact.verified;
    for view in client.history(name).await? {
        let (shown, text) = present::reveal(client, name, view).await?;
        model.add_message(chat_message(&shown, text, None));
    }
    Ok(model)
}

/// The conversation in group `name`, its messages shown with their authors.
async fn group_chat(client: &Client, name: &str) -> Result<ChatModel> {
    let (pane, timer) = group_pane(client, name).await?;
    let mut model = ChatModel::new_group(name, pane);
    model.timer = timer;
    for (author, view) in client.group_history(name).await? {
        let (shown, text) = present::reveal(client, &author, view).await?;
        let author = (!shown.outgoing).then_some(author);
        model.add_message(chat_message(&shown, text, author));
    }
    model.closed = !model
        .group
        .as_ref()
        .is_some_and(|p| p.members.iter().any(|m| m.you));
    if model.closed {
        model.status(format!(
            "you are no longer a member of {name}: nothing new reaches you. /leave erases your copy"
        ));
    }
    Ok(model)
}

/// Group `name`'s members (with roles: the owner, then admins, then the others, each by name)
/// and its timer in seconds.
pub(crate) async fn group_pane(client: &Client, name: &str) -> Result<(GroupPane, Option<u64>)> {
    let mut members: Vec<Member> = client
        .group_members(name)
        .await?
        .into_iter()
        .map(|m| Member {
            role: match m.role {
                Role::Owner => "owner",
                Role::Admin => "admin",
                _ => "member",
            },
            name: m.name,
            you: m.is_self,
        })
        .collect();
    let rank = |role: &str| match role {
        "owner" => 0,
        "admin" => 1,
        _ => 2,
    };
    members.sort_by(|a, b| (rank(a.role), &a.name).cmp(&(rank(b.role), &b.name)));
    let timer = client
        .groups()
        .await
        .into_iter()
        .find(|g| g.name == name)
        .and_then(|g| timer_secs(g.timer));
    Ok((GroupPane { members }, timer))
}

/// A message as the chat shows it; `author` names who wrote a received group message.
pub(crate) fn chat_message(
    view: &MessageView,
    text: Option<String>,
    author: Option<String>,
) -> ChatMessage {
    let text = text.unwrap_or_else(|| placeholder(view));
    ChatMessage {
        id: view.id.to_hex(),
        direction: if view.outgoing {
            Direction::Sent
        } else {
            Direction::Received
        },
        text,
        sent_at: view.sent_at,
        expires_at: view.expires_at,
        view_once: view.view_once,
        author,
    }
}

/// What stands for a message without text: a file, or a view-once message already seen.
fn placeholder(view: &MessageView) -> String {
    if let Some(f) = &view.file {
        let size = crate::output::size_text(f.size);
        if view.outgoing {
            format!("[file] {} ({size})", f.name)
        } else {
            // The chat has no /save: saving happens outside it.
            format!(
                "[file] {} ({size}); save it outside the chat with: hush save {}",
                f.name,
                view.id.to_hex()
            )
        }
    } else if view.view_once {
        "(view-once message)".into()
    } else {
        String::new()
    }
}

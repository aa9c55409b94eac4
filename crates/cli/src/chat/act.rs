//! Carries out what the user asked in the open conversation, with a contact or in a group;
//! failures and members not reached become status lines.
//!
//! What it does not do: interpret typed lines (see `command.rs`) or handle what arrives (see
//! `incoming.rs`).

use std::time::Duration;

use anyhow::{anyhow, Result};
use hush_client::{Client, GroupSent};

use super::command::Action;
use super::load::{self, chat_message};
use super::model::ChatModel;
use super::session::Session;
use super::view;
use crate::args::TimerSetting;
use crate::present::{self, timer_secs};

/// Carries out `action` in the open conversation.
pub(crate) async fn act(client: &Client, session: &mut Session, action: Action) {
    let Some(chat) = session.open.as_mut() else {
        return;
    };
    let result = if chat.is_group() {
        group_act(client, chat, action).await
    } else {
        contact_act(client, chat, action).await
    };
    match result {
        Ok(ended) => {
            if ended {
                // A burned contact or a left or burned group leaves the list.
                load::sync_list(client, session).await;
            }
        }
        Err(err) => session.status(format!("{err:#}")),
    }
}

/// An action with a contact. Returns whether the conversation ended.
async fn contact_act(client: &Client, chat: &mut ChatModel, action: Action) -> Result<bool> {
    let name = chat.name.clone();
    match action {
        Action::Send(text) => {
            let sent = client.send_text(&name, &text, None, false).await?;
            chat.add_message(chat_message(&sent, Some(text), None));
        }
        Action::Timer(setting) => {
            let timer = duration(setting);
            client.set_timer(&name, timer).await?;
            timer_set(chat, timer, "for both sides");
        }
        Action::Unsend(prefix) => {
            let hex = chat.resolve_sent_id(&prefix).map_err(anyhow::Error::msg)?;
            client
                .unsend(&name, present::parse_message_id(&hex)?)
                .await?;
            chat.remove_message(&hex);
            chat.status(format!(
                "you unsent {}; it is gone on both sides",
                &hex[..8]
            ));
        }
        Action::Burn => {
            client.burn(&name).await?;
            chat.clear_messages();
            chat.closed = true;
            chat.status(
                "you burned the conversation on both sides; Ctrl-O for the list, /quit to leave",
            );
            return Ok(true);
        }
        Action::Verify => {
            let number = client.safety_number(&name).await?;
            chat.status(format!(
                "safety number with {name}: {} (compare it with {name}; `hush verify {name} --mark` records it)",
                number.digits()
            ));
        }
        Action::Leave | Action::List | Action::Switch(_) | Action::Help | Action::Quit => {}
    }
    Ok(false)
}

/// An action in a group. Returns whether the conversation ended.
async fn group_act(client: &Client, chat: &mut ChatModel, action: Action) -> Result<bool> {
    let name = chat.name.clone();
    match action {
        Action::Send(text) => {
            let sent = client.send_group_text(&name, &text, None, false).await?;
            let Some(view) = &sent.message else {
                return Err(nobody_reached(&name, &sent));
            };
            chat.add_message(chat_message(view, Some(text), None));
            not_reached(chat, &sent);
        }
        Action::Timer(setting) => {
            let timer = duration(setting);
            let sent = client.set_group_timer(&name, timer).await?;
            timer_set(chat, timer, "for every member");
            not_reached(chat, &sent);
        }
        Action::Unsend(prefix) => {
            let hex = chat.resolve_sent_id(&prefix).map_err(anyhow::Error::msg)?;
            client
                .unsend_group(&name, present::parse_message_id(&hex)?)
                .await?;
            chat.remove_message(&hex);
            chat.status(format!(
                "you unsent {}; it is gone for every member",
                &hex[..8]
            ));
        }
        Action::Burn => {
            let sent = client.burn_group(&name).await?;
            chat.clear_messages();
            chat.closed = true;
            chat.status(format!("you burned {name}: erased here and on every member's device as they receive; Ctrl-O for the list, /quit to leave"));
            not_reached(chat, &sent);
            return Ok(true);
        }
        Action::Leave => {
            let sent = client.leave_group(&name).await?;
            chat.clear_messages();
            chat.closed = true;
            chat.status(format!(
                "you left {name}; your copy is erased. Ctrl-O for the list, /quit to leave"
            ));
            not_reached(chat, &sent);
            return Ok(true);
        }
        Action::Verify => verify_members(client, chat).await?,
        Action::List | Action::Switch(_) | Action::Help | Action::Quit => {}
    }
    Ok(false)
}

/// Which members' safety numbers were compared, and how to compare the others'.
async fn verify_members(client: &Client, chat: &mut ChatModel) -> Result<()> {
    let members = client.group_members(&chat.name).await?;
    let others: Vec<String> = members
        .iter()
        .filter(|m| !m.is_self)
        .map(|m| match (m.is_contact, m.verified) {
            (true, true) => format!("{} verified", m.name),
            (true, false) if m.introduced => format!(
                "{} introduced by a group, not verified (/switch {} then /verify)",
                m.name, m.name
            ),
            (true, false) => format!("{} not verified (/switch {} then /verify)", m.name, m.name),
            (false, _) => format!("{} is not your contact", m.name),
        })
        .collect();
    chat.status(if others.is_empty() {
        "no other members yet".to_owned()
    } else {
        format!("safety numbers are per contact: {}", others.join("; "))
    });
    Ok(())
}

fn duration(setting: TimerSetting) -> Option<Duration> {
    match setting {
        TimerSetting::After(d) => Some(d),
        TimerSetting::Off => None,
    }
}

fn timer_set(chat: &mut ChatModel, timer: Option<Duration>, whom: &str) {
    chat.timer = timer_secs(timer);
    chat.status(match timer {
        Some(_) => format!(
            "you set the disappearing timer to {} {whom}",
            view::timer_label(chat.timer)
        ),
        None => format!("you turned the disappearing timer off {whom}"),
    });
}

/// A notice naming the members a group message or change did not reach, and why.
fn not_reached(chat: &mut ChatModel, sent: &GroupSent) {
    if !sent.unreachable.is_empty() {
        chat.status(format!("not reached: {}", reasons(sent)));
    }
}

/// The error for a group message that reached no one.
fn nobody_reached(name: &str, sent: &GroupSent) -> anyhow::Error {
    if sent.unreachable.is_empty() {
        anyhow!("{name} has no other member yet; nothing was sent. Add members with `hush group add {name} CONTACT`")
    } else {
        anyhow!(
            "the message reached no member of {name} ({}); nothing was sent",
            reasons(sent)
        )
    }
}

fn reasons(sent: &GroupSent) -> String {
    sent.unreachable
        .iter()
        .map(|(who, why)| format!("{who}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

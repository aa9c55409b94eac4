//! What the commands print: each result as a line of text, or with `--json` as one JSON object
//! per line with a `"type"` field.
//!
//! Text is for people; JSON is the stable interface for scripts. Times are unix seconds in JSON
//! and RFC 3339 (UTC) in text.
//!
//! What it does not do: print to stderr (see `qr.rs` for the codes shown on a terminal) or
//! decide what a command does.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::chat::view::{countdown, timer_label};

/// A message as `read` and `history` print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MessageOut {
    /// The message id (hex).
    pub(crate) id: String,
    /// The contact's local name.
    pub(crate) contact: String,
    /// `in` for received, `out` for sent.
    pub(crate) direction: &'static str,
    /// When it was sent (unix seconds).
    pub(crate) sent_at: u64,
    /// Its text; `null` when it is no longer available (a view-once message already shown).
    pub(crate) text: Option<String>,
    /// When it disappears (unix seconds), if it has a timer.
    pub(crate) expires_at: Option<u64>,
    /// Whether it is deleted right after its first display.
    pub(crate) view_once: bool,
    /// The file, for a file message (absent for a text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<FileOut>,
    /// The group, for a group message (absent in a 1:1 conversation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<String>,
    /// Who wrote a group message: a member's name, or yours (absent in a 1:1 conversation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from: Option<String>,
}

/// The file of a file message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FileOut {
    /// The sender's file name, sanitised.
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// When the relay deletes it, downloaded or not (unix seconds).
    pub(crate) relay_expires_at: u64,
}

/// A contact or a group as `contacts` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ContactOut {
    /// `contact` or `group`.
    pub(crate) kind: &'static str,
    /// The local name.
    pub(crate) name: String,
    /// Whether the safety number was verified.
    pub(crate) verified: bool,
    /// Whether the contact is known only through a group's introduction (not verified yet).
    pub(crate) introduced: bool,
    /// The conversation's disappearing timer, in seconds.
    pub(crate) timer: Option<u64>,
    /// `active`, `pending`, `blocked` or `burned`; for a group, `active` or `removed`.
    pub(crate) status: String,
    /// How many members a group has, you included (absent for a contact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) members: Option<usize>,
}

/// A group member as `group members` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MemberOut {
    /// The group.
    pub(crate) group: String,
    /// The member's name (yours for you).
    pub(crate) name: String,
    /// `owner`, `admin` or `member`.
    pub(crate) role: &'static str,
    /// Whether this is you.
    pub(crate) you: bool,
    /// Whether the member is one of your contacts.
    pub(crate) contact: bool,
    /// Whether you verified their safety number.
    pub(crate) verified: bool,
    /// Whether you know them only through a group's introduction (not verified yet).
    pub(crate) introduced: bool,
}

/// How a contact known only through a group's introduction is shown.
const INTRODUCED: &str = "introduced by a group, not verified";

/// One result line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Record {
    /// `init` created a home.
    Initialized {
        /// The display name.
        name: String,
        /// The home directory.
        home: String,
        /// The relay address.
        relay: String,
        /// Whether the store is protected by a passphrase.
        passphrase: bool,
    },
    /// `token` stored (or forgot) the create token for the relay.
    TokenSet {
        /// The relay address, without the token.
        relay: String,
        /// Whether a token is stored now.
        token: bool,
    },
    /// `invite` made an invitation.
    Invitation {
        /// The `hush://invite/...` string.
        invitation: String,
        /// The local name of whoever accepts it.
        contact: String,
        /// When it expires (unix seconds).
        expires_at: u64,
    },
    /// `accept` created a contact.
    Accepted {
        /// The new contact's local name.
        contact: String,
    },
    /// `send` sent a message.
    Sent {
        /// The message id (hex).
        id: String,
        /// The contact.
        contact: String,
        /// When our copy disappears (unix seconds), if it has a timer.
        expires_at: Option<u64>,
    },
    /// A message shown by `read` or `history`.
    Message(MessageOut),
    /// A group command's result: what changed, and which members were told.
    Group {
        /// The group.
        group: String,
        /// What was done, in words.
        text: String,
        /// The message id, for a message sent to the group.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The members reached.
        reached: Vec<String>,
        /// The members not reached, each with the reason.
        unreachable: Vec<(String, String)>,
        /// The members not reached yet: tried again until the relay TTL has passed (a burn).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        owed: Vec<String>,
    },
    /// A member listed by `group members`.
    Member(MemberOut),
    /// A contact listed by `contacts`.
    Contact(ContactOut),
    /// Something that happened in a conversation while receiving (timer change, unsend, burn).
    Notice {
        /// The contact.
        contact: String,
        /// What happened, in words.
        text: String,
    },
    /// `verify` showed a safety number.
    SafetyNumber {
        /// The contact.
        contact: String,
        /// The safety number as digits, in groups.
        safety_number: String,
        /// Whether the contact is (now) marked verified.
        verified: bool,
    },
    /// `timer` set the conversation's timer.
    Timer {
        /// The contact.
        contact: String,
        /// The timer in seconds, or `null` for off.
        timer: Option<u64>,
    },
    /// `unsend` deleted a message on both sides.
    Unsent {
        /// The contact.
        contact: String,
        /// The message id.
        id: String,
    },
    /// `burn` destroyed a conversation: erased here, and what the relays were told.
    Burned {
        /// The former contact.
        contact: String,
        /// The `Burn` to the contact: `done`, `gone` (their queue was already gone) or `owed`
        /// (their relay is out of reach: retried later).
        contact_told: String,
        /// The deletion of our queue: `done`, `gone` or `owed`.
        queue_deleted: String,
    },
    /// `block` blocked a contact.
    Blocked {
        /// The contact.
        contact: String,
    },
    /// `save` wrote a received file.
    Saved {
        /// The message id.
        id: String,
        /// Where the file was written.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
}

/// A size in bytes as a person reads it: `512 B`, `1.5 KiB`, `200.0 MiB`.
pub(crate) fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A unix time as RFC 3339 in UTC, to the second.
pub(crate) fn time_text(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

impl Record {
    /// The record as text for a person, relative to `now` (unix seconds) for countdowns.
    pub(crate) fn text(&self, now: u64) -> String {
        match self {
            Record::Initialized {
                name,
                home,
                relay,
                passphrase,
            } => {
                let key = if *passphrase {
                    "a passphrase"
                } else {
                    "a key file (device.key, mode 0600)"
                };
                format!("created {name}'s identity in {home}, protected by {key}; relay {relay}")
            }
            Record::TokenSet { relay, token: true } => {
                format!("stored the create token for {relay}; the relay accepts it")
            }
            Record::TokenSet {
                relay,
                token: false,
            } => format!("forgot the create token for {relay}"),
            Record::Invitation { invitation, .. } => invitation.clone(),
            Record::Accepted { contact } => format!(
                "added {contact}; they see you once they next receive (hush read). Compare safety numbers with: hush verify {contact}"
            ),
            Record::Sent { id, .. } => id.clone(),
            Record::Message(m) => message_text(m, now),
            Record::Group {
                group,
                text,
                id,
                unreachable,
                owed,
                ..
            } => {
                let mut line = match id {
                    Some(id) => id.clone(),
                    None => format!("{group}: {text}"),
                };
                for who in owed {
                    line.push_str(&format!(
                        "\n{who}'s relay is out of reach: hush tells them when it next reaches it \
                         (hush read, hush chat)"
                    ));
                }
                for (who, why) in unreachable {
                    line.push_str(&format!("\nnot delivered to {who}: {why}"));
                }
                line
            }
            Record::Member(m) => {
                let you = if m.you { " (you)" } else { "" };
                let state = match (m.contact, m.verified, m.introduced) {
                    (_, true, _) => "verified",
                    (true, false, true) => INTRODUCED,
                    (true, false, false) => "not verified",
                    (false, false, _) => "not a contact",
                };
                format!("{}{you}\t{}\t{state}", m.name, m.role)
            }
            Record::Contact(c) => {
                let verified = match (c.verified, c.introduced) {
                    (true, _) => "verified",
                    (false, true) => INTRODUCED,
                    (false, false) => "not verified",
                };
                format!(
                    "{}\t{}\ttimer {}\t{}",
                    c.name,
                    c.status,
                    timer_label(c.timer),
                    verified
                )
            }
            Record::Notice { contact, text } => format!("{contact}: {text}"),
            Record::SafetyNumber {
                contact,
                safety_number,
                verified,
            } => {
                let state = if *verified {
                    "marked verified".to_owned()
                } else {
                    format!("not verified yet: compare it with {contact} in person, then run `hush verify {contact} --mark`")
                };
                format!("{safety_number}\n{contact}: {state}")
            }
            Record::Timer { contact, timer } => match timer {
                Some(_) => format!(
                    "timer for {contact} set to {}, for both sides",
                    timer_label(*timer)
                ),
                None => format!("timer for {contact} turned off, for both sides"),
            },
            Record::Unsent { contact, id } => {
                format!("unsent {id}: deleted here and on {contact}'s side")
            }
            Record::Burned {
                contact,
                contact_told,
                queue_deleted,
            } => burned_text(contact, contact_told, queue_deleted),
            Record::Blocked { contact } => {
                format!("blocked {contact}: their messages can no longer reach you")
            }
            Record::Saved { path, size, .. } => {
                format!("saved {path} ({})", size_text(*size))
            }
        }
    }
}

fn message_text(m: &MessageOut, now: u64) -> String {
    let who = match (&m.group, m.direction) {
        (Some(group), "out") => format!("you -> {group}"),
        (Some(group), _) => format!("{} @ {group}", m.contact),
        (None, "out") => format!("you -> {}", m.contact),
        (None, _) => m.contact.clone(),
    };
    let file_line;
    let text = match &m.file {
        Some(f) => {
            file_line = if m.direction == "out" {
                format!("[file] {} ({})", f.name, size_text(f.size))
            } else {
                format!(
                    "[file] {} ({}); hush save {} to save it",
                    f.name,
                    size_text(f.size),
                    m.id
                )
            };
            file_line.as_str()
        }
        None => m.text.as_deref().unwrap_or(if m.direction == "out" {
            "(view-once message; its text is not kept on the sender's side)"
        } else {
            "(view-once message, already shown)"
        }),
    };
    let mut flags = String::new();
    if m.view_once {
        flags.push_str(" [view once]");
    }
    if let Some(at) = m.expires_at {
        flags.push_str(&format!(
            " [expires in {}]",
            countdown(at.saturating_sub(now))
        ));
    }
    format!("{}  {}  {who}: {text}{flags}", m.id, time_text(m.sent_at))
}

/// Writes records as text or JSON lines.
pub(crate) struct Output<W: Write> {
    out: W,
    json: bool,
}

impl Output<io::Stdout> {
    /// Records on stdout.
    pub(crate) fn stdout(json: bool) -> Self {
        Self {
            out: io::stdout(),
            json,
        }
    }
}

impl<W: Write> Output<W> {
    /// Records on `out`.
    #[cfg(test)]
    pub(crate) fn new(out: W, json: bool) -> Self {
        Self { out, json }
    }

    /// Prints one record, at time `now` (unix seconds).
    pub(crate) fn emit(&mut self, record: &Record, now: u64) -> anyhow::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, record)?;
            self.out.write_all(b"\n")?;
        } else {
            writeln!(self.out, "{}", record.text(now))?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// The writer, for tests.
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

/// What `burn` says: erased here in any case, then what the relays were told.
fn burned_text(contact: &str, told: &str, deleted: &str) -> String {
    let told = match told {
        "done" => format!("{contact} was told to erase it too"),
        "gone" => format!(
            "{contact}'s queue is already gone (they blocked you or burned first), so there was no one to tell"
        ),
        _ => format!(
            "{contact}'s relay is out of reach: hush tells them when it next reaches it (hush read, hush chat)"
        ),
    };
    let deleted = match deleted {
        "owed" => "; your queue is deleted once your relay is reachable again",
        _ => "",
    };
    format!(
        "burned the conversation with {contact}: erased here; {told}{deleted}. A new invitation is needed to talk again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> MessageOut {
        MessageOut {
            id: "00112233445566778899aabbccddeeff".into(),
            contact: "bob".into(),
            direction: "in",
            sent_at: 1_800_000_000,
            text: Some("the code is 4711".into()),
            expires_at: Some(1_800_000_300),
            view_once: false,
            file: None,
            group: None,
            from: None,
        }
    }

    #[test]
    fn a_group_burn_names_who_was_told_who_is_owed_and_who_cannot_be_reached() {
        let record = Record::Group {
            group: "board".into(),
            text: "burned".into(),
            id: None,
            reached: vec!["bob".into()],
            unreachable: vec![("dave".into(), "not one of your contacts".into())],
            owed: vec!["carol".into()],
        };
        let text = lines(std::slice::from_ref(&record), false).join("\n");
        assert!(
            text.contains("carol's relay is out of reach: hush tells them"),
            "{text}"
        );
        assert!(
            text.contains("not delivered to dave: not one of your contacts"),
            "{text}"
        );
        let json = lines(&[record], true);
        let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(v["owed"], serde_json::json!(["carol"]));
        assert_eq!(v["reached"], serde_json::json!(["bob"]));
    }

    #[test]
    fn a_burn_says_it_erased_here_and_what_the_relays_still_owe() {
        let burned = |told: &str, deleted: &str| Record::Burned {
            contact: "bob".into(),
            contact_told: told.into(),
            queue_deleted: deleted.into(),
        };
        let text = lines(&[burned("done", "done")], false);
        assert!(text[0].contains("erased here; bob was told"), "{text:?}");
        let text = lines(&[burned("gone", "done")], false);
        assert!(text[0].contains("already gone"), "{text:?}");
        let text = lines(&[burned("owed", "owed")], false);
        assert!(
            text[0].contains("out of reach") && text[0].contains("your queue is deleted once"),
            "{text:?}"
        );
        let json = lines(&[burned("owed", "gone")], true);
        let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(v["type"], "burned");
        assert_eq!(
            (&v["contact_told"], &v["queue_deleted"]),
            (&"owed".into(), &"gone".into())
        );
    }

    fn lines(records: &[Record], json: bool) -> Vec<String> {
        let mut out = Output::new(Vec::new(), json);
        for r in records {
            out.emit(r, 1_800_000_000).unwrap();
        }
        String::from_utf8(out.into_inner())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn json_is_one_tagged_object_per_line() {
        let records = [
            Record::Message(message()),
            Record::Sent {
                id: "ab".into(),
                contact: "bob".into(),
                expires_at: None,
            },
            Record::Timer {
                contact: "bob".into(),
                timer: None,
            },
        ];
        let out = lines(&records, true);
        assert_eq!(out.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(first["type"], "message");
        assert_eq!(first["id"], "00112233445566778899aabbccddeeff");
        assert_eq!(first["contact"], "bob");
        assert_eq!(first["direction"], "in");
        assert_eq!(first["sent_at"], 1_800_000_000u64);
        assert_eq!(first["text"], "the code is 4711");
        assert_eq!(first["expires_at"], 1_800_000_300u64);
        let second: serde_json::Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(second["type"], "sent");
        assert!(second["expires_at"].is_null());
        let third: serde_json::Value = serde_json::from_str(&out[2]).unwrap();
        assert_eq!(third["type"], "timer");
        assert!(third["timer"].is_null());
    }

    #[test]
    fn text_shows_id_contact_time_text_and_expiry() {
        let out = lines(&[Record::Message(message())], false);
        assert_eq!(
            out,
            ["00112233445566778899aabbccddeeff  2027-01-15T08:00:00Z  bob: the code is 4711 [expires in 5m00s]"]
        );
    }

    #[test]
    fn a_file_message_says_how_to_save_it_and_json_carries_the_file() {
        let mut m = message();
        m.text = None;
        m.file = Some(FileOut {
            name: "report.pdf".into(),
            size: 3 * 1024 * 1024 / 2,
            relay_expires_at: 1_800_100_000,
        });
        let text = lines(&[Record::Message(m.clone())], false);
        assert_eq!(
            text,
            ["00112233445566778899aabbccddeeff  2027-01-15T08:00:00Z  bob: [file] report.pdf (1.5 MiB); hush save 00112233445566778899aabbccddeeff to save it [expires in 5m00s]"]
        );
        let json: serde_json::Value =
            serde_json::from_str(&lines(&[Record::Message(m)], true)[0]).unwrap();
        assert_eq!(json["file"]["name"], "report.pdf");
        assert_eq!(json["file"]["size"], 1_572_864u64);
        let plain: serde_json::Value =
            serde_json::from_str(&lines(&[Record::Message(message())], true)[0]).unwrap();
        assert!(plain.get("file").is_none());
        assert_eq!(size_text(0), "0 B");
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(200 * 1024 * 1024), "200.0 MiB");
    }

    #[test]
    fn send_and_invite_print_only_the_value() {
        let out = lines(
            &[
                Record::Sent {
                    id: "abcd".into(),
                    contact: "bob".into(),
                    expires_at: Some(5),
                },
                Record::Invitation {
                    invitation: "hush://invite/xyz".into(),
                    contact: "bob".into(),
                    expires_at: 9,
                },
            ],
            false,
        );
        assert_eq!(out, ["abcd", "hush://invite/xyz"]);
    }
}

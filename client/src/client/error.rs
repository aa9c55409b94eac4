//! What can go wrong in a `Client` call, said so that the user knows what to do next.

use hush_protocol::{ErrorCode, RelayAddress};

use crate::conversation::ConversationError;
use crate::crypto::{HandshakeError, InvitationError};
use crate::group::GroupError;
use crate::net::{NetError, ProxyError};
use crate::store::StoreError;

/// Why a [`crate::Client`] call failed. A failed call leaves the local state consistent: what
/// was stored stays stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No contact has that name (a burned conversation leaves none).
    #[error(
        "no contact named {name:?}; `contacts` lists them. A burned conversation is gone for \
         good: a new invitation is needed to talk again"
    )]
    UnknownContact {
        /// The name asked for.
        name: String,
    },
    /// The name is already used by a contact or a pending invitation.
    #[error(
        "the name {name:?} is already taken by a contact, a group or a pending invitation; \
         choose another"
    )]
    NameTaken {
        /// The name.
        name: String,
    },
    /// The name is empty or too long.
    #[error("a contact name must be 1 to 256 bytes long")]
    InvalidName,
    /// The invitation does not parse or verify.
    #[error("invalid invitation: {0}. Ask for a new one")]
    InvalidInvitation(#[from] InvitationError),
    /// The invitation was already used (its one-time send capability was replaced) or its queue
    /// is gone.
    #[error("this invitation was already used or has expired; ask for a new one")]
    InvitationUsed,
    /// The handshake could not be completed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A relay could not be reached. Nothing was lost: the local state is as before the call.
    #[error(
        "cannot reach the relay {relay}; nothing was lost. Check the network (or ask the relay's \
         operator) and try again"
    )]
    Unreachable {
        /// The relay.
        relay: RelayAddress,
    },
    /// A relay presented a certificate other than the pinned one: rotated by its operator
    /// after this client last connected, or an interception.
    #[error(
        "the relay {relay} presented a different certificate than the one this client trusts \
         for it. If its operator changed the relay's certificate, ask them for the relay's new \
         address; otherwise someone may be intercepting the connection"
    )]
    CertificateChanged {
        /// The relay.
        relay: RelayAddress,
    },
    /// A relay refused the request.
    #[error("the relay {relay} refused the request ({code}); try again later")]
    Relay {
        /// The relay.
        relay: RelayAddress,
        /// Its answer.
        code: ErrorCode,
    },
    /// Our relay requires a create token to create queues and files, and this home has none.
    #[error(
        "the relay {relay} requires a create token to create queues and files; ask its operator \
         for your relay address with a token (hush://TOKEN@HOST:PORT#FINGERPRINT) and give it \
         to `hush init --relay` (or `hush token` for an existing home)"
    )]
    TokenRequired {
        /// The relay.
        relay: RelayAddress,
    },
    /// Our relay does not accept this home's create token: it is wrong, or the operator
    /// revoked it.
    #[error(
        "the relay {relay} does not accept your create token (wrong or revoked); ask its \
         operator for a current relay address with a token and give it to `hush init --relay` \
         (or `hush token` for an existing home)"
    )]
    TokenRefused {
        /// The relay.
        relay: RelayAddress,
    },
    /// A relay address with a token was given for a relay that is not this home's.
    #[error(
        "this home receives on the relay {relay}; a create token applies only to that relay's \
         address"
    )]
    OtherRelay {
        /// This home's relay.
        relay: RelayAddress,
    },
    /// The relay speaks no protocol version this client does (no shared ALPN value).
    #[error(
        "the relay {relay} speaks another protocol version than this client; update hush, or \
         ask the relay's operator which version it runs"
    )]
    RelayVersion {
        /// The relay.
        relay: RelayAddress,
    },
    /// A relay answered something this client does not understand.
    #[error("the relay {relay} sent an invalid answer; it may run an incompatible version")]
    RelayProtocol {
        /// The relay.
        relay: RelayAddress,
    },
    /// The SOCKS5 proxy could not carry the connection to a relay; nothing was sent to the
    /// relay directly, and nothing stored locally was lost.
    #[error(transparent)]
    Proxy(ProxyError),
    /// The contact's queue is gone: the contact blocked us, burned the conversation, or its
    /// relay dropped the queue.
    #[error("the contact's queue is gone (they blocked you or burned the conversation); a new invitation is needed")]
    ContactGone,
    /// The conversation was burned (by either side).
    #[error("this conversation was burned; exchange a new invitation to talk again")]
    Burned,
    /// The conversation refused the operation (blocked, unknown message, timer out of range...).
    #[error(transparent)]
    Conversation(ConversationError),
    /// The message could not be encrypted.
    #[error("cannot encrypt the message: {0}")]
    Encrypt(#[from] crate::crypto::EncryptError),
    /// The passphrase does not unlock this home.
    #[error("wrong passphrase; try again")]
    WrongPassphrase,
    /// There is no hush home here yet.
    #[error("no hush home at {home}; run `hush init` first")]
    NotInitialised {
        /// The directory.
        home: std::path::PathBuf,
    },
    /// The home holds records this client cannot read.
    #[error("the local store is damaged ({what}); restore it from a backup or start a new home")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// The home was written by a newer version of hush, in a store format this one does not
    /// know.
    #[error("this home was written by a newer version of hush; upgrade hush to open it")]
    NewerStore,
    /// The local store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The file is larger than the relay (or a file message) accepts. Nothing was uploaded.
    #[error(
        "the file is {size} bytes, more than the relay accepts{}; nothing was uploaded. Send a \
         smaller file (split or compress it)",
        .max.map(|m| format!(" ({m} bytes at most)")).unwrap_or_default()
    )]
    FileTooLarge {
        /// The file's size.
        size: u64,
        /// The most bytes allowed, when known.
        max: Option<u64>,
    },
    /// The relay has no room for the file now. Nothing was uploaded.
    #[error(
        "the relay {relay} has no room for this file right now; nothing was uploaded. Try again \
         later, or ask the relay's operator"
    )]
    RelayFull {
        /// The relay.
        relay: RelayAddress,
    },
    /// The blob is gone from the relay: it expired, or the sender retracted it.
    #[error("the file expired on the relay; ask the sender to send it again")]
    FileExpired,
    /// A chunk or the digest did not match: the file was altered on the way or on the relay.
    #[error("the file was tampered with or corrupted; nothing was written")]
    FileTampered,
    /// The transfer stopped before the end (relay out of reach, connection cut). What was
    /// moved is kept.
    #[error("transfer interrupted; run the same command again to resume")]
    TransferInterrupted {
        /// The relay.
        relay: RelayAddress,
    },
    /// The source file changed while it was being sent (its size, times, inode or content),
    /// so the upload stopped before sending any chunk that differs from what was sent under
    /// the same key. Its blob is dropped; nothing reaches the contact.
    #[error(
        "{} changed while it was being sent; nothing was sent. Run the command again once the \
         file is no longer being written (a new upload starts)",
        .path.display()
    )]
    FileChanged {
        /// The source file.
        path: std::path::PathBuf,
    },
    /// The destination exists already; hush never overwrites a file.
    #[error(
        "{} already exists; hush does not overwrite files. Choose another destination (--to), \
         or move the existing file away",
        .path.display()
    )]
    FileExists {
        /// The destination.
        path: std::path::PathBuf,
    },
    /// A file could not be read or written.
    #[error("cannot use {}: {source}", .path.display())]
    FileIo {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// No group has that name.
    #[error("no group named {name:?}; `contacts` lists contacts and groups")]
    UnknownGroup {
        /// The name asked for.
        name: String,
    },
    /// We are no longer a member of the group (removed, or it was burned).
    #[error(
        "you are no longer a member of the group {group:?}; `group leave {group}` erases your copy"
    )]
    NotAGroupMember {
        /// The group.
        group: String,
    },
    /// The group's rules refuse the change (not an admin, too many members, ...).
    #[error("group {group:?}: {source}")]
    GroupChange {
        /// The group.
        group: String,
        /// What the group's rules say.
        source: GroupError,
    },
    /// The group has no member by that name.
    #[error("{member:?} is not a member of {group:?}; `group members {group}` lists them")]
    UnknownMember {
        /// The group.
        group: String,
        /// The name asked for.
        member: String,
    },
    /// A member of the group is not one of our contacts, so we cannot reach them.
    #[error("{member} is not one of your contacts; invite them first, then add them to {group:?}")]
    NotAContact {
        /// The group.
        group: String,
        /// The name asked for.
        member: String,
    },
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongPassphrase => ClientError::WrongPassphrase,
            StoreError::NotInitialised { home } => ClientError::NotInitialised { home },
            other => ClientError::Store(other),
        }
    }
}

impl From<ConversationError> for ClientError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::Burned => ClientError::Burned,
            other => ClientError::Conversation(other),
        }
    }
}

impl From<NetError> for ClientError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Unreachable { relay } => ClientError::Unreachable { relay },
            NetError::Refused {
                relay,
                code: ErrorCode::TokenRequired,
            } => ClientError::TokenRequired { relay },
            NetError::Refused {
                relay,
                code: ErrorCode::Forbidden,
            } => ClientError::TokenRefused { relay },
            NetError::Refused { relay, code } => ClientError::Relay { relay, code },
            NetError::Protocol { relay } => ClientError::RelayProtocol { relay },
            NetError::Version { relay } => ClientError::RelayVersion { relay },
            NetError::Proxy { error, .. } => ClientError::Proxy(error),
            NetError::CertificateChanged { relay } => ClientError::CertificateChanged { relay },
        }
    }
}

//! Why a group change or a group action was refused.

/// A membership change that cannot be applied, or a group action that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The change's bytes do not parse.
    #[error("a group change is malformed")]
    Malformed,
    /// The change's signature does not verify under its author's key.
    #[error("a group change has a bad signature")]
    BadSignature,
    /// The change belongs to another group.
    #[error("a group change belongs to another group")]
    WrongGroup,
    /// The first change is not a creation, or a later change is.
    #[error("a group change is not where it claims to be in the log (number {number})")]
    OutOfOrder {
        /// The number it claims.
        number: u64,
    },
    /// The author is not a member (never was, was removed, or left).
    #[error("a group change comes from someone who is not a member")]
    NotAMember,
    /// The author is a member without the right to make this change.
    #[error("a group change needs {needed}, which its author is not")]
    NotAllowed {
        /// What the change needs ("the owner", "an admin").
        needed: &'static str,
    },
    /// The change names a member who is not in the group, or adds one who already is.
    #[error("a group change names a member who is {0}")]
    Member(&'static str),
    /// The change would make the group larger than the limit.
    #[error("the group would have more than {max} members")]
    TooManyMembers {
        /// The limit.
        max: usize,
    },
    /// The group was burned: nothing follows.
    #[error("the group was burned")]
    Burned,
    /// Too many changes wait for the ones they follow.
    #[error("too many group changes wait for earlier ones")]
    TooManyWaiting,
}

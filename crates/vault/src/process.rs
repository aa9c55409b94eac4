//! Process hygiene for a program that holds vault keys in memory: no core files, and no
//! reading of its memory by other processes of the same user.
//!
//! What it does: [`harden`] sets the core-file size limits to zero and, on Linux, clears the
//! process's *dumpable* attribute (`PR_SET_DUMPABLE` 0). A non-dumpable process writes no core
//! file whatever the system's core pattern says, cannot be attached to with `ptrace` by another
//! process of the same user, and its `/proc/PID/{mem,environ,maps}` become readable by root only.
//!
//! What it does not do: protect against root, or against the kernel swapping memory out (use
//! encrypted swap), or scrub copies of a secret that were made before it is called. Call it
//! first thing in `main`, before any secret is read.

use std::fmt;

/// One protection that could not be applied, and why.
#[derive(Debug)]
pub struct HardeningGap {
    /// What was not applied.
    pub what: &'static str,
    /// The operating system's reason.
    pub error: std::io::Error,
}

impl fmt::Display for HardeningGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} ({})", self.what, self.error)
    }
}

/// Applies every protection this platform has, and returns the ones that failed (empty when
/// all held). A caller should warn about each gap and carry on: none of them is fatal.
pub fn harden() -> Vec<HardeningGap> {
    let mut gaps = Vec::new();
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, none) {
        gaps.push(HardeningGap {
            what: "disable core files",
            error: e.into(),
        });
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        gaps.push(HardeningGap {
            what: "make the process non-dumpable",
            error: e.into(),
        });
    }
    gaps
}

/// Whether the process is protected as [`harden`] leaves it: core limit zero and, on Linux,
/// not dumpable.
pub fn is_hardened() -> bool {
    let core_off = rustix::process::getrlimit(rustix::process::Resource::Core).current == Some(0);
    #[cfg(target_os = "linux")]
    let not_dumpable = matches!(
        rustix::process::dumpable_behavior(),
        Ok(rustix::process::DumpableBehavior::NotDumpable)
    );
    #[cfg(not(target_os = "linux"))]
    let not_dumpable = true;
    core_off && not_dumpable
}

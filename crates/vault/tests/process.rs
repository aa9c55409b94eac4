//! Process hardening, in a test binary of its own: it changes the whole process.

#[test]
fn harden_stops_core_files_and_dumping() {
    // Before: an ordinary process is dumpable, so the check below can fail.
    #[cfg(target_os = "linux")]
    assert_eq!(
        rustix::process::dumpable_behavior().unwrap(),
        rustix::process::DumpableBehavior::Dumpable
    );
    assert!(!hush_vault::process::is_hardened());
    let gaps = hush_vault::process::harden();
    assert!(gaps.is_empty(), "{gaps:?}");
    assert!(hush_vault::process::is_hardened());
}

//! Reading the store passphrase: from the terminal without echo, or from `HUSH_PASSPHRASE` when
//! stdin is not a terminal (scripts, tests).
//!
//! `HUSH_PASSPHRASE` is taken out of the environment at start-up ([`take_from_env`]), before any
//! thread exists, so no child process inherits it and no later code finds it there. (The bytes
//! the kernel copied at `exec` stay in `/proc/PID/environ`, which the non-dumpable process makes
//! readable by root only.) A new passphrase below [`MIN_STRENGTH_BITS`] gets a warning.
//!
//! What it does not do: derive keys (the client library runs Argon2id) or keep the passphrase
//! once the store is open. The text is zeroized when dropped.

use std::io::{self, IsTerminal};
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// The environment variable read when stdin is not a terminal.
pub(crate) const ENV: &str = "HUSH_PASSPHRASE";

/// A new passphrase estimated weaker than this many bits gets a warning (an offline attacker
/// who copies the home tries passphrases against Argon2id; 60 bits is out of reach there).
pub(crate) const MIN_STRENGTH_BITS: f64 = 60.0;

/// `HUSH_PASSPHRASE` as it was at start-up, taken out of the environment.
static FROM_ENV: Mutex<Option<Zeroizing<String>>> = Mutex::new(None);

/// Moves `HUSH_PASSPHRASE` out of the process environment into memory. Call it first thing in
/// `main`, while the process has one thread.
pub(crate) fn take_from_env() {
    let value = std::env::var(ENV).ok().map(Zeroizing::new);
    std::env::remove_var(ENV);
    *FROM_ENV.lock().unwrap_or_else(PoisonError::into_inner) = value;
}

/// Reads the passphrase; `confirm` asks twice on a terminal, and warns about a weak one (for a
/// new store).
pub(crate) fn read(confirm: bool) -> Result<Zeroizing<String>> {
    let passphrase = if io::stdin().is_terminal() {
        read_from_terminal(confirm)?
    } else {
        let taken = FROM_ENV
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        from_env(taken)?
    };
    if confirm {
        if let Some(warning) = weakness(&passphrase) {
            eprintln!("hush: warning: {warning}");
        }
    }
    Ok(passphrase)
}

/// A rough strength estimate in bits: length times log2 of the alphabet its character classes
/// span (lower case, upper case, digits, anything else). It overrates dictionary words, so it
/// is a floor check, never a promise.
pub(crate) fn strength_bits(passphrase: &str) -> f64 {
    let mut alphabet = 0u32;
    let chars: Vec<char> = passphrase.chars().collect();
    if chars.iter().any(|c| c.is_ascii_lowercase()) {
        alphabet += 26;
    }
    if chars.iter().any(|c| c.is_ascii_uppercase()) {
        alphabet += 26;
    }
    if chars.iter().any(|c| c.is_ascii_digit()) {
        alphabet += 10;
    }
    if chars.iter().any(|c| !c.is_ascii_alphanumeric()) {
        alphabet += 33;
    }
    // A repeated character adds little: count distinct characters, at most the length.
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let effective = distinct.len().max(chars.len() / 2);
    effective as f64 * f64::from(alphabet.max(1)).log2()
}

/// The warning for a passphrase below the strength floor, if it is.
fn weakness(passphrase: &str) -> Option<String> {
    let bits = strength_bits(passphrase);
    (bits < MIN_STRENGTH_BITS).then(|| {
        format!(
            "this passphrase is weak (about {bits:.0} bits, below {MIN_STRENGTH_BITS:.0}): whoever copies this home can try guesses offline; a passphrase of five or more random words is far stronger"
        )
    })
}

fn read_from_terminal(confirm: bool) -> Result<Zeroizing<String>> {
    let first = Zeroizing::new(
        rpassword::prompt_password("hush passphrase: ")
            .context("cannot read the passphrase from the terminal")?,
    );
    check(&first)?;
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat the passphrase: ")
                .context("cannot read the passphrase from the terminal")?,
        );
        if *again != *first {
            bail!("the two passphrases differ; nothing was created, run the command again");
        }
    }
    Ok(first)
}

fn from_env(value: Option<Zeroizing<String>>) -> Result<Zeroizing<String>> {
    let Some(value) = value else {
        bail!(
            "this store needs its passphrase, and stdin is not a terminal: set {ENV} or run the command on a terminal"
        );
    };
    check(&value)?;
    Ok(value)
}

fn check(passphrase: &str) -> Result<()> {
    if passphrase.is_empty() {
        bail!("the passphrase is empty; choose one, or run `hush init` without --passphrase to use a key file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_leaves_the_environment_and_is_read_once() {
        std::env::set_var(ENV, "taken out early");
        take_from_env();
        assert!(std::env::var_os(ENV).is_none(), "still in the environment");
        let taken = FROM_ENV.lock().unwrap().take().unwrap();
        assert_eq!(taken.as_str(), "taken out early");
    }

    #[test]
    fn weak_passphrases_are_flagged_and_strong_ones_are_not() {
        for weak in [
            "1234",
            "password",
            "hunter2",
            "aaaaaaaaaaaaaaaaaaaa",
            "Tr0ub4dor",
        ] {
            assert!(weakness(weak).is_some(), "{weak} passed");
        }
        for strong in [
            "correct horse battery staple",
            "glade-mosaic-ripple-tundra-oak",
            "x7#Kq9!mZ2@pL4$w",
        ] {
            assert!(
                weakness(strong).is_none(),
                "{strong}: {}",
                strength_bits(strong)
            );
        }
    }

    #[test]
    fn the_environment_is_used_and_must_be_set_and_non_empty() {
        assert_eq!(
            from_env(Some(Zeroizing::new("correct horse".into())))
                .unwrap()
                .as_str(),
            "correct horse"
        );
        assert!(from_env(None).unwrap_err().to_string().contains(ENV));
        assert!(from_env(Some(Zeroizing::new(String::new())))
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}

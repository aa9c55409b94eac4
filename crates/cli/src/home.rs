//! Where a user's hush data lives: `--home DIR`, else `HUSH_HOME`, else the XDG data directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Resolves the home directory from the flag and the environment.
///
/// The XDG fallback is `$XDG_DATA_HOME/hush`, else `$HOME/.local/share/hush`.
pub(crate) fn resolve(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let non_empty = |key: &str| env(key).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("HUSH_HOME") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(data) = non_empty("XDG_DATA_HOME") {
        return Ok(Path::new(&data).join("hush"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(Path::new(&home).join(".local/share/hush"));
    }
    bail!("cannot find a home directory: pass --home DIR or set HUSH_HOME")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn precedence_is_flag_then_env_then_xdg() {
        let all = env_of(&[
            ("HUSH_HOME", "/h"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            resolve(Some(Path::new("/f")), &all).unwrap(),
            PathBuf::from("/f")
        );
        assert_eq!(resolve(None, &all).unwrap(), PathBuf::from("/h"));
        let xdg = env_of(&[("XDG_DATA_HOME", "/x"), ("HOME", "/home/u")]);
        assert_eq!(resolve(None, &xdg).unwrap(), PathBuf::from("/x/hush"));
        let home = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            resolve(None, &home).unwrap(),
            PathBuf::from("/home/u/.local/share/hush")
        );
        assert!(resolve(None, &env_of(&[])).is_err());
    }
}

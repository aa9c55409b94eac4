//! File names as they travel in a file message: what the recipient may use to name the file it
//! saves.
//!
//! A received name is only a suggestion. [`sanitise_name`] turns any string into one safe path
//! component: no path separators, no control characters, no leading dot (so neither `..` nor a
//! hidden file), at most [`MAX_FILE_NAME_LEN`] bytes, never empty.
//!
//! What it does not do: check whether a file of that name exists (the caller refuses to
//! overwrite), or touch the file system.

/// Longest file name carried in a file message, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;

/// The name used when nothing of the suggested name survives.
pub const FALLBACK_NAME: &str = "file";

/// One safe path component from any suggested name.
pub fn sanitise_name(suggested: &str) -> String {
    let mut out = String::with_capacity(suggested.len().min(MAX_FILE_NAME_LEN));
    for c in suggested.chars() {
        let c = if c == '/' || c == '\\' || c.is_control() {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_FILE_NAME_LEN {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim().trim_start_matches('.').trim_start();
    if trimmed.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_control_characters_and_dots_are_neutralised() {
        assert_eq!(sanitise_name("report.pdf"), "report.pdf");
        assert_eq!(sanitise_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitise_name("a\\b/c"), "a_b_c");
        assert_eq!(sanitise_name("x\u{1b}[31my\n"), "x_[31my_");
        assert_eq!(sanitise_name(".."), FALLBACK_NAME);
        assert_eq!(sanitise_name(".bashrc"), "bashrc");
        assert_eq!(sanitise_name("   "), FALLBACK_NAME);
        assert_eq!(sanitise_name(""), FALLBACK_NAME);
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400);
        let s = sanitise_name(&long);
        assert!(s.len() <= MAX_FILE_NAME_LEN);
        assert!(s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_sanitised_name_is_one_normal_path_component() {
        for name in ["a/b", "/", "..", "./x", "c:\\x", "\0", "..."] {
            let s = sanitise_name(name);
            let mut parts = std::path::Path::new(&s).components();
            assert!(
                matches!(parts.next(), Some(std::path::Component::Normal(_))),
                "{name:?} -> {s:?}"
            );
            assert!(parts.next().is_none(), "{name:?} -> {s:?}");
        }
    }
}

//! Skill archives: what an upload must be before anything is stored or forwarded. A skill is
//! one directory holding `SKILL.md` (YAML front matter with `name` and `description`, then the
//! instructions) and any other files; it arrives as a zip or as loose files (`files[]` named
//! `dir/SKILL.md`, `dir/...`), which are zipped here, so the gateway always keeps one zip.
//!
//! Checked: the size cap (413), every entry's path (no `..`, no absolute or drive paths, no
//! backslashes: 400), one top-level directory (or none), `SKILL.md` at its root with valid
//! front matter (400). Only `SKILL.md` is decompressed, and only up to [`MAX_SKILL_MD`] bytes.

use std::io::{Cursor, Read, Write};

use bytes::Bytes;
use serde::Deserialize;
use sha2::Digest as _;

/// The largest `SKILL.md` read.
pub const MAX_SKILL_MD: u64 = 1 << 20;
/// The most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Why an upload is not a skill.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("The skill upload is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("The upload is not a readable zip archive: {0}")]
    NotZip(String),
    #[error("Unsafe path in the skill upload: `{0}` (no `..`, absolute paths or backslashes)")]
    UnsafePath(String),
    #[error("All files of a skill must be in one top-level directory (found `{0}` and `{1}`)")]
    SeveralDirectories(String, String),
    #[error("The skill upload holds no SKILL.md at the root of its directory")]
    NoSkillMd,
    #[error("SKILL.md: {0}")]
    FrontMatter(String),
    #[error("The skill upload holds more than {MAX_ENTRIES} files")]
    TooManyFiles,
    #[error("The skill upload holds no files")]
    Empty,
}

/// A checked skill.
#[derive(Debug, Clone)]
pub struct Skill {
    /// `name` of the front matter.
    pub name: String,
    /// `description` of the front matter.
    pub description: String,
    /// The top-level directory (the name when the files sit at the root).
    pub directory: String,
    /// SKILL.md after the front matter.
    pub instructions: String,
    /// The archive as kept.
    pub zip: Bytes,
    /// `sha256:{hex}` of the archive.
    pub digest: String,
}

/// The first component of a checked path, and whether it has more.
fn split_top(path: &str) -> (&str, Option<&str>) {
    match path.split_once('/') {
        Some((top, rest)) => (top, Some(rest)),
        None => (path, None),
    }
}

/// Refuse a path that could leave the skill's directory.
fn safe_path(path: &str) -> Result<(), ArchiveError> {
    let bad = || ArchiveError::UnsafePath(path.chars().take(200).collect());
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.as_bytes().get(1) == Some(&b':')
    {
        return Err(bad());
    }
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Err(bad());
    }
    Ok(())
}

#[derive(Deserialize)]
struct FrontMatter {
    name: Option<String>,
    description: Option<String>,
}

/// The front matter's name and description, and the instructions after it.
pub fn front_matter(md: &str) -> Result<(String, String, String), ArchiveError> {
    let bad = |m: &str| ArchiveError::FrontMatter(m.to_string());
    let md = md.strip_prefix('\u{feff}').unwrap_or(md);
    let rest = md
        .strip_prefix("---\n")
        .or_else(|| md.strip_prefix("---\r\n"))
        .ok_or_else(|| bad("must start with YAML front matter between `---` lines"))?;
    let end = rest
        .find("\n---")
        .ok_or_else(|| bad("the front matter has no closing `---` line"))?;
    let (yaml, after) = rest.split_at(end);
    let body = after
        .strip_prefix("\n---")
        .unwrap_or_default()
        .trim_start_matches(['\r', '\n']);
    let fm: FrontMatter = serde_saphyr::from_str(yaml).map_err(|e| {
        ArchiveError::FrontMatter(format!("the front matter is not valid YAML: {e}"))
    })?;
    let name = fm.name.map(|s| s.trim().to_string()).unwrap_or_default();
    let description = (fm.description)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(bad("the front matter needs a `name`"));
    }
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(
            "`name` must be at most 64 lowercase letters, digits and hyphens",
        ));
    }
    if description.is_empty() {
        return Err(bad("the front matter needs a `description`"));
    }
    if description.len() > 1024 {
        return Err(bad("`description` must be at most 1024 characters"));
    }
    Ok((name, description, body.to_string()))
}

/// Check a zip archive of at most `limit` bytes.
pub fn check_zip(zip: Bytes, limit: usize) -> Result<Skill, ArchiveError> {
    if zip.len() > limit {
        return Err(ArchiveError::TooLarge {
            size: zip.len(),
            limit,
        });
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(zip.clone()))
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyFiles);
    }
    let mut top: Option<String> = None;
    let mut at_root = false;
    let mut skill_md: Option<(usize, bool)> = None;
    let mut files = 0usize;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?
            .to_string();
        let is_dir = entry.is_dir();
        drop(entry);
        safe_path(&name)?;
        if is_dir {
            continue;
        }
        files += 1;
        let (first, rest) = split_top(&name);
        if name.starts_with("__MACOSX/") {
            continue;
        }
        match rest {
            None => {
                at_root = true;
                if first == "SKILL.md" {
                    skill_md = Some((i, true));
                }
            }
            Some(rest) => {
                match &top {
                    Some(t) if t != first => {
                        return Err(ArchiveError::SeveralDirectories(
                            t.clone(),
                            first.to_string(),
                        ));
                    }
                    Some(_) => {}
                    None => top = Some(first.to_string()),
                }
                if rest == "SKILL.md" {
                    skill_md = Some((i, false));
                }
            }
        }
    }
    if files == 0 {
        return Err(ArchiveError::Empty);
    }
    if let (true, Some(t)) = (at_root, &top) {
        return Err(ArchiveError::SeveralDirectories(".".into(), t.clone()));
    }
    let (index, root) = skill_md.ok_or(ArchiveError::NoSkillMd)?;
    let mut md = String::new();
    archive
        .by_index(index)
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?
        .take(MAX_SKILL_MD)
        .read_to_string(&mut md)
        .map_err(|e| ArchiveError::FrontMatter(format!("cannot be read as UTF-8 text: {e}")))?;
    let (name, description, instructions) = front_matter(&md)?;
    let directory = if root {
        name.clone()
    } else {
        top.unwrap_or_default()
    };
    let digest = format!("sha256:{}", hex(&sha2::Sha256::digest(&zip)));
    Ok(Skill {
        name,
        description,
        directory,
        instructions,
        zip,
        digest,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether `bytes` start like a zip archive.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Check loose files (`(path, content)`): a single zip among them is checked as it is;
/// otherwise they are zipped (deflated) and checked, within `limit` bytes in all.
pub fn check_files(files: Vec<(String, Bytes)>, limit: usize) -> Result<Skill, ArchiveError> {
    if let [(_, one)] = files.as_slice()
        && is_zip(one)
    {
        return check_zip(one.clone(), limit);
    }
    if files.is_empty() {
        return Err(ArchiveError::Empty);
    }
    if files.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyFiles);
    }
    let size: usize = files.iter().map(|(_, b)| b.len()).sum();
    if size > limit {
        return Err(ArchiveError::TooLarge { size, limit });
    }
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(size / 2 + 1024)));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, content) in &files {
        safe_path(path)?;
        w.start_file(path.as_str(), opts)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        w.write_all(content)
            .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    }
    let out = w
        .finish()
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?
        .into_inner();
    check_zip(Bytes::from(out), limit.max(size + 64 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = "---\nname: pdf-tools\ndescription: Work with PDFs\n---\n# Use it\n";

    fn files(list: &[(&str, &str)]) -> Vec<(String, Bytes)> {
        list.iter()
            .map(|(p, c)| (p.to_string(), Bytes::from(c.to_string())))
            .collect()
    }

    #[test]
    fn loose_files_are_zipped_and_read() {
        let s = check_files(
            files(&[("pdf-tools/SKILL.md", MD), ("pdf-tools/run.py", "print(1)")]),
            1 << 20,
        )
        .unwrap();
        assert_eq!(s.name, "pdf-tools");
        assert_eq!(s.description, "Work with PDFs");
        assert_eq!(s.directory, "pdf-tools");
        assert_eq!(s.instructions, "# Use it\n");
        assert!(s.digest.starts_with("sha256:"));
        // the zip made is read back the same
        let again = check_zip(s.zip.clone(), 1 << 20).unwrap();
        assert_eq!(again.name, "pdf-tools");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in [
            "../x/SKILL.md",
            "a/../../SKILL.md",
            "/etc/SKILL.md",
            "a\\..\\SKILL.md",
            "C:/x",
        ] {
            let e = check_files(files(&[(p, MD)]), 1 << 20).unwrap_err();
            assert!(matches!(e, ArchiveError::UnsafePath(_)), "{p}: {e:?}");
        }
    }

    #[test]
    fn skill_md_and_its_front_matter_are_required() {
        let e = check_files(files(&[("s/README.md", "x")]), 1 << 20).unwrap_err();
        assert_eq!(e, ArchiveError::NoSkillMd);
        let e = check_files(files(&[("s/SKILL.md", "# no front matter")]), 1 << 20).unwrap_err();
        assert!(matches!(e, ArchiveError::FrontMatter(_)));
        let e =
            check_files(files(&[("s/SKILL.md", "---\nname: x\n---\nbody")]), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("description"), "{e}");
        let e = check_files(files(&[("a/SKILL.md", MD), ("b/x", "y")]), 1 << 20).unwrap_err();
        assert!(matches!(e, ArchiveError::SeveralDirectories(..)));
    }

    #[test]
    fn the_cap_is_enforced() {
        let big = "x".repeat(2000);
        let e = check_files(files(&[("s/SKILL.md", MD), ("s/big", &big)]), 1000).unwrap_err();
        assert!(matches!(e, ArchiveError::TooLarge { .. }));
        assert!(matches!(
            check_zip(Bytes::from_static(b"PK\x03\x04garbage"), 1000),
            Err(ArchiveError::NotZip(_))
        ));
    }
}

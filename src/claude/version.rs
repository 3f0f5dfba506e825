//! Claude Code's version, as `claude --version` and the init line's
//! `claude_code_version` tell it: leash handles what differs between the versions it
//! supports, and `leash doctor` warns about older ones.

/// `2.1.332`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The version at the start of `text`: `2.1.332`, `2.1.332 (Claude Code)`,
    /// `2.1.332-fake`.
    pub fn parse(text: &str) -> Option<Version> {
        let word = text.split_whitespace().next()?;
        let mut parts = word.splitn(3, '.');
        let mut number = || -> Option<u32> {
            let part = parts.next()?;
            let digits = part
                .find(|c: char| !c.is_ascii_digit())
                .map_or(part, |end| &part[..end]);
            digits.parse().ok()
        };
        Some(Version(number()?, number()?, number()?))
    }

    /// The oldest Claude Code leash supports.
    pub fn oldest_supported() -> Version {
        Version::parse(super::OLDEST_SUPPORTED).unwrap_or(Version(0, 0, 0))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            Version::parse("2.1.332 (Claude Code)"),
            Some(Version(2, 1, 332))
        );
        assert_eq!(Version::parse("2.1.332-fake"), Some(Version(2, 1, 332)));
        assert_eq!(Version::parse("claude"), None);
        assert_eq!(Version::parse(""), None);
        assert!(Version(2, 1, 109) < Version::oldest_supported());
        assert!(Version(2, 1, 110) == Version::oldest_supported());
        assert!(Version(2, 2, 0) > Version(2, 1, 332));
        assert_eq!(
            Version::parse(super::super::NEWEST_TESTED).map(|v| v.to_string()),
            Some(super::super::NEWEST_TESTED.to_string())
        );
    }
}

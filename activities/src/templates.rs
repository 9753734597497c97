//! Loading the SMS templates from files: `<dir>/{he,ar,en,ru}.txt`, one message per file.
//!
//! The worker loads them once at start-up; [`TemplateSet::from_sources`] checks the set against
//! the segment ceiling there, so a template that could produce an over-long message stops the
//! worker instead of failing a customer's message at send time.

use std::path::Path;

use anyhow::Context;
use pcn_workflows::domain::Language;
use pcn_workflows::message::{TemplateLimits, TemplateSet};

/// Reads `<dir>/<code>.txt` for every language (trailing line breaks removed) and builds the
/// checked [`TemplateSet`]. Errors name the missing or unreadable file, or the rejected template.
pub fn load_dir(dir: &Path, limits: TemplateLimits) -> anyhow::Result<TemplateSet> {
    let mut sources = Vec::with_capacity(Language::ALL.len());
    for language in Language::ALL {
        let path = dir.join(format!("{}.txt", language.code()));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the SMS template {}", path.display()))?;
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        sources.push((language, text));
    }
    TemplateSet::from_sources(sources, limits)
        .with_context(|| format!("checking the SMS templates in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcn_workflows::customer::FirstName;
    use pcn_workflows::domain::YearMonth;
    use pcn_workflows::message::Encoding;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/sms");

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pcn-templates-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn templates_shipped_load_with_default_limits_and_render() {
        let set = load_dir(Path::new(SHIPPED), TemplateLimits::default()).unwrap();
        let month = YearMonth::parse("2026-10").unwrap();
        let cases = [
            (Language::Hebrew, "דנה", "אוקטובר"),
            (Language::Arabic, "رنا", "أكتوبر"),
            (Language::English, "Dana", "October"),
            (Language::Russian, "Анна", "октябрь"),
        ];
        for (language, first, month_name) in cases {
            let m = set.render(language, &FirstName::parse(first).unwrap(), month);
            assert!(m.text.contains(first), "{language}: {}", m.text);
            assert!(m.text.contains(month_name), "{language}: {}", m.text);
            assert!(m.text.contains("https://bank.example/premium"));
            assert!(m.text.contains("STOP"));
            assert!(!m.text.ends_with('\n'));
            assert!(m.segments.segments <= set.limits().max_segments);
        }
        let en = set.render(Language::English, &FirstName::parse("Dana").unwrap(), month);
        assert_eq!(en.segments.encoding, Encoding::Gsm7);
        assert_eq!(en.segments.segments, 2);
    }

    #[test]
    fn templates_missing_file_is_named() {
        let dir = scratch("missing");
        for code in ["he", "ar", "en"] {
            std::fs::write(dir.join(format!("{code}.txt")), "Hi {CustomerFirstName}\n").unwrap();
        }
        let err = load_dir(&dir, TemplateLimits::default()).unwrap_err();
        assert!(format!("{err:#}").contains("ru.txt"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn templates_invalid_one_names_the_language_and_crlf_is_trimmed_at_the_end() {
        let dir = scratch("invalid");
        for code in ["he", "ar", "en"] {
            std::fs::write(
                dir.join(format!("{code}.txt")),
                "Hi {CustomerFirstName}\r\n\n",
            )
            .unwrap();
        }
        std::fs::write(dir.join("ru.txt"), "Привет, {Name}\n").unwrap();
        let err = load_dir(&dir, TemplateLimits::default()).unwrap_err();
        let shown = format!("{err:#}");
        assert!(shown.contains("template.ru"), "{shown}");
        assert!(shown.contains("{Name}"), "{shown}");
        std::fs::write(dir.join("ru.txt"), "Привет, {CustomerFirstName}\n").unwrap();
        let set = load_dir(&dir, TemplateLimits::default()).unwrap();
        assert_eq!(
            set.template(Language::English).source(),
            "Hi {CustomerFirstName}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

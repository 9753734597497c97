//! Tests of template parsing, the load-time check and rendering.

use super::*;
use proptest::prelude::*;

const SHIPPED: [(Language, &str); 4] = [
    (
        Language::Hebrew,
        include_str!("../../../../templates/sms/he.txt"),
    ),
    (
        Language::Arabic,
        include_str!("../../../../templates/sms/ar.txt"),
    ),
    (
        Language::English,
        include_str!("../../../../templates/sms/en.txt"),
    ),
    (
        Language::Russian,
        include_str!("../../../../templates/sms/ru.txt"),
    ),
];

fn shipped_sources() -> Vec<(Language, String)> {
    SHIPPED
        .iter()
        .map(|(l, s)| (*l, s.trim_end_matches(['\n', '\r']).to_owned()))
        .collect()
}

fn shipped() -> TemplateSet {
    TemplateSet::from_sources(shipped_sources(), TemplateLimits::default()).unwrap()
}

fn simple_sources() -> Vec<(Language, String)> {
    vec![
        (
            Language::Hebrew,
            "שלום {CustomerFirstName}, {MonthName}".into(),
        ),
        (
            Language::Arabic,
            "مرحباً {CustomerFirstName}، {MonthName}".into(),
        ),
        (
            Language::English,
            "Hello {CustomerFirstName}, {MonthName} {Year}".into(),
        ),
        (
            Language::Russian,
            "Привет, {CustomerFirstName}! {MonthName}".into(),
        ),
    ]
}

fn name(s: &str) -> FirstName {
    FirstName::parse(s).unwrap()
}

fn october() -> YearMonth {
    YearMonth::new(2026, 10).unwrap()
}

fn count(encoding: Encoding, units: usize, segments: u32) -> SegmentCount {
    SegmentCount {
        encoding,
        units,
        segments,
    }
}

// --- template parsing -------------------------------------------------------------------

#[test]
fn template_parses_placeholders() {
    let t = MessageTemplate::parse(
        Language::English,
        "Hi {CustomerFirstName}: {MonthName} {Year}!",
    )
    .unwrap();
    assert_eq!(t.language(), Language::English);
    assert_eq!(t.fill("Dana", "October", 2026), "Hi Dana: October 2026!");
    let twice = MessageTemplate::parse(Language::English, "{CustomerFirstName}{CustomerFirstName}")
        .unwrap();
    assert_eq!(twice.fill("Al", "May", 2026), "AlAl");
}

#[test]
fn template_errors_name_the_language_field() {
    let cases = [
        ("", "empty"),
        ("  \n ", "empty"),
        ("Hello {MonthName}", "{CustomerFirstName}"),
        (
            "Hi {CustomerFirstName} {Name}",
            "unknown placeholder \"{Name}\"",
        ),
        ("Hi {customerfirstname}", "unknown placeholder"),
        ("Hi {CustomerFirstName} {MonthName", "without a closing"),
        ("Hi {CustomerFirstName} }", "without a matching"),
        ("Hi {{CustomerFirstName}}", "unknown placeholder"),
        ("Hi {CustomerFirstName}\r\nBye", "control character"),
    ];
    for (source, expected) in cases {
        let err = MessageTemplate::parse(Language::Russian, source).unwrap_err();
        assert_eq!(err.field, "template.ru", "{source:?}");
        assert!(err.message.contains(expected), "{source:?}: {err}");
    }
    let err = MessageTemplate::parse(Language::Hebrew, "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid template.he: the template is empty"
    );
}

// --- template sets ----------------------------------------------------------------------

#[test]
fn a_set_needs_every_language_exactly_once() {
    let mut sources = simple_sources();
    sources.retain(|(l, _)| *l != Language::Arabic && *l != Language::Russian);
    let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
    assert_eq!(err.field, "templates");
    assert!(err.message.contains("ar, ru"), "{err}");

    let mut sources = simple_sources();
    sources.push((Language::English, "Again {CustomerFirstName}".into()));
    let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
    assert!(err.message.contains("en template is given twice"), "{err}");

    let mut sources = simple_sources();
    sources[1].1 = "no name".into();
    let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
    assert_eq!(err.field, "template.ar");
}

#[test]
fn zero_limits_are_refused() {
    for limits in [
        TemplateLimits {
            max_segments: 0,
            ..TemplateLimits::default()
        },
        TemplateLimits {
            max_first_name_chars: 0,
            ..TemplateLimits::default()
        },
    ] {
        let err = TemplateSet::from_sources(simple_sources(), limits).unwrap_err();
        assert_eq!(err.field, "template_limits");
    }
}

#[test]
fn renders_each_language_personalised() {
    let set = TemplateSet::from_sources(simple_sources(), TemplateLimits::default()).unwrap();
    let dana = name("Dana");
    let expected = [
        (Language::Hebrew, "שלום Dana, אוקטובר"),
        (Language::Arabic, "مرحباً Dana، أكتوبر"),
        (Language::English, "Hello Dana, October 2026"),
        (Language::Russian, "Привет, Dana! октябрь"),
    ];
    for (language, text) in expected {
        let m = set.render(language, &dana, october());
        assert_eq!(m.text, text);
        assert_eq!(m.language, language);
        assert_eq!(m.segments, segments(text));
    }
    let en = set.render(Language::English, &dana, october());
    assert_eq!(en.segments, count(Encoding::Gsm7, 24, 1));
    // A Hebrew name turns the English message into UCS-2.
    let en = set.render(Language::English, &name("דנה"), october());
    assert_eq!(en.text, "Hello דנה, October 2026");
    assert_eq!(en.segments, count(Encoding::Ucs2, 23, 1));
}

#[test]
fn long_first_names_are_shortened_to_the_limit() {
    let set = TemplateSet::from_sources(simple_sources(), TemplateLimits::default()).unwrap();
    let long = name(&format!("{}{}", "א".repeat(20), "ב".repeat(30)));
    let m = set.render(Language::Hebrew, &long, october());
    assert_eq!(m.text, format!("שלום {}, אוקטובר", "א".repeat(20)));
    // Cut by characters (not bytes), then trailing whitespace dropped.
    let spaced = name("Maria Antonia Josefa Johanna");
    let m = set.render(Language::English, &spaced, october());
    assert_eq!(m.text, "Hello Maria Antonia Josefa, October 2026");
    let exact = name(&"x".repeat(20));
    let m = set.render(Language::English, &exact, october());
    assert!(m.text.contains(&"x".repeat(20)));
    // A configured budget is honoured.
    let limits = TemplateLimits {
        max_first_name_chars: 3,
        ..TemplateLimits::default()
    };
    let set = TemplateSet::from_sources(simple_sources(), limits).unwrap();
    assert_eq!(
        set.render(Language::Russian, &name("Анастасия"), october())
            .text,
        "Привет, Ана! октябрь"
    );
}

#[test]
fn an_over_long_template_is_refused_at_load_naming_language_and_counts() {
    let mut sources = simple_sources();
    // 120 Russian letters + the worst name (20 emoji = 40 units) + "сентябрь" (8) + the
    // fixed text: well over 2 segments.
    sources[3].1 = format!("{} {{CustomerFirstName}} {{MonthName}}", "ж".repeat(120));
    let limits = TemplateLimits {
        max_segments: 2,
        ..TemplateLimits::default()
    };
    let err = TemplateSet::from_sources(sources, limits).unwrap_err();
    assert_eq!(err.field, "template.ru");
    // 120 + 1 + 40 + 1 + 8 ("сентябрь") = 170 units.
    assert!(
        err.message
            .contains("ru template can need 3 SMS segments (170 UCS-2 units"),
        "{err}"
    );
    assert!(err.message.contains("more than max_segments 2"), "{err}");
    assert!(err.message.contains("сентябрь"), "{err}");
}

#[test]
fn the_worst_case_of_a_gsm_template_is_a_non_gsm_name() {
    // 100 septets of text: with 20 '€' (40 septets) and "September" it stays one GSM-7
    // segment, but 20 emoji make it UCS-2: 100 + 1 + 40 + 1 + 9 = 151 units, 3 segments.
    let mut sources = simple_sources();
    sources[2].1 = format!("{} {{CustomerFirstName}} {{MonthName}}", "a".repeat(100));
    let set = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap();
    assert_eq!(
        set.worst_case(Language::English),
        count(Encoding::Ucs2, 151, 3)
    );
    let euros = set.render(Language::English, &name(&"€".repeat(20)), october());
    assert_eq!(euros.segments, count(Encoding::Gsm7, 149, 1));
    let emoji = set.render(Language::English, &name(&"\u{1F600}".repeat(25)), october());
    assert_eq!(emoji.segments, count(Encoding::Ucs2, 149, 3));
}

#[test]
fn shipped_templates_pass_the_default_limit_and_it_is_the_smallest() {
    let set = shipped();
    let worst: Vec<(Language, SegmentCount)> = Language::ALL
        .into_iter()
        .map(|l| (l, set.worst_case(l)))
        .collect();
    assert_eq!(
        worst,
        vec![
            (Language::Hebrew, count(Encoding::Ucs2, 194, 3)),
            (Language::Arabic, count(Encoding::Ucs2, 200, 3)),
            (Language::English, count(Encoding::Ucs2, 278, 5)),
            (Language::Russian, count(Encoding::Ucs2, 201, 3)),
        ]
    );
    let one_less = TemplateLimits {
        max_segments: TemplateLimits::DEFAULT_MAX_SEGMENTS - 1,
        ..TemplateLimits::default()
    };
    let err = TemplateSet::from_sources(shipped_sources(), one_less).unwrap_err();
    assert_eq!(err.field, "template.en");
}

#[test]
fn shipped_templates_render_in_every_language() {
    let set = shipped();
    let cases = [
        (Language::Hebrew, "שלום דנה,", "לאורך כל חודש אוקטובר", 3),
        (Language::Arabic, "مرحباً رنا،", "طوال شهر أكتوبر", 3),
        (Language::English, "Hello Dana,", "throughout October.", 2),
        (Language::Russian, "Добрый день, Анна!", "Весь октябрь", 3),
    ];
    for (language, greeting, month, segs) in cases {
        let first = match language {
            Language::Hebrew => "דנה",
            Language::Arabic => "رنا",
            Language::English => "Dana",
            Language::Russian => "Анна",
        };
        let m = set.render(language, &name(first), october());
        assert!(m.text.starts_with(greeting), "{language}: {}", m.text);
        assert!(m.text.contains(month), "{language}: {}", m.text);
        assert!(
            m.text.contains("https://bank.example/premium"),
            "{language}"
        );
        assert!(m.text.contains("STOP"), "{language}");
        assert!(!m.text.contains('{'), "{language}: {}", m.text);
        assert_eq!(m.segments.segments, segs, "{language}: {:?}", m.segments);
    }
    let en = set.render(Language::English, &name("Dana"), october());
    assert_eq!(en.segments.encoding, Encoding::Gsm7);
}

proptest! {
    #[test]
    fn prop_rendering_never_exceeds_the_checked_worst_case(
        first in "[a-zA-Z€\\[\\]{}\u{05D0}-\u{05EA}\u{1F600}-\u{1F64F} ]{0,60}",
        month in 1u32..=12,
        language in prop::sample::select(Language::ALL.to_vec()),
    ) {
        let Ok(first) = FirstName::parse(&format!("X{first}")) else {
            return Ok(());
        };
        let set = shipped();
        let m = set.render(language, &first, YearMonth::new(2027, month).unwrap());
        let worst = set.worst_case(language);
        prop_assert!(m.segments.segments <= worst.segments);
        prop_assert!(m.segments.segments <= set.limits().max_segments);
    }
}

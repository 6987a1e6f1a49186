//! The deployment files in `deploy/` are checked against the code.
//!
//! `deploy/anapars-hub.example.toml` is generated: every setting of [`anapars_hub::Config`], in the
//! struct's order, as its doc comment followed by the key at its default, commented out. The doc
//! comments are parsed from `src/config/mod.rs` and the defaults come from `Config::default()`
//! serialised, so a setting's meaning and default are written once, in the code. When the file and
//! the code disagree the test fails; `UPDATE_DEPLOY=1 cargo test --test deploy` rewrites the file
//! instead. The file is also loaded as the hub loads it, as shipped and with every default
//! uncommented, and both must give `Config::default()`.
//!
//! `deploy/anapars-hub.service` is checked by `systemd-analyze verify` where it is installed, and
//! for its shape (sections, the hardening, a stop timeout that covers the shutdown) everywhere.

use anapars_hub::Config;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const EXAMPLE: &str = "deploy/anapars-hub.example.toml";
const UNIT: &str = "deploy/anapars-hub.service";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `Config::default()` serialised: every setting's key and default.
fn defaults() -> Map<String, Value> {
    match serde_json::to_value(Config::default()).expect("Config serialises") {
        Value::Object(fields) => fields,
        other => panic!("Config serialises to a map, not {other}"),
    }
}

/// What the body of `pub struct Config` holds, in order.
#[derive(Debug)]
enum Item {
    /// A `// ---- Title ----` line that groups the settings after it.
    Section(String),
    /// A field: its name, its type as written, and its doc comment's lines.
    Field { name: String, ty: String, doc: Vec<String> },
}

/// The items of `pub struct Config` in `src/config/mod.rs`.
fn config_items(source: &str) -> Vec<Item> {
    let mut lines = source.lines().skip_while(|l| !l.starts_with("pub struct Config ")).skip(1);
    let mut items = Vec::new();
    let mut doc = Vec::new();
    for line in lines.by_ref() {
        if line == "}" {
            return items;
        }
        let line = line.trim();
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.strip_prefix(' ').unwrap_or(text).to_owned());
        } else if let Some(title) = line.strip_prefix("// ----") {
            // The title without the code it names (`Telemetry (domain::telemetry)`).
            let title = title.trim_end_matches('-').trim();
            let title = title.split_once(" (").map_or(title, |(words, _)| words);
            items.push(Item::Section(title.to_owned()));
        } else if let Some(field) = line.strip_prefix("pub ") {
            let (name, ty) = field.split_once(':').unwrap_or_else(|| panic!("a field is `pub name: Type,`: {line}"));
            let ty = ty.trim().trim_end_matches(',').to_owned();
            items.push(Item::Field { name: name.trim().to_owned(), ty, doc: std::mem::take(&mut doc) });
        } else if !(line.is_empty() || line.starts_with("#[") || line.starts_with("//")) {
            panic!("src/config/mod.rs: unexpected line in `pub struct Config`: {line}");
        }
    }
    panic!("src/config/mod.rs has no `pub struct Config {{ ... }}`")
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A default as a TOML value, or `None` when the setting is unset by default.
fn toml_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(toml_string(s)),
        other => panic!("settings are numbers, switches or strings, not {other}"),
    }
}

/// The example file as the code describes it.
fn expected_example(items: &[Item], defaults: &Map<String, Value>) -> String {
    let mut out = String::from(
        "# Anapars Hub: every setting, at its default.\n\
         #\n\
         # Each setting is its description, then its key at the default value, commented out: uncomment\n\
         # the line and change the value to set it. HUB_* environment variables (DATABASE_URL and\n\
         # REDIS_URL for the two URLs) override what this file sets. Durations are whole numbers in\n\
         # the unit their name ends with (`_ms`, `_secs`).\n\
         #\n\
         # Generated from the doc comments and defaults in src/config/mod.rs by tests/deploy.rs: change\n\
         # them there, then run `UPDATE_DEPLOY=1 cargo test --test deploy` to rewrite this file.\n",
    );
    for item in items {
        match item {
            Item::Section(title) => out.push_str(&format!("\n# ---- {title} ----\n")),
            Item::Field { name, ty, doc } => {
                out.push('\n');
                for line in doc {
                    out.push_str(&if line.is_empty() { "#\n".to_owned() } else { format!("# {line}\n") });
                }
                let default =
                    defaults.get(name).unwrap_or_else(|| panic!("`{name}` is not a key of Config serialised"));
                match toml_value(default) {
                    Some(value) => out.push_str(&format!("# {name} = {value}\n")),
                    None => {
                        out.push_str(if ty.contains("Secret") {
                            "# Unset by default. A secret: keep this file readable by the hub's user only, or set\n\
                             # it in the environment instead.\n"
                        } else {
                            "# Unset by default.\n"
                        });
                        out.push_str(&format!("# {name} = \"\"\n"));
                    }
                }
            }
        }
    }
    out
}

/// The first line where `found` differs from `expected`, for the failure message.
fn first_difference(expected: &str, found: &str) -> String {
    let (mut e, mut f) = (expected.lines(), found.lines());
    for n in 1.. {
        match (e.next(), f.next()) {
            (Some(a), Some(b)) if a == b => {}
            (None, None) => break,
            (a, b) => {
                return format!(
                    "line {n}:\n  expected: {}\n  found:    {}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                )
            }
        }
    }
    "a difference in line endings".into()
}

/// The example as the code describes it, built once per run. With `UPDATE_DEPLOY=1` it is also
/// written to the file here, before any test reads the file.
fn expected() -> &'static str {
    static EXPECTED: OnceLock<String> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let items = config_items(&read("src/config/mod.rs"));
        let defaults = defaults();
        let fields: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Field { name, doc, .. } => {
                    assert!(!doc.is_empty(), "src/config/mod.rs: `{name}` has no doc comment");
                    Some(name.as_str())
                }
                Item::Section(_) => None,
            })
            .collect();
        let parsed: BTreeSet<&str> = fields.iter().copied().collect();
        let serialised: BTreeSet<&str> = defaults.keys().map(String::as_str).collect();
        assert_eq!(parsed, serialised, "the fields parsed from `pub struct Config` are not the keys it serialises to");
        assert_eq!(parsed.len(), fields.len(), "a field of `pub struct Config` was parsed twice");
        let text = expected_example(&items, &defaults);
        if std::env::var_os("UPDATE_DEPLOY").is_some_and(|v| v == "1") {
            let path = repo_path(EXAMPLE);
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            eprintln!("rewrote {EXAMPLE}");
        }
        text
    })
}

/// The example file as committed (rewritten first with `UPDATE_DEPLOY=1`).
fn example() -> String {
    expected();
    read(EXAMPLE)
}

#[test]
fn the_example_config_is_generated_from_the_code() {
    let expected = expected();
    let found = std::fs::read_to_string(repo_path(EXAMPLE)).unwrap_or_default();
    assert!(
        found == expected,
        "{EXAMPLE} does not match the settings in src/config/mod.rs ({}); \
         run `UPDATE_DEPLOY=1 cargo test --test deploy` to rewrite it",
        first_difference(expected, &found)
    );
}

/// The keys the example sets when every assignment in it is uncommented.
fn example_keys(example: &str) -> Vec<String> {
    example
        .lines()
        .filter_map(|l| l.strip_prefix("# ")?.split_once(" = ").map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_example_names_every_setting_once() {
    let keys = example_keys(&example());
    let unique: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), keys.len(), "{EXAMPLE} names a setting twice");
    let defaults = defaults();
    let settings: BTreeSet<&str> = defaults.keys().map(String::as_str).collect();
    assert_eq!(unique, settings, "{EXAMPLE} and Config (the README's table) name different settings");
}

/// `Config::load` of `text` written to a file, with no `HUB_*` variable in the environment.
#[allow(clippy::result_large_err)] // figment::Jail's own signature
fn load(text: &str) -> Value {
    let mut loaded = Value::Null;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        let file = jail.directory().join("hub.toml");
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        let config = Config::load(Some(&file)).map_err(|e| format!("loading {EXAMPLE}: {e:#}"))?;
        loaded = serde_json::to_value(config).map_err(|e| e.to_string())?;
        Ok(())
    });
    loaded
}

/// The settings where `loaded` differs from the defaults.
fn differences(loaded: &Value) -> Vec<String> {
    defaults()
        .into_iter()
        .filter(|(key, default)| loaded.get(key) != Some(default))
        .map(|(key, default)| format!("`{key}`: {} instead of {default}", loaded.get(&key).unwrap_or(&Value::Null)))
        .collect()
}

#[test]
fn the_example_loads_and_its_values_are_the_defaults() {
    let example = example();
    let as_shipped = differences(&load(&example));
    assert!(as_shipped.is_empty(), "{EXAMPLE} as shipped does not load as the defaults:\n{}", as_shipped.join("\n"));

    let set: BTreeSet<String> = defaults().into_iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
    let mut uncommented = 0;
    let text: String = example
        .lines()
        .map(|line| {
            let assignment =
                line.strip_prefix("# ").filter(|l| l.split_once(" = ").is_some_and(|(k, _)| set.contains(k)));
            if assignment.is_some() {
                uncommented += 1;
            }
            format!("{}\n", assignment.unwrap_or(line))
        })
        .collect();
    assert_eq!(uncommented, set.len(), "{EXAMPLE}: not one assignment for each setting with a default");
    let uncommented = differences(&load(&text));
    assert!(
        uncommented.is_empty(),
        "{EXAMPLE} with its defaults uncommented does not load as the defaults:\n{}",
        uncommented.join("\n")
    );
}

/// The unit's `Key=Value` lines by section, checked for the shape systemd reads.
fn unit_entries(unit: &str) -> Vec<(String, String, String)> {
    let mut section = None;
    let mut entries = Vec::new();
    for (n, line) in unit.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{UNIT}:{}: not `Key=Value`: {line}", n + 1));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "{UNIT}:{}: not a key: {key}",
            n + 1
        );
        let section = section.clone().unwrap_or_else(|| panic!("{UNIT}:{}: a setting before any section", n + 1));
        entries.push((section, key.to_owned(), value.to_owned()));
    }
    entries
}

#[test]
fn the_unit_runs_the_hub_hardened_and_gives_it_time_to_stop() {
    let unit = read(UNIT);
    let entries = unit_entries(&unit);
    let sections: BTreeSet<&str> = entries.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(sections, BTreeSet::from(["Install", "Service", "Unit"]), "{UNIT}: its sections");
    let service = |key: &str| {
        entries
            .iter()
            .find(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .unwrap_or_else(|| panic!("{UNIT}: no {key}= in [Service]"))
    };
    for (key, value) in [
        ("Type", "simple"),
        ("ExecStart", "/usr/local/bin/anapars-hub --config /etc/anapars-hub/hub.toml serve"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("LimitNOFILE", "65536"),
        ("StateDirectory", "anapars-hub"),
        ("WorkingDirectory", "/var/lib/anapars-hub"),
        ("ReadWritePaths", "/var/lib/anapars-hub"),
        ("UMask", "0077"),
        ("CapabilityBoundingSet", ""),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(service(key), value, "{UNIT}: {key}=");
    }
    assert!(!service("User").is_empty() && service("User") != "root", "{UNIT}: the hub runs as a user of its own");

    // Shutdown: the drain, then up to the grace for the sockets and up to the grace again for the
    // writers (src/server.rs); systemd must not kill the hub before that.
    let config = Config::default();
    let needed_ms = config.shutdown_drain_ms + 2 * config.shutdown_grace_ms;
    let timeout = service("TimeoutStopSec");
    let timeout_ms = timeout
        .strip_suffix('s')
        .unwrap_or(timeout)
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("{UNIT}: TimeoutStopSec= is whole seconds, not {timeout}"))
        * 1000;
    assert!(timeout_ms > needed_ms, "{UNIT}: TimeoutStopSec={timeout} is not above the {needed_ms} ms shutdown");

    // The command line it runs is one the hub accepts.
    let out = Command::new(env!("CARGO_BIN_EXE_anapars-hub"))
        .args(["--config", "/etc/anapars-hub/hub.toml", "serve", "--help"])
        .output()
        .expect("running anapars-hub");
    assert!(
        out.status.success(),
        "`anapars-hub --config FILE serve` is refused:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_accepts_the_unit() {
    let available =
        Command::new("sh").args(["-c", "command -v systemd-analyze"]).output().is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("systemd-analyze is not installed: `systemd-analyze verify {UNIT}` skipped");
        return;
    }
    // verify checks that ExecStart's binary exists, so the copy runs the hub this test built.
    let unit = read(UNIT).replace("/usr/local/bin/anapars-hub ", &format!("{} ", env!("CARGO_BIN_EXE_anapars-hub")));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let copy = dir.path().join("anapars-hub.service");
    std::fs::write(&copy, unit).expect("writing the unit's copy");
    let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().expect("running systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // An unknown key or a bad value is only a warning to systemd: any output is a failure here.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "`systemd-analyze verify {UNIT}` complains ({}):\n{said}",
        out.status
    );
}

//! The README's configuration table is the operators' reference, so it is checked against the code:
//! one row per setting of [`anapars_hub::Config`], named by the variable the hub really reads, with
//! the TOML key and the default that `Config::default()` has, and no row for a setting that does not
//! exist. The settings and their defaults come from the code itself (the struct serialised), so the
//! test follows the struct wherever it lives; only the README is parsed.

use anapars_hub::Config;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The one row that is not a field of `Config`: the file the command line reads (`--config`).
const CONFIG_FILE_VAR: &str = "HUB_CONFIG";

/// One row of the README's configuration table.
#[derive(Debug)]
struct Row {
    /// The environment variable, without backticks.
    env: String,
    /// The TOML key, or `None` for `(none)`.
    key: Option<String>,
    /// The default cell as written.
    default: String,
    /// Line number in README.md, for messages.
    line: usize,
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The rows of the first table under `## Configuration`.
fn config_table(readme: &str) -> Vec<Row> {
    let mut lines = readme.lines().enumerate().skip_while(|(_, l)| l.trim() != "## Configuration").skip(1);
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (n, line) in lines.by_ref() {
        let line = line.trim();
        if line.starts_with("## ") {
            break;
        }
        if !line.starts_with('|') {
            if header_seen {
                break;
            }
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "README.md:{}: a configuration row has 4 cells: {line}", n + 1);
        if !header_seen {
            assert_eq!(cells, ["env", "TOML key", "default", "meaning"], "README.md:{}: the table's header", n + 1);
            header_seen = true;
            continue;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        let code = |cell: &str| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).map(str::to_owned);
        let env = code(cells[0]).unwrap_or_else(|| panic!("README.md:{}: the env cell is one `NAME`", n + 1));
        let key = match cells[1] {
            "(none)" => None,
            cell => Some(code(cell).unwrap_or_else(|| panic!("README.md:{}: the TOML key is `key` or (none)", n + 1))),
        };
        rows.push(Row { env, key, default: cells[2].to_owned(), line: n + 1 });
    }
    assert!(header_seen, "README.md has no table under `## Configuration`");
    rows
}

/// The variable the hub reads for `field` (src/config.rs: `HUB_` and the field in upper case,
/// except the two URLs, which keep the names every tool uses).
fn env_var(field: &str) -> String {
    match field {
        "database_url" | "redis_url" => field.to_uppercase(),
        _ => format!("HUB_{}", field.to_uppercase()),
    }
}

/// A default cell's value: `unset` (no value), `empty` (an empty string), or the value in
/// backticks, possibly followed by words (`2592000` (30 days)).
fn documented_default(cell: &str) -> Option<String> {
    if let Some(rest) = cell.strip_prefix('`') {
        return rest.split_once('`').map(|(value, _)| value.to_owned());
    }
    match cell.split_whitespace().next() {
        Some("unset") => None,
        Some("empty") => Some(String::new()),
        _ => panic!("a default cell is `value`, unset or empty, not `{cell}`"),
    }
}

/// A serialised default as the README writes it (`None` for no value).
fn as_written(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn defaults() -> Map<String, Value> {
    match serde_json::to_value(Config::default()).expect("Config serialises") {
        Value::Object(fields) => fields,
        other => panic!("Config serialises to a map, not {other}"),
    }
}

#[test]
fn every_setting_has_one_row_with_its_variable_and_default() {
    let readme = readme();
    let rows = config_table(&readme);
    let defaults = defaults();
    let mut by_key: BTreeMap<&str, &Row> = BTreeMap::new();
    let mut problems = Vec::new();
    for row in &rows {
        match &row.key {
            Some(key) => {
                if by_key.insert(key, row).is_some() {
                    problems.push(format!("README.md:{}: a second row for `{key}`", row.line));
                }
                if !defaults.contains_key(key) {
                    problems.push(format!("README.md:{}: `{key}` is not a setting of Config", row.line));
                }
            }
            None if row.env == CONFIG_FILE_VAR => {}
            None => problems
                .push(format!("README.md:{}: `{}` has no TOML key and is not {CONFIG_FILE_VAR}", row.line, row.env)),
        }
    }
    for (field, value) in &defaults {
        let Some(row) = by_key.get(field.as_str()) else {
            problems.push(format!("no README row for `{field}` (`{}`)", env_var(field)));
            continue;
        };
        if row.env != env_var(field) {
            problems.push(format!(
                "README.md:{}: `{field}` is read from `{}`, not `{}`",
                row.line,
                env_var(field),
                row.env
            ));
        }
        let (documented, actual) = (documented_default(&row.default), as_written(value));
        if documented != actual {
            problems.push(format!(
                "README.md:{}: the default of `{}` is {}, not {}",
                row.line,
                row.env,
                actual.map_or("unset".into(), |v| format!("`{v}`")),
                documented.map_or("unset".into(), |v| format!("`{v}`"))
            ));
        }
    }
    assert!(rows.iter().any(|r| r.env == CONFIG_FILE_VAR), "the table has no row for {CONFIG_FILE_VAR}");
    assert!(
        problems.is_empty(),
        "the README's configuration table and src/config.rs disagree:\n{}",
        problems.join("\n")
    );
}

/// A value for every setting that differs from its default and passes validation together with the
/// others: generic for numbers and switches, chosen here for the rest.
fn sample(field: &str, default: &Value) -> String {
    let chosen = match field {
        "listen" => "127.0.0.1:8081",
        "database_url" => "postgres://hub@db.example/hub",
        "sqlite_path" => "./other.sqlite",
        "redis_url" => "redis://cache.example:6379",
        "redis_prefix" => "other:",
        "secret" => "another-secret",
        "data_keys" => "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "data_keys_file" => "./data-keys",
        "admin_token" | "billing_secret" => "0123456789abcdef0123456789abcdef0123",
        "sms" => "file:./sms.jsonl",
        "phone_countries" => "*",
        "phone_default_region" => "DE",
        "test_phone_prefix" => "+9891299",
        "test_code" => "654321",
        "media_dir" => "./other-media",
        "attachments_dir" => "./other-attachments",
        "object_store_url" => "s3://hub-files/node-a",
        "s3_endpoint" => "http://127.0.0.1:9000",
        "s3_region" => "eu-west-1",
        "s3_access_key_id" => "AKIAEXAMPLE",
        "s3_secret_access_key" => "secret-example",
        "trusted_proxies" => "10.0.0.1",
        "allowed_origins" => "https://console.example",
        "log_format" => "json",
        "sms_language" => "en",
        "sms_template_sign_in_fa" => "کد ورود: {code}",
        "sms_template_sign_in_en" => "Sign-in code {code}",
        "sms_template_phone_change_fa" => "کد شماره تازه: {code}",
        "sms_template_phone_change_en" => "New number code {code}",
        "sms_origin" => "app.anapars.ir",
        "sms_app_hash" => "FA+9qCX9VSu",
        "vapid_subject" => "mailto:ops@anapars.ir",
        "fcm_service_account_file" => "/etc/anapars/firebase.json",
        "fcm_url" => "https://fcm.example",
        "apns_key_file" => "./AuthKey_ABC123DEFG.p8",
        "apns_key_id" => "ABC123DEFG",
        "apns_team_id" => "DEF123GHIJ",
        "apns_topic" => "ir.anapars.app",
        "apns_url" => "https://apns.example:8443",
        "apns_sandbox_url" => "https://apns-sandbox.example:8443",
        "push_ca_file" => "./push-ca.pem",
        "ticket_history_retention_secs" => "63072000",
        _ => "",
    };
    if !chosen.is_empty() {
        return chosen.to_owned();
    }
    match default {
        Value::Bool(b) => (!b).to_string(),
        Value::Number(n) => (n.as_u64().expect("settings are unsigned") + 1).to_string(),
        other => panic!("no sample value for `{field}` (default {other}): add one to `sample`"),
    }
}

/// The variables in the table are the ones the hub reads: set each to a value of its own and every
/// setting takes it.
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's own signature
fn the_documented_variables_are_the_ones_the_hub_reads() {
    let rows = config_table(&readme());
    let defaults = defaults();
    figment::Jail::expect_with(|jail| {
        let mut expected = Vec::new();
        for row in &rows {
            let Some(field) = &row.key else { continue };
            let Some(default) = defaults.get(field) else { continue };
            let value = sample(field, default);
            jail.set_env(&row.env, &value);
            expected.push((field, &row.env, value));
        }
        let loaded = Config::load(None).map_err(|e| format!("loading the sample settings: {e:#}"))?;
        let loaded = serde_json::to_value(loaded).map_err(|e| e.to_string())?;
        for (field, env, value) in expected {
            let got = as_written(&loaded[field.as_str()]);
            assert_eq!(got.as_deref(), Some(value.as_str()), "`{env}={value}` did not set `{field}`");
        }
        Ok(())
    });
}

/// `HUB_CONFIG` is not a field: the command line reads it as `--config`.
#[test]
fn the_config_file_variable_is_read_by_the_command_line() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_anapars-hub")).arg("--help").output().expect("running --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains(&format!("env: {CONFIG_FILE_VAR}")),
        "`anapars-hub --help` names no {CONFIG_FILE_VAR}:\n{help}"
    );
}

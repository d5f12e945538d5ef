//! The machinery around the declarations: settings from a map of variables,
//! clap's refusals turned into errors that name the variable, value parsers
//! shared by several settings, and the table of variables for `--help`.

use std::{collections::HashMap, time::Duration};

use clap::{
    Args, Command, FromArgMatches,
    error::{ContextKind, ContextValue, ErrorKind},
};

use super::ConfigError;

/// Settings declared with clap, read from variables.
pub trait Declared: Args + FromArgMatches + Sized {
    /// The settings from a map of variables, exactly as the process
    /// environment would give them (no test mutates the process environment).
    fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let declared = Self::augment_args(Command::new("settings").no_binary_name(true));
        let mut argv = Vec::new();
        for arg in declared.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
            // clap treats a variable that is set but empty as unset.
            if let Some(value) = env.to_str().and_then(|env| vars.get(env)).filter(|v| !v.is_empty()) {
                argv.push(format!("--{long}={value}"));
            }
        }
        // Only the map speaks: the process environment is not read.
        let mut command = declared.clone().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command.try_get_matches_from_mut(argv).map_err(|e| {
            refusal(&declared, &e).unwrap_or_else(|| ConfigError::new("settings", e.kind().to_string()))
        })?;
        Self::from_arg_matches(&matches).map_err(|e| ConfigError::new("settings", e.to_string()))
    }

    /// The declared defaults, every variable unset.
    ///
    /// # Panics
    /// When a declared default does not parse: a bug every crate's tests
    /// catch (`the_declared_defaults_are_valid`).
    fn declared_defaults() -> Self {
        match Self::from_vars(&HashMap::new()) {
            Ok(settings) => settings,
            Err(e) => panic!("a declared default is invalid: {e}"),
        }
    }
}

impl<T: Args + FromArgMatches> Declared for T {}

/// A value clap refused, as a [`ConfigError`] naming the variable that
/// carries it (and its flag); `None` for errors about no one value (a missing
/// subcommand, `--help`).
pub fn refusal(command: &Command, error: &clap::Error) -> Option<ConfigError> {
    if !matches!(error.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return None;
    }
    let ContextValue::String(shown) = error.get(ContextKind::InvalidArg)? else { return None };
    // `--listen-addr <ADDR>`, or `--log-format=<FORMAT>`.
    let flag = shown.split([' ', '=']).next()?.trim_start_matches('-');
    let arg = find_arg(command, flag)?;
    let variable = arg.get_env().map_or_else(|| format!("--{flag}"), |env| env.to_string_lossy().into_owned());
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.as_str(),
        _ => "",
    };
    let hidden = arg.is_hide_env_values_set() && !value.is_empty();
    let shown_value = if hidden { "the value".to_owned() } else { format!("`{value}`") };
    let why = match (error.kind(), error.get(ContextKind::ValidValue)) {
        (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => {
            format!("{shown_value} is not one of {}", valid.join(", "))
        }
        _ => match std::error::Error::source(error) {
            // The parser's reason may quote the value: not a hidden one.
            Some(source) if hidden => format!("{shown_value} is invalid: {}", source.to_string().replace(value, "…")),
            Some(source) => format!("{shown_value} is invalid: {source}"),
            None => format!("{shown_value} is invalid"),
        },
    };
    Some(ConfigError { variable, message: format!("{why} (flag --{flag})") })
}

fn find_arg<'a>(command: &'a Command, long: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .or_else(|| command.get_subcommands().find_map(|sub| find_arg(sub, long)))
}

/// Every variable `command` and its subcommands read, once each, with its
/// default and help: the table `caravan --help` ends with, generated from
/// the declarations.
pub fn variables_table(command: &Command) -> String {
    let mut seen = Vec::new();
    let mut table = String::new();
    collect(command, &mut seen, &mut table);
    table
}

fn collect(command: &Command, seen: &mut Vec<String>, table: &mut String) {
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let env = env.to_string_lossy().into_owned();
        if seen.contains(&env) {
            continue;
        }
        let default: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        table.push_str(&format!("  {env}"));
        if !default.is_empty() {
            table.push_str(&format!(" [default: {}]", default.join(",")));
        }
        table.push('\n');
        // Wrapped here, narrower than any terminal clap would wrap it for.
        let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
        let mut line = String::new();
        for word in help.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > 70 {
                table.push_str(&format!("      {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            table.push_str(&format!("      {line}\n"));
        }
        seen.push(env);
    }
    for sub in command.get_subcommands() {
        collect(sub, seen, table);
    }
}

/// A duration like `250ms`, `5s` or `10m`.
pub fn duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("not a duration like 5s or 250ms: {e}"))
}

/// A duration of at least `least`.
pub fn duration_at_least(least: Duration) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
    move |raw| {
        let value = duration(raw)?;
        if value < least {
            return Err(format!("must be at least {}", humantime::format_duration(least)));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Example {
        /// How long.
        #[arg(long, env = "EXAMPLE_WAIT", default_value = "1s", value_parser = duration)]
        wait: Duration,
        /// A secret.
        #[arg(long, env = "EXAMPLE_SECRET", hide_env_values = true, value_parser = clap::value_parser!(u8))]
        secret: Option<u8>,
    }

    #[test]
    fn variables_parse_like_the_environment_and_refusals_name_them() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(Example::declared_defaults().wait, Duration::from_secs(1));
        assert_eq!(Example::from_vars(&vars(&[("EXAMPLE_WAIT", "250ms")])).unwrap().wait, Duration::from_millis(250));
        assert_eq!(Example::from_vars(&vars(&[("EXAMPLE_WAIT", "")])).unwrap().wait, Duration::from_secs(1));
        let err = Example::from_vars(&vars(&[("EXAMPLE_WAIT", "soon")])).unwrap_err();
        assert_eq!(err.variable, "EXAMPLE_WAIT");
        assert!(err.message.contains("`soon`") && err.message.contains("--wait"), "{err}");
        let err = Example::from_vars(&vars(&[("EXAMPLE_SECRET", "4096")])).unwrap_err();
        assert_eq!(err.variable, "EXAMPLE_SECRET");
        assert!(!err.message.contains("4096"), "a hidden value is not echoed: {err}");
    }

    #[test]
    fn the_table_lists_each_variable_with_its_default() {
        let table = variables_table(&<Example as clap::CommandFactory>::command());
        assert!(table.contains("  EXAMPLE_WAIT [default: 1s]\n      How long\n"), "{table}");
        assert!(table.contains("EXAMPLE_SECRET"), "{table}");
    }
}

//! Located JSON errors: `file:line:column: message`, the way YAML errors are reported.

/// `error`, found in `file`, as `file:line:column: message` (serde_json's own
/// "at line L column C" suffix removed).
///
/// ```
/// let error = serde_json::from_str::<serde_json::Value>("[1,]").unwrap_err();
/// assert_eq!(
///     weir_model::json::located("seed.json", &error),
///     "seed.json:1:4: trailing comma"
/// );
/// ```
pub fn located(file: &str, error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    format!("{file}:{}:{}: {message}", error.line(), error.column())
}

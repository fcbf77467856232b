//! Lower simulation of a process (inventory §8.12, `surface_kind: lower_simulation`): the
//! payload's `execution_surface.transport_options` is a scenario — `scenario_ref` (required),
//! `stdout` or `stdout_frames`, `stderr` or `stderr_frames`, `exit_code` (or `exit`: a code or
//! `"normal"`) — played back through the lane's normal answer with **nothing spawned**: the
//! command is not looked up and need not be granted, no file is touched. A stream plays each
//! stdout frame as one `process.stdout` line (frames are not re-split), each stderr frame as a
//! `process.stderr` chunk, then the exit. The lane evidence names the scenario and
//! `side_effect_result: not_attempted`.

use ep_contracts::boundary::Map;
use serde_json::{Value, json};

use crate::exit::Exit;
use crate::payload::PayloadError;

/// The surface kind that asks for a simulation.
pub const LOWER_SIMULATION: &str = "lower_simulation";

/// A scenario to play back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// What names the scenario (recorded in evidence).
    pub scenario_ref: String,
    /// stdout, frame by frame.
    pub stdout: Vec<String>,
    /// stderr, frame by frame.
    pub stderr: Vec<String>,
    /// How it ends.
    pub exit: Exit,
}

const FIELD: &str = "execution_surface.transport_options";

fn bad(problem: String) -> PayloadError {
    PayloadError {
        field: FIELD,
        problem,
    }
}

fn frames(options: &Map, one: &str, many: &str) -> Result<Vec<String>, PayloadError> {
    if let Some(list) = options.get(many) {
        let Value::Array(items) = list else {
            return Err(bad(format!(
                "{many} must be a list of strings (found {list})"
            )));
        };
        return items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(bad(format!(
                    "{many} must hold only strings (found {other})"
                ))),
            })
            .collect();
    }
    match options.get(one) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(other) => Err(bad(format!("{one} must be a string (found {other})"))),
    }
}

fn exit(options: &Map) -> Result<Exit, PayloadError> {
    let code = match options.get("exit").or_else(|| options.get("exit_code")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(normal)) if normal == "normal" => 0,
        Some(value) => value
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
            .ok_or_else(|| {
                bad(format!(
                    "exit must be an exit code or \"normal\" (found {value})"
                ))
            })?,
    };
    Ok(if code == 0 {
        Exit::Success
    } else {
        Exit::Code(code)
    })
}

impl Scenario {
    /// The scenario of a payload whose surface is `lower_simulation`.
    pub fn parse(payload: &Map) -> Result<Self, PayloadError> {
        let options = match payload
            .get("execution_surface")
            .and_then(|surface| surface.get("transport_options"))
        {
            Some(Value::Object(options)) => options.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(other) => return Err(bad(format!("must be an object (found {other})"))),
        };
        let scenario_ref = match options.get("scenario_ref") {
            Some(Value::String(text)) if !text.trim().is_empty() => text.clone(),
            _ => {
                return Err(bad(
                    "missing_required_option scenario_ref: a lower simulation names its \
                     scenario"
                        .to_owned(),
                ));
            }
        };
        Ok(Self {
            scenario_ref,
            stdout: frames(&options, "stdout", "stdout_frames")?,
            stderr: frames(&options, "stderr", "stderr_frames")?,
            exit: exit(&options)?,
        })
    }

    /// The lane evidence of a played-back scenario.
    pub fn evidence(&self, command_sha256: &str) -> Value {
        json!({
            "kind": "process.simulated",
            "lower_simulation": true,
            "scenario_ref": self.scenario_ref,
            "side_effect_policy": "deny_process_spawn",
            "side_effect_result": "not_attempted",
            "command_sha256": command_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scenario(options: Value) -> Result<Scenario, PayloadError> {
        let payload = json!({"command": "ignored", "execution_surface": {
            "surface_kind": "lower_simulation", "transport_options": options}});
        Scenario::parse(payload.as_object().unwrap())
    }

    #[test]
    fn a_scenario_needs_its_ref_and_reads_frames_and_the_exit() {
        let error = scenario(json!({"stdout": "x"})).unwrap_err();
        assert!(error.problem.contains("scenario_ref"), "{error}");
        let played = scenario(json!({"scenario_ref": "s-1", "stdout": "one",
            "stdout_frames": ["a", "b"], "stderr": "warn", "exit_code": 3}))
        .unwrap();
        assert_eq!(played.stdout, ["a", "b"], "the list wins");
        assert_eq!(played.stderr, ["warn"]);
        assert_eq!(played.exit, Exit::Code(3));
        assert_eq!(
            scenario(json!({"scenario_ref": "s", "exit": "normal"}))
                .unwrap()
                .exit,
            Exit::Success
        );
        assert!(scenario(json!({"scenario_ref": "s", "exit": "boom"})).is_err());
    }
}

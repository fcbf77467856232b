//! The route table of `docs/api.md`: method + path → [`Route`], or 404 / 405 (with `allow`).

use http::Method;

use super::errors::ApiError;

/// One endpoint, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/node`
    Node,
    /// `POST /v1/admit`
    Admit,
    /// `POST /v1/execute`
    Execute,
    /// `POST /v1/stream`
    Stream,
    /// `POST /v1/executions/{execution_ref}/cancel`
    Cancel(String),
    /// `POST /v1/executions/{execution_ref}/input`
    Input(String),
    /// `GET /v1/lanes`
    Lanes,
    /// `POST /v1/admin/reload`
    Reload,
    /// `POST /v1/lanes/{lane_id}/rollback`
    Rollback(String),
    /// `POST /v1/lanes/{lane_id}/digests/{digest}/reinstate`
    Reinstate {
        /// The lane.
        lane_id: String,
        /// The withdrawn or quarantined digest.
        digest: String,
    },
    /// `GET /healthz`
    Healthz,
    /// `GET /metrics`
    Metrics,
}

impl Route {
    /// Whether the route needs the operator token.
    pub fn is_operator(&self) -> bool {
        matches!(
            self,
            Self::Lanes | Self::Reload | Self::Rollback(_) | Self::Reinstate { .. }
        )
    }

    /// Whether the route takes a JSON body (`AdmissionRequest`).
    pub fn takes_body(&self) -> bool {
        matches!(self, Self::Admit | Self::Execute | Self::Stream)
    }

    /// A short name for logs and metrics (no path parameters).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Admit => "admit",
            Self::Execute => "execute",
            Self::Stream => "stream",
            Self::Cancel(_) => "cancel",
            Self::Input(_) => "input",
            Self::Lanes => "lanes",
            Self::Reload => "reload",
            Self::Rollback(_) => "rollback",
            Self::Reinstate { .. } => "reinstate",
            Self::Healthz => "healthz",
            Self::Metrics => "metrics",
        }
    }
}

/// A percent-encoded path parameter, decoded (a client encodes reserved characters); one that
/// is not UTF-8 once decoded names nothing.
fn decode(segment: &str, path: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| ApiError::not_found(path))
}

/// The route for `method` on `path`.
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (route, allowed) = match segments.as_slice() {
        ["v1", "node"] => (Route::Node, Method::GET),
        ["v1", "admit"] => (Route::Admit, Method::POST),
        ["v1", "execute"] => (Route::Execute, Method::POST),
        ["v1", "stream"] => (Route::Stream, Method::POST),
        ["v1", "executions", reference, "cancel"] if !reference.is_empty() => {
            (Route::Cancel(decode(reference, path)?), Method::POST)
        }
        ["v1", "executions", reference, "input"] if !reference.is_empty() => {
            (Route::Input(decode(reference, path)?), Method::POST)
        }
        ["v1", "lanes"] => (Route::Lanes, Method::GET),
        ["v1", "admin", "reload"] => (Route::Reload, Method::POST),
        ["v1", "lanes", lane_id, "rollback"] if !lane_id.is_empty() => {
            (Route::Rollback(decode(lane_id, path)?), Method::POST)
        }
        ["v1", "lanes", lane_id, "digests", digest, "reinstate"]
            if !lane_id.is_empty() && !digest.is_empty() =>
        {
            let route = Route::Reinstate {
                lane_id: decode(lane_id, path)?,
                digest: decode(digest, path)?,
            };
            (route, Method::POST)
        }
        ["healthz"] => (Route::Healthz, Method::GET),
        ["metrics"] => (Route::Metrics, Method::GET),
        _ => return Err(ApiError::not_found(path)),
    };
    if *method != allowed {
        let allow = if allowed == Method::GET {
            "GET"
        } else {
            "POST"
        };
        return Err(ApiError::method_not_allowed(method.as_str(), path, allow));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_with_parameters_route() {
        assert_eq!(
            route(&Method::POST, "/v1/executions/exec-1/cancel").unwrap(),
            Route::Cancel("exec-1".to_owned())
        );
        assert_eq!(
            route(&Method::POST, "/v1/lanes/echo/rollback").unwrap(),
            Route::Rollback("echo".to_owned())
        );
        assert_eq!(route(&Method::GET, "/v1/lanes").unwrap(), Route::Lanes);
        let reinstate = route(&Method::POST, "/v1/lanes/echo/digests/sha256:ab/reinstate").unwrap();
        assert_eq!(
            reinstate,
            Route::Reinstate {
                lane_id: "echo".to_owned(),
                digest: "sha256:ab".to_owned()
            }
        );
        assert!(reinstate.is_operator());
        assert_eq!(
            route(&Method::GET, "/v1/lanes/echo/digests/sha256:ab/reinstate")
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        assert_eq!(
            route(&Method::POST, "/v1/executions/exec%2F1%20a/cancel").unwrap(),
            Route::Cancel("exec/1 a".to_owned())
        );
        assert_eq!(
            route(&Method::POST, "/v1/lanes/my%2Elane/rollback").unwrap(),
            Route::Rollback("my.lane".to_owned())
        );
        // Not UTF-8 once decoded: names nothing.
        assert_eq!(
            route(&Method::POST, "/v1/executions/%FF/cancel")
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(route(&Method::GET, "/v2/node").unwrap_err().status, 404);
        assert_eq!(
            route(&Method::GET, "/v1/executions//cancel")
                .unwrap_err()
                .status,
            404
        );
        let err = route(&Method::GET, "/v1/execute").unwrap_err();
        assert_eq!(err.status, 405);
        assert_eq!(err.allow, Some("POST"));
    }
}

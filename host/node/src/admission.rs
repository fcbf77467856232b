//! Governed admission: the checks of §7.3, in exactly this order, each a small function with
//! its rejection beside it.
//!
//! 1. contract version compatible → `contract_version_mismatch`; the budget
//!    (`metadata.timeout_ms`, `metadata.deadline_at`) reads → `invalid_lane_request`
//!    ([`crate::budget`])
//! 2. direct lower-lane-owner provenance → lane registered? decision without target
//! 3. registration complete → `registration_incomplete`
//! 4. authority verifier registered → `authority_verifier_missing`
//! 5. lane registered → `lane_not_registered`
//! 6. authority ref present and verified → `authority_ref_missing` / the verifier's rejection
//! 7. first live verified target for the lane whose attested classes meet the acceptable set
//!    (ascending target id; class = first of the intersection) →
//!    `no_satisfying_attested_target`
//! 8. accept: on a dispatch (`execute`, `stream`) the verifier uses the authority ref up (a
//!    single-use ref refused here is the verifier's rejection), then the decision +
//!    `admission.accepted` and `target.selected` evidence. `admit` alone uses nothing up.
//!
//! Exactly one target per call: the node never falls back to another target or a weaker class.
//! Every rejection emits `admission.rejected`; the direct path emits no admission evidence when
//! it accepts. Unlike upstream (where rejections of steps 6–7 carry no request id), **every**
//! rejection carries the request id, so callers can always correlate it; a verifier that set
//! its own request id keeps it.

use std::sync::Arc;

use chrono::Utc;
use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRejection, AdmissionRequest, ExecutionRef, RejectionReason,
    TargetDescriptor,
};
use ep_contracts::version::root_version_compatible;

use crate::budget::{self, Budget};
use crate::evidence::{ADMISSION_ACCEPTED, ADMISSION_REJECTED, EvidenceContext, TARGET_SELECTED};
use crate::node::{Node, Registry};
use crate::traits::{AuthorityVerifier, TargetClient};

/// Message of `contract_version_mismatch`.
pub const MSG_CONTRACT_VERSION: &str = "request contract version is not supported";
/// Message of `lane_not_registered` on the direct path.
pub const MSG_DIRECT_LANE: &str = "requested direct lane is not registered";
/// Message of `registration_incomplete`.
pub const MSG_REGISTRATION: &str = "node registration is not complete";
/// Message of `authority_verifier_missing`.
pub const MSG_AUTHORITY_VERIFIER: &str = "governed admission requires an authority verifier";
/// Message of `lane_not_registered` on the governed path.
pub const MSG_LANE: &str = "requested lane is not registered";
/// Message of `authority_ref_missing`.
pub const MSG_AUTHORITY_REF: &str = "governed admission requires authority_ref";
/// Message of `no_satisfying_attested_target`.
pub const MSG_NO_TARGET: &str =
    "no verified target satisfies acceptable attestation for requested lane";
/// Reason of the direct-path decision.
pub const DIRECT_DECISION_REASON: &str = "direct lower-lane-owner execution";

/// Whether admission only decides (`admit`) or is followed by a dispatch (`execute`,
/// `stream`): only a dispatch uses a single-use authority ref up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorityUse {
    /// Decide only; the ref stays usable.
    Check,
    /// The request runs: the verifier consumes the ref.
    Dispatch,
}

/// An accepted admission with everything dispatch needs.
pub(crate) struct Admitted {
    pub(crate) decision: AdmissionDecision,
    /// The stored descriptor (none on the direct path).
    pub(crate) descriptor: Option<TargetDescriptor>,
    /// The target's bound client, or the built-in in-process client on the direct path.
    pub(crate) client: Arc<dyn TargetClient>,
    pub(crate) context: EvidenceContext,
    /// The time the execution may take (the kernel's effective timeout).
    pub(crate) budget: Budget,
}

/// What admission reads from the tables, taken once under a short read lock.
struct View {
    registration_complete: bool,
    authority: Option<(String, Arc<dyn AuthorityVerifier>)>,
    lane_registered: bool,
}

impl View {
    fn take(registry: &Registry, lane_id: &str) -> Self {
        Self {
            registration_complete: registry.registration_complete,
            authority: registry
                .authority_verifier
                .as_ref()
                .map(|(id, v)| (id.clone(), Arc::clone(v))),
            lane_registered: registry.lanes.contains_key(lane_id),
        }
    }
}

/// The target chosen by step 7.
struct Selected {
    descriptor: TargetDescriptor,
    client: Arc<dyn TargetClient>,
    class: String,
}

impl Node {
    /// Admission only: a decision or a rejection, with its evidence; nothing is dispatched or
    /// recorded for `cancel`.
    pub async fn admit(
        &self,
        request: AdmissionRequest,
    ) -> Result<AdmissionDecision, AdmissionRejection> {
        self.admit_request(&request, AuthorityUse::Check)
            .await
            .map(|a| a.decision)
    }

    /// Runs the checks in order and emits the admission evidence.
    pub(crate) async fn admit_request(
        &self,
        request: &AdmissionRequest,
        authority_use: AuthorityUse,
    ) -> Result<Admitted, AdmissionRejection> {
        let view = View::take(&self.read_registry(), &request.lane_id);
        let context = EvidenceContext::for_request(
            request,
            view.authority.as_ref().map(|(id, _)| id.clone()),
        );
        match self
            .run_checks(request, &view, context.clone(), authority_use)
            .await
        {
            Ok(admitted) => {
                if let Some(descriptor) = &admitted.descriptor {
                    let accepted = &admitted.context;
                    self.emit_in(accepted, ADMISSION_ACCEPTED, admitted.decision.to_value())
                        .await;
                    self.emit_in(accepted, TARGET_SELECTED, descriptor.to_value())
                        .await;
                }
                Ok(admitted)
            }
            Err(mut rejection) => {
                if rejection.request_id.is_none() {
                    rejection.request_id = Some(request.request_id.clone());
                }
                tracing::debug!(
                    request_id = request.request_id,
                    reason = rejection.reason,
                    "admission rejected"
                );
                self.emit_in(&context, ADMISSION_REJECTED, rejection.to_value())
                    .await;
                self.settle().await;
                Err(rejection)
            }
        }
    }

    async fn run_checks(
        &self,
        request: &AdmissionRequest,
        view: &View,
        context: EvidenceContext,
        authority_use: AuthorityUse,
    ) -> Result<Admitted, AdmissionRejection> {
        check_contract_version(request)?;
        let budget = budget::plan(request, Utc::now())?;
        if request.provenance.is_direct() {
            return self.admit_direct(request, view, context, budget);
        }
        check_registration_complete(view)?;
        let authority = require_authority_verifier(view)?;
        require_lane(view, MSG_LANE)?;
        let claims = verify_authority(request, authority).await?;
        let selected = self.select_target(request)?;
        if authority_use == AuthorityUse::Dispatch {
            authority.consume(&claims, request).await?;
        }
        Ok(accept(request, selected, context, budget))
    }

    /// Step 2: a lane owner calling its own lane needs only the lane.
    fn admit_direct(
        &self,
        request: &AdmissionRequest,
        view: &View,
        context: EvidenceContext,
        budget: Budget,
    ) -> Result<Admitted, AdmissionRejection> {
        require_lane(view, MSG_DIRECT_LANE)?;
        let decision = AdmissionDecision {
            request_id: Some(request.request_id.clone()),
            execution_ref: Some(ExecutionRef::mint()),
            lane_id: Some(request.lane_id.clone()),
            reason: Some(DIRECT_DECISION_REASON.to_owned()),
            ..AdmissionDecision::default()
        };
        let context = context.with_decision(&decision, None);
        let client: Arc<dyn TargetClient> = self.inner.direct_client.clone();
        Ok(Admitted {
            decision,
            descriptor: None,
            client,
            context,
            budget,
        })
    }

    /// Step 7: the first live target (ascending target id) serving the lane whose attested
    /// classes meet the acceptable set.
    fn select_target(&self, request: &AdmissionRequest) -> Result<Selected, AdmissionRejection> {
        let now = Utc::now();
        let registry = self.read_registry();
        registry
            .targets
            .values()
            .filter(|t| t.is_live(now) && t.descriptor.lane_id == request.lane_id)
            .find_map(|t| {
                let classes = request
                    .acceptable_attestation
                    .intersect(&t.descriptor.attested_capability_classes);
                classes.into_iter().next().map(|class| Selected {
                    descriptor: t.descriptor.clone(),
                    client: Arc::clone(&t.client),
                    class,
                })
            })
            .ok_or_else(|| reject(RejectionReason::NoSatisfyingAttestedTarget, MSG_NO_TARGET))
    }
}

fn reject(reason: RejectionReason, message: &str) -> AdmissionRejection {
    AdmissionRejection::new(reason, message)
}

/// Step 1: only root contract version 1 is understood (direct requests too).
fn check_contract_version(request: &AdmissionRequest) -> Result<(), AdmissionRejection> {
    if root_version_compatible(&request.contract_version) {
        return Ok(());
    }
    Err(reject(
        RejectionReason::ContractVersionMismatch,
        MSG_CONTRACT_VERSION,
    ))
}

/// Step 3: governed traffic waits until the host says registration is done.
fn check_registration_complete(view: &View) -> Result<(), AdmissionRejection> {
    if view.registration_complete {
        return Ok(());
    }
    Err(reject(
        RejectionReason::RegistrationIncomplete,
        MSG_REGISTRATION,
    ))
}

/// Step 4: governed traffic needs an authority verifier.
fn require_authority_verifier(
    view: &View,
) -> Result<&Arc<dyn AuthorityVerifier>, AdmissionRejection> {
    view.authority.as_ref().map(|(_, v)| v).ok_or_else(|| {
        reject(
            RejectionReason::AuthorityVerifierMissing,
            MSG_AUTHORITY_VERIFIER,
        )
    })
}

/// Steps 2 and 5: the requested lane must be registered.
fn require_lane(view: &View, message: &str) -> Result<(), AdmissionRejection> {
    if view.lane_registered {
        Ok(())
    } else {
        Err(reject(RejectionReason::LaneNotRegistered, message))
    }
}

/// Step 6: an authority ref must be present and accepted by the verifier; the verifier's
/// rejection passes through unchanged. Returns the verified claims.
async fn verify_authority(
    request: &AdmissionRequest,
    verifier: &Arc<dyn AuthorityVerifier>,
) -> Result<ep_contracts::boundary::Map, AdmissionRejection> {
    let Some(authority) = &request.authority_ref else {
        return Err(reject(
            RejectionReason::AuthorityRefMissing,
            MSG_AUTHORITY_REF,
        ));
    };
    verifier.verify(authority, request).await
}

/// Step 8: the decision for the selected target.
fn accept(
    request: &AdmissionRequest,
    selected: Selected,
    context: EvidenceContext,
    budget: Budget,
) -> Admitted {
    let decision = AdmissionDecision {
        request_id: Some(request.request_id.clone()),
        execution_ref: Some(ExecutionRef::mint()),
        target_id: Some(selected.descriptor.target_id.clone()),
        lane_id: Some(request.lane_id.clone()),
        attestation_class: Some(selected.class),
        ..AdmissionDecision::default()
    };
    let context = context.with_decision(&decision, Some(&selected.descriptor));
    Admitted {
        decision,
        descriptor: Some(selected.descriptor),
        client: selected.client,
        context,
        budget,
    }
}

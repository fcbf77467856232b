//! The slot's transitions, serialized by its `transitions` lock: publishing a generation,
//! rolling back (withdrawing the digest rolled back from), reinstating a digest, and retiring
//! the slot.

use std::sync::{Arc, PoisonError};

use serde_json::json;

use super::{
    Activation, LANE_ACTIVATED, LANE_REINSTATED, LANE_RETIRED, LANE_ROLLED_BACK, LaneSlot,
    Retirement, RollBack, RollbackReason, SwapError, clip, lock,
};
use crate::generation::{Artifact, FaultCounts, Generation};
use crate::lane::WasmLane;
use crate::withdrawals::{Withdrawal, WithdrawalsError};

impl LaneSlot {
    /// Re-points the target, publishes `lane` as the next generation and records it.
    pub(super) async fn publish(
        &self,
        lane: WasmLane,
        source: String,
        artifact: Option<Artifact>,
    ) -> Result<Activation, SwapError> {
        let _turn = self.inner.transitions.lock().await;
        self.check_serving()?;
        let (old, number) = {
            let state = self.state();
            (Arc::clone(&state.current), state.next_number)
        };
        let version = lane.manifest().map(|m| m.version.to_string());
        let generation = Arc::new(Generation::new(
            number,
            lane,
            source,
            artifact,
            &self.inner.rollback,
        ));
        {
            let mut live = lock(&self.inner.live);
            live.retain(|weak| weak.strong_count() > 0);
            live.push(Arc::downgrade(&generation));
        }
        self.connect(&generation).await?;
        {
            let mut state = self.state_mut();
            state.previous = Some(std::mem::replace(
                &mut state.current,
                Arc::clone(&generation),
            ));
            state.next_number = number + 1;
        }
        let activation = Activation {
            lane_id: self.inner.lane_id.clone(),
            old_digest: Some(old.digest().to_owned()),
            new_digest: generation.digest().to_owned(),
            generation: number,
            source: generation.source().to_owned(),
            version,
        };
        tracing::info!(
            lane_id = activation.lane_id,
            generation = number,
            old_digest = old.digest(),
            new_digest = activation.new_digest,
            "lane generation activated"
        );
        self.record(LANE_ACTIVATED, activation.to_json()).await;
        Ok(activation)
    }

    /// Rolls back to the previous generation (reason `operator`), withdraws the digest rolled
    /// back from (it stays out until reinstated or another artifact arrives) and records
    /// `lane.rolled_back`. The withdrawn generation finishes what it runs and is dropped.
    pub async fn rollback(&self) -> Result<RollBack, SwapError> {
        self.roll_back(None, RollbackReason::Operator).await
    }

    async fn roll_back(
        &self,
        faulty: Option<(&Arc<Generation>, FaultCounts)>,
        reason: RollbackReason,
    ) -> Result<RollBack, SwapError> {
        let _turn = self.inner.transitions.lock().await;
        self.check_serving()?;
        let (from, to) = {
            let state = self.state();
            if let Some((generation, _)) = &faulty
                && !Arc::ptr_eq(&state.current, generation)
            {
                return Err(SwapError::NotServing {
                    lane_id: self.inner.lane_id.clone(),
                    generation: generation.number(),
                });
            }
            let Some(previous) = &state.previous else {
                return Err(SwapError::NoPreviousGeneration {
                    lane_id: self.inner.lane_id.clone(),
                });
            };
            (Arc::clone(&state.current), Arc::clone(previous))
        };
        self.connect(&to).await?;
        {
            let mut state = self.state_mut();
            state.current = Arc::clone(&to);
            state.previous = None;
        }
        // From here no execution starts on `from`: its usage is final but for those running.
        let usage = from.withdraw();
        let rollback = RollBack {
            lane_id: self.inner.lane_id.clone(),
            from_digest: from.digest().to_owned(),
            to_digest: to.digest().to_owned(),
            from_generation: from.number(),
            to_generation: to.number(),
            reason,
            counts: usage.counts,
            running: usage.running,
            window: faulty.map_or_else(|| from.fault_counts(), |(_, counts)| counts),
        };
        self.withdrawals().record(
            Withdrawal {
                lane_id: rollback.lane_id.clone(),
                digest: rollback.from_digest.clone(),
                state: reason.withdrawal(),
                at: ep_contracts::ids::now_iso8601(),
                generation: rollback.from_generation,
                source: from.source().to_owned(),
                restored_digest: rollback.to_digest.clone(),
            },
            to.artifact().map(|artifact| (to.source(), artifact)),
        );
        tracing::warn!(
            lane_id = rollback.lane_id,
            reason = reason.as_str(),
            withdrawal = reason.withdrawal().as_str(),
            from_generation = rollback.from_generation,
            to_generation = rollback.to_generation,
            executions = rollback.counts.executions,
            faults = rollback.counts.faults,
            "lane generation rolled back"
        );
        self.record(LANE_ROLLED_BACK, rollback.to_json()).await;
        Ok(rollback)
    }

    /// Rolls back `generation` after its window said so; a generation that no longer serves,
    /// or has nothing to go back to, is only logged.
    pub(super) async fn roll_back_automatically(
        &self,
        generation: &Arc<Generation>,
        counts: FaultCounts,
    ) {
        if let Err(error) = self
            .roll_back(Some((generation, counts)), RollbackReason::Automatic)
            .await
        {
            tracing::warn!(
                lane_id = self.inner.lane_id,
                generation = generation.number(),
                %error,
                "automatic rollback not done"
            );
        }
    }

    /// Retires the slot (a policy reload): every later call goes to `successor`, the slot
    /// serving the lane under the new policy; without one the lane stops serving — it is
    /// unregistered from the host, its target disconnected, every later call refused with
    /// `reason`, and `lane.retired` is recorded. Executions already running finish. Swaps and
    /// rollbacks of a retired slot are refused ([`SwapError::Retired`]).
    pub async fn retire(&self, successor: Option<&LaneSlot>, reason: &str) {
        let _turn = self.inner.transitions.lock().await;
        let retirement = match successor {
            Some(next) => Retirement::Replaced(next.clone()),
            None => Retirement::Refused(reason.to_owned()),
        };
        *self
            .inner
            .retired
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(retirement);
        if successor.is_some() {
            return;
        }
        let binding = lock(&self.inner.binding).clone();
        if let Some(host) = binding.as_ref().and_then(|b| b.host.upgrade()) {
            host.unregister_lane(&self.inner.lane_id);
            if let Some(binding) = &binding {
                host.disconnect_target(&binding.target_id);
            }
        }
        let current = self.current();
        tracing::warn!(
            lane_id = self.inner.lane_id,
            digest = current.digest(),
            reason,
            "lane no longer served"
        );
        let payload = json!({
            "lane_id": self.inner.lane_id,
            "digest": current.digest(),
            "generation": current.number(),
            "reason": clip(reason.to_owned()),
        });
        self.record(LANE_RETIRED, payload).await;
    }

    /// Re-admits `digest` of this lane in its store and records `lane.reinstated`; the next
    /// swap of a file holding it activates it.
    pub async fn reinstate(&self, digest: &str) -> Result<Withdrawal, WithdrawalsError> {
        let withdrawal = self.withdrawals().reinstate(&self.inner.lane_id, digest)?;
        tracing::info!(
            lane_id = self.inner.lane_id,
            digest,
            was = %withdrawal.state,
            "lane digest reinstated"
        );
        let payload = json!({
            "lane_id": self.inner.lane_id,
            "digest": digest,
            "was": withdrawal.state.as_str(),
        });
        self.record(LANE_REINSTATED, payload).await;
        Ok(withdrawal)
    }
}

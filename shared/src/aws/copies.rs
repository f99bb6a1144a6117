//! [`CopyStateStore`] on DynamoDB: the copies table (schema in [`crate::schema::COPIES`],
//! attributes in [`crate::schema::copy_attr`]). Every transition is one conditional
//! `UpdateItem` mirroring [`crate::copier::state::claim_decision`]; every write after the
//! claim is conditional on `owner = me AND state = copying`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::copier::ports::{AtRiskFlags, CopyStateStore, StateError};
use crate::copier::state::{
    Checkpoint, Claim, ClaimDecision, CopyResult, CopyStatus, UploadProgress, claim_decision,
};
use crate::jobs::AtRisk;
use crate::schema::copy_attr as a;

const PENDING: &str = "pending";
const COPYING: &str = "copying";
/// The state name of a finished copy (also written by the upload grants).
pub(crate) const COPIED: &str = "copied";
const FAILED: &str = "failed";

type Item = HashMap<String, AttributeValue>;

/// The copies table.
#[derive(Debug, Clone)]
pub struct DynamoCopyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCopyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn update(&self, job_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(a::JOB_ID, s(job_id))
    }

    /// An update only the current lease holder may make: every write after the claim is
    /// conditional on `owner = me AND state = copying`, so a copier whose lease was taken over
    /// can no longer change the record.
    fn owned_update(&self, job_id: &str, owner: &str) -> UpdateItemFluentBuilder {
        self.update(job_id)
            .condition_expression("#owner = :me AND #state = :copying")
            .expression_attribute_names("#owner", a::OWNER)
            .expression_attribute_names("#state", a::STATE)
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":copying", s(COPYING))
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Reads a job's state (for tests and the operator CLI).
    pub async fn get(&self, job_id: &str) -> Result<Option<Item>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(a::JOB_ID, s(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(other("GetItem"))?;
        Ok(out.item)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The `about` attribute of a finished copy (`{}` when the result says nothing).
pub(crate) fn about_of(result: &CopyResult) -> String {
    result
        .about
        .as_ref()
        .map_or_else(|| "{}".to_owned(), |a| a.to_json())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A copies-table call's failure that is not a lost lease (also the Jibri recordings' ledger).
pub(super) fn other<E>(operation: &'static str) -> impl FnOnce(E) -> StateError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StateError {
        operation,
        lease_lost: false,
        source: Some(super::boxed(e)),
    }
}

/// Maps a failed owner-conditional write: a condition failure means the lease is gone.
fn owned<T, R>(
    operation: &'static str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>>,
) -> Result<(), StateError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
        {
            Err(StateError {
                operation,
                lease_lost: true,
                source: None,
            })
        }
        Err(e) => Err(other(operation)(e)),
    }
}

fn str_of<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn num_of(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The state of a stored item.
pub fn status_of(item: &Item) -> Option<CopyStatus> {
    Some(match str_of(item, a::STATE)? {
        PENDING => CopyStatus::Pending,
        COPYING => CopyStatus::Copying {
            owner: str_of(item, a::OWNER).unwrap_or("").to_owned(),
            lease_until_ms: num_of(item, a::LEASE_UNTIL).unwrap_or(0),
        },
        COPIED => CopyStatus::Copied,
        FAILED => CopyStatus::Failed {
            permanent: item
                .get(a::PERMANENT)
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(true),
            reason: str_of(item, a::REASON).unwrap_or("").to_owned(),
        },
        _ => return None,
    })
}

/// The upload progress of a stored item, if it has one.
pub fn progress_of(item: &Item) -> Option<UploadProgress> {
    let checkpoint = match (
        num_of(item, a::DONE_PARTS),
        num_of(item, a::DONE_BYTES),
        item.get(a::HASH_STATE).and_then(|v| v.as_b().ok()),
    ) {
        (Some(parts), Some(bytes), Some(state)) if parts > 0 => Some(Checkpoint {
            parts: parts as u32,
            bytes: bytes as u64,
            hash_state: state.as_ref().to_vec(),
        }),
        _ => None,
    };
    Some(UploadProgress {
        upload_id: str_of(item, a::UPLOAD_ID)?.to_owned(),
        key: str_of(item, a::OBJECT_KEY)?.to_owned(),
        total: num_of(item, a::TOTAL_BYTES).map(|t| t as u64),
        validator: str_of(item, a::VALIDATOR).map(str::to_owned),
        checkpoint,
    })
}

/// The write that records `result` as copied, the same whoever copied the file (the copier's
/// `mark_copied`, the Jibri uploads' `record_copied`): state, object, size, digest, `about`,
/// and no trace of the attempt. `more_set` adds assignments whose names and values the caller
/// gives (`, #x = :x`).
pub(super) fn set_copied(
    update: UpdateItemFluentBuilder,
    result: &CopyResult,
    now_ms: i64,
    more_set: &str,
) -> UpdateItemFluentBuilder {
    update
        .update_expression(format!(
            "SET #state = :copied, #key = :key, #bytes = :bytes, #sha = :sha, \
             #objects = :objects, #done = :now, #about = :about{more_set} \
             REMOVE #owner, #lease, #upload, #doneParts, #doneBytes, #hash, #reason, #perm, \
             #validator"
        ))
        .expression_attribute_names("#state", a::STATE)
        .expression_attribute_names("#owner", a::OWNER)
        .expression_attribute_names("#validator", a::VALIDATOR)
        .expression_attribute_names("#key", a::OBJECT_KEY)
        .expression_attribute_names("#bytes", a::BYTES)
        .expression_attribute_names("#sha", a::SHA256)
        .expression_attribute_names("#objects", a::OBJECTS)
        .expression_attribute_names("#done", a::COMPLETED_AT)
        .expression_attribute_names("#lease", a::LEASE_UNTIL)
        .expression_attribute_names("#upload", a::UPLOAD_ID)
        .expression_attribute_names("#doneParts", a::DONE_PARTS)
        .expression_attribute_names("#doneBytes", a::DONE_BYTES)
        .expression_attribute_names("#hash", a::HASH_STATE)
        .expression_attribute_names("#reason", a::REASON)
        .expression_attribute_names("#perm", a::PERMANENT)
        .expression_attribute_names("#about", a::ABOUT)
        .expression_attribute_values(":copied", s(COPIED))
        .expression_attribute_values(":key", s(&result.key))
        .expression_attribute_values(":bytes", n(result.bytes))
        .expression_attribute_values(":sha", s(&result.sha256))
        .expression_attribute_values(":objects", n(result.objects))
        .expression_attribute_values(":now", n(now_ms))
        .expression_attribute_values(":about", s(about_of(result)))
}

impl CopyStateStore for DynamoCopyStore {
    async fn claim(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_secs: i64,
    ) -> Result<Claim, StateError> {
        let result = self
            .update(job_id)
            .update_expression(
                "SET #state = :copying, #owner = :me, #lease = :until, #updated = :now, \
                 #created = if_not_exists(#created, :now), #exp = :exp ADD #attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(#id) OR #state = :pending \
                 OR (#state = :copying AND (#lease < :now OR #owner = :me)) \
                 OR (#state = :failed AND #perm = :false)",
            )
            .expression_attribute_names("#id", a::JOB_ID)
            .expression_attribute_names("#state", a::STATE)
            .expression_attribute_names("#owner", a::OWNER)
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_names("#updated", a::UPDATED_AT)
            .expression_attribute_names("#created", a::CREATED_AT)
            .expression_attribute_names("#exp", a::EXPIRES_AT)
            .expression_attribute_names("#attempts", a::ATTEMPTS)
            .expression_attribute_names("#perm", a::PERMANENT)
            .expression_attribute_values(":copying", s(COPYING))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(lease_until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exp", n(expires_at_secs))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Claim::Claimed {
                    progress: progress_of(&item),
                    screenshots_done: num_of(&item, a::SCREENSHOTS_DONE).unwrap_or(0).max(0)
                        as usize,
                    attempt: num_of(&item, a::ATTEMPTS).unwrap_or(1) as u32,
                })
            }
            Err(e) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(c)) =
                    e.as_service_error()
                else {
                    return Err(other("UpdateItem(claim)")(e));
                };
                let old = match c.item() {
                    Some(item) => Some(item.clone()),
                    None => self.get(job_id).await?,
                };
                let status = old.as_ref().and_then(status_of);
                Ok(match claim_decision(status.as_ref(), owner, now_ms) {
                    ClaimDecision::AlreadyCopied => Claim::AlreadyCopied,
                    ClaimDecision::AlreadyFailed { reason } => Claim::AlreadyFailed { reason },
                    ClaimDecision::Busy { lease_until_ms } => Claim::Busy { lease_until_ms },
                    // The state changed between the write and the read: try again later.
                    ClaimDecision::Take => Claim::Busy {
                        lease_until_ms: now_ms,
                    },
                })
            }
        }
    }

    async fn start_upload(
        &self,
        job_id: &str,
        owner: &str,
        upload: &UploadProgress,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        let (set_total, remove_total) = match upload.total {
            Some(_) => (", #total = :total", ""),
            None => ("", ", #total"),
        };
        let (set_validator, remove_validator) = match upload.validator {
            Some(_) => (", #validator = :validator", ""),
            None => ("", ", #validator"),
        };
        let mut req = self
            .owned_update(job_id, owner)
            .update_expression(format!(
                "SET #upload = :upload, #key = :key, #lease = :until{set_total}{set_validator} \
                 REMOVE #doneParts, #doneBytes, #hash{remove_total}{remove_validator}"
            ))
            .expression_attribute_names("#validator", a::VALIDATOR)
            .expression_attribute_names("#upload", a::UPLOAD_ID)
            .expression_attribute_names("#key", a::OBJECT_KEY)
            .expression_attribute_names("#doneParts", a::DONE_PARTS)
            .expression_attribute_names("#doneBytes", a::DONE_BYTES)
            .expression_attribute_names("#hash", a::HASH_STATE)
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_names("#total", a::TOTAL_BYTES)
            .expression_attribute_values(":upload", s(&upload.upload_id))
            .expression_attribute_values(":key", s(&upload.key))
            .expression_attribute_values(":until", n(lease_until_ms));
        if let Some(total) = upload.total {
            req = req.expression_attribute_values(":total", n(total));
        }
        if let Some(v) = &upload.validator {
            req = req.expression_attribute_values(":validator", s(v));
        }
        owned("UpdateItem(start upload)", req.send().await)
    }

    async fn record_checkpoint(
        &self,
        job_id: &str,
        owner: &str,
        checkpoint: &Checkpoint,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        let result = self
            .owned_update(job_id, owner)
            .update_expression(
                "SET #doneParts = :parts, #doneBytes = :bytes, #hash = :hash, #lease = :until",
            )
            .expression_attribute_names("#doneParts", a::DONE_PARTS)
            .expression_attribute_names("#doneBytes", a::DONE_BYTES)
            .expression_attribute_names("#hash", a::HASH_STATE)
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_values(":parts", n(checkpoint.parts))
            .expression_attribute_values(":bytes", n(checkpoint.bytes))
            .expression_attribute_values(
                ":hash",
                AttributeValue::B(checkpoint.hash_state.clone().into()),
            )
            .expression_attribute_values(":until", n(lease_until_ms))
            .send()
            .await;
        owned("UpdateItem(checkpoint)", result)
    }

    async fn record_screenshots(
        &self,
        job_id: &str,
        owner: &str,
        done: usize,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        let result = self
            .owned_update(job_id, owner)
            .update_expression("SET #done = :done, #lease = :until")
            .expression_attribute_names("#done", a::SCREENSHOTS_DONE)
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_values(":done", n(done))
            .expression_attribute_values(":until", n(lease_until_ms))
            .send()
            .await;
        owned("UpdateItem(record screenshots)", result)
    }

    async fn renew_lease(
        &self,
        job_id: &str,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        let result = self
            .owned_update(job_id, owner)
            .update_expression("SET #lease = :until")
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_values(":until", n(lease_until_ms))
            .send()
            .await;
        owned("UpdateItem(renew lease)", result)
    }

    async fn release(&self, job_id: &str, owner: &str) -> Result<(), StateError> {
        let result = self
            .owned_update(job_id, owner)
            .update_expression("SET #state = :pending REMOVE #owner, #lease")
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_values(":pending", s(PENDING))
            .send()
            .await;
        owned("UpdateItem(release)", result)
    }

    async fn mark_copied(
        &self,
        job_id: &str,
        owner: &str,
        result: &CopyResult,
        now_ms: i64,
    ) -> Result<(), StateError> {
        // Ours while copying; or already marked copied with this very result (our own write,
        // applied, whose answer was lost and which the SDK retried): the same write again.
        let out = set_copied(self.update(job_id), result, now_ms, "")
            .condition_expression(
                "(#owner = :me AND #state = :copying) OR (#state = :copied AND #sha = :sha)",
            )
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":copying", s(COPYING))
            .send()
            .await;
        owned("UpdateItem(copied)", out)
    }

    async fn mark_failed(
        &self,
        job_id: &str,
        owner: &str,
        reason: &str,
        permanent: bool,
        about: &crate::jobs::FileAbout,
        now_ms: i64,
    ) -> Result<(), StateError> {
        let out = self
            .owned_update(job_id, owner)
            .expression_attribute_names("#about", a::ABOUT)
            .expression_attribute_values(":about", s(about.to_json()))
            .update_expression(
                "SET #state = :failed, #reason = :reason, #perm = :perm, #updated = :now, \
                 #about = :about \
                 REMOVE #owner, #lease, #upload, #doneParts, #doneBytes, #hash, #total, #validator",
            )
            .expression_attribute_names("#validator", a::VALIDATOR)
            .expression_attribute_names("#reason", a::REASON)
            .expression_attribute_names("#perm", a::PERMANENT)
            .expression_attribute_names("#updated", a::UPDATED_AT)
            .expression_attribute_names("#lease", a::LEASE_UNTIL)
            .expression_attribute_names("#upload", a::UPLOAD_ID)
            .expression_attribute_names("#doneParts", a::DONE_PARTS)
            .expression_attribute_names("#doneBytes", a::DONE_BYTES)
            .expression_attribute_names("#hash", a::HASH_STATE)
            .expression_attribute_names("#total", a::TOTAL_BYTES)
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":perm", AttributeValue::Bool(permanent))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        owned("UpdateItem(failed)", out)
    }

    async fn reject(
        &self,
        job_id: &str,
        reason: &str,
        now_ms: i64,
        expires_at_secs: i64,
    ) -> Result<(), StateError> {
        let out = self
            .update(job_id)
            .update_expression(
                "SET #state = :failed, #reason = :reason, #perm = :true, #updated = :now, \
                 #created = if_not_exists(#created, :now), #exp = :exp",
            )
            .condition_expression("attribute_not_exists(#id) OR #state = :failed")
            .expression_attribute_names("#id", a::JOB_ID)
            .expression_attribute_names("#state", a::STATE)
            .expression_attribute_names("#reason", a::REASON)
            .expression_attribute_names("#perm", a::PERMANENT)
            .expression_attribute_names("#updated", a::UPDATED_AT)
            .expression_attribute_names("#created", a::CREATED_AT)
            .expression_attribute_names("#exp", a::EXPIRES_AT)
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exp", n(expires_at_secs))
            .send()
            .await;
        match owned("UpdateItem(reject)", out) {
            // Copied or in progress under a valid version: leave that record alone.
            Err(StateError {
                lease_lost: true, ..
            }) => Ok(()),
            other => other,
        }
    }
}

impl AtRiskFlags for DynamoCopyStore {
    /// One conditional write: the flag, unless the job is flagged or copied already. A job
    /// the copier never saw gets its item here, `pending`, which any copier may claim.
    async fn flag_at_risk(&self, flag: &AtRisk) -> Result<bool, StateError> {
        let expires_at_secs = (flag.link_expires_at_ms / 1000)
            .saturating_add(crate::copier::service::STATE_RETENTION_AFTER_LINK_SECS);
        let out = self
            .update(&flag.job_id)
            .update_expression(
                "SET #atRisk = :now, #cause = :cause, #riskReason = :reason, \
                 #linkExp = :linkExp, #about = if_not_exists(#about, :about), \
                 #state = if_not_exists(#state, :pending), \
                 #created = if_not_exists(#created, :now), #exp = if_not_exists(#exp, :exp)",
            )
            .condition_expression(
                "attribute_not_exists(#atRisk) AND (attribute_not_exists(#state) OR #state <> :copied)",
            )
            .expression_attribute_names("#atRisk", a::AT_RISK_AT)
            .expression_attribute_names("#cause", a::AT_RISK_CAUSE)
            .expression_attribute_names("#riskReason", a::AT_RISK_REASON)
            .expression_attribute_names("#linkExp", a::LINK_EXPIRES_AT)
            .expression_attribute_names("#about", a::ABOUT)
            .expression_attribute_names("#state", a::STATE)
            .expression_attribute_names("#created", a::CREATED_AT)
            .expression_attribute_names("#exp", a::EXPIRES_AT)
            .expression_attribute_values(":now", n(flag.at_ms))
            .expression_attribute_values(":cause", s(flag.cause.as_str()))
            .expression_attribute_values(":reason", s(&flag.reason))
            .expression_attribute_values(":linkExp", n(flag.link_expires_at_ms))
            .expression_attribute_values(":about", s(flag.about.to_json()))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":copied", s(COPIED))
            .expression_attribute_values(":exp", n(expires_at_secs))
            .send()
            .await;
        match owned("UpdateItem(at risk)", out) {
            Ok(()) => Ok(true),
            // Flagged before, or copied: nothing to add.
            Err(StateError {
                lease_lost: true, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The read API's batched reader over the same table (the sweeper's link watch reads with it).
impl crate::read::ports::CopyStates for DynamoCopyStore {
    async fn copy_states(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, crate::read::model::CopyView>, crate::read::ports::ReadError> {
        super::read::DynamoCopyReader::new(self.client.clone(), &self.table)
            .copy_states(job_ids)
            .await
    }
}

impl crate::reconcile::CopyKnown for DynamoCopyStore {
    async fn known(&self, job_id: &str) -> Result<bool, StateError> {
        Ok(self.get(job_id).await?.is_some())
    }
}

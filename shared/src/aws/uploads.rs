//! The upload grants' ports on AWS: [`UploadBucket`] on S3 (the recordings bucket, reusing the
//! copier's [`S3MultipartSink`] for what they share) and [`RecordingLedger`] on the copies
//! table ([`DynamoCopyStore`]).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::ChecksumAlgorithm;
use sha2::{Digest, Sha256};

use super::copies::DynamoCopyStore;
use super::objects::{self, S3MultipartSink};
use crate::copier::layout::ObjectMeta;
use crate::copier::ports::{MultipartSink, SinkError, StateError};
use crate::copier::state::{CopyResult, CopyStatus, ListedPart, PartRecord};
use crate::schema::copy_attr as a;
use crate::uploads::ports::{ObjectInfo, RecordingLedger, UploadBucket};
use crate::uploads::wire::PartUrl;

/// The recordings bucket, for the upload grants.
#[derive(Debug, Clone)]
pub struct S3Uploads {
    client: aws_sdk_s3::Client,
    bucket: String,
    sink: S3MultipartSink,
}

impl S3Uploads {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        Self {
            sink: S3MultipartSink::new(client.clone(), &bucket),
            client,
            bucket,
        }
    }
}

fn plain_err(
    operation: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> SinkError {
    move |source| SinkError {
        operation,
        no_such_upload: false,
        source,
    }
}

impl UploadBucket for S3Uploads {
    async fn object(&self, key: &str) -> Result<Option<ObjectInfo>, SinkError> {
        Ok(self
            .sink
            .existing(key)
            .await?
            .map(|(size, sha256)| ObjectInfo { size, sha256 }))
    }

    async fn create(&self, key: &str, meta: &ObjectMeta) -> Result<String, SinkError> {
        self.sink.create(key, meta).await
    }

    async fn parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, SinkError> {
        match self.sink.list_parts(key, upload_id).await {
            Ok(parts) => Ok(Some(parts)),
            Err(e) if e.no_such_upload => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        len: u64,
        sha256_b64: &str,
        ttl: Duration,
    ) -> Result<PartUrl, SinkError> {
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| plain_err("PresignUploadPart")(super::boxed(e)))?;
        // The checksum and the length are signed headers: S3 refuses a PUT without them or
        // with other values, and checks the body against the checksum.
        let presigned = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(i32::try_from(number).unwrap_or(i32::MAX))
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64)
            .presigned(config)
            .await
            .map_err(|e| objects::err("PresignUploadPart")(e.into_service_error()))?;
        Ok(PartUrl {
            number,
            url: presigned.uri().to_owned(),
            headers: presigned
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), SinkError> {
        let records: Vec<PartRecord> = parts
            .iter()
            .map(|p| PartRecord {
                number: p.number,
                etag: p.etag.clone(),
                sha256: p.sha256.clone(),
                offset: 0,
                len: p.size,
                hash_state: Vec::new(),
            })
            .collect();
        self.sink.complete(key, upload_id, &records).await
    }

    async fn digest(&self, key: &str) -> Result<(u64, String), SinkError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| objects::err("GetObject")(e.into_service_error()))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut bytes: u64 = 0;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| plain_err("GetObject(body)")(super::boxed(e)))?
        {
            bytes = bytes.saturating_add(chunk.len() as u64);
            hasher.update(&chunk);
        }
        Ok((bytes, hex::encode(hasher.finalize())))
    }

    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        self.sink.tag_sha256(key, sha256_hex).await
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| objects::err("DeleteObject")(e.into_service_error()))?;
        Ok(())
    }
}

impl RecordingLedger for DynamoCopyStore {
    async fn copied(&self, job_id: &str) -> Result<Option<CopyResult>, StateError> {
        let Some(item) = self.get(job_id).await? else {
            return Ok(None);
        };
        if super::copies::status_of(&item) != Some(CopyStatus::Copied) {
            return Ok(None);
        }
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let num = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Ok(
            match (text(a::OBJECT_KEY), text(a::SHA256), num(a::BYTES)) {
                (Some(key), Some(sha256), Some(bytes)) => Some(CopyResult {
                    key,
                    bytes,
                    sha256,
                    objects: num(a::OBJECTS).unwrap_or(1) as u32,
                    about: None,
                }),
                _ => None,
            },
        )
    }

    async fn record_copied(
        &self,
        job_id: &str,
        result: &CopyResult,
        now_ms: i64,
        expires_at_secs: i64,
    ) -> Result<(), StateError> {
        let update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(a::JOB_ID, AttributeValue::S(job_id.to_owned()));
        super::copies::set_copied(
            update,
            result,
            now_ms,
            ", #updated = :now, #created = if_not_exists(#created, :now), #exp = :exp",
        )
        .expression_attribute_names("#updated", a::UPDATED_AT)
        .expression_attribute_names("#created", a::CREATED_AT)
        .expression_attribute_names("#exp", a::EXPIRES_AT)
        .expression_attribute_values(":exp", AttributeValue::N(expires_at_secs.to_string()))
        .send()
        .await
        .map_err(super::copies::other("UpdateItem(recording copied)"))?;
        Ok(())
    }
}

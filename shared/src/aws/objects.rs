//! [`MultipartSink`] on S3: the recordings bucket.
//!
//! Parts are sent with `ChecksumSHA256` (S3 verifies each part and keeps a composite
//! checksum of the object); the whole-file SHA-256 goes into the object tag `sha256` after
//! completion, since a multipart upload's metadata is fixed at its creation.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Tag, Tagging};
use bytes::Bytes;

use crate::copier::layout::ObjectMeta;
use crate::copier::ports::{MultipartSink, SinkError};
use crate::copier::state::{ListedPart, PartRecord};

/// The tag that holds the whole-object SHA-256 (hex).
pub const SHA256_TAG: &str = "sha256";

/// Writes objects into one bucket.
#[derive(Debug, Clone)]
pub struct S3MultipartSink {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3MultipartSink {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// An S3 call's failure as a [`SinkError`] (`NoSuchUpload` recognised): one mapping for the
/// copier's sink and the Jibri upload bucket.
pub(super) fn err<E>(operation: &'static str) -> impl FnOnce(E) -> SinkError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    move |e| SinkError {
        operation,
        no_such_upload: e.code() == Some("NoSuchUpload"),
        source: super::boxed(e),
    }
}

fn build_err(operation: &'static str) -> impl FnOnce(aws_sdk_s3::error::BuildError) -> SinkError {
    move |e| SinkError {
        operation,
        no_such_upload: false,
        source: super::boxed(e),
    }
}

impl MultipartSink for S3MultipartSink {
    async fn create(&self, key: &str, meta: &ObjectMeta) -> Result<String, SinkError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .set_metadata(Some(meta.metadata.iter().cloned().collect()))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| err("CreateMultipartUpload")(e.into_service_error()))?;
        out.upload_id.ok_or_else(|| SinkError {
            operation: "CreateMultipartUpload",
            no_such_upload: false,
            source: "no upload id in the answer".into(),
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        sha256_b64: &str,
    ) -> Result<String, SinkError> {
        let len = body.len() as i64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .content_length(len)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64)
            .body(ByteStream::from(body))
            // S3 verifies the part against ChecksumSHA256 already; signing the payload too
            // would hash every byte a third time (UNSIGNED-PAYLOAD is accepted over HTTPS).
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| err("UploadPart")(e.into_service_error()))?;
        out.e_tag.ok_or_else(|| SinkError {
            operation: "UploadPart",
            no_such_upload: false,
            source: "no ETag in the answer".into(),
        })
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartRecord],
    ) -> Result<(), SinkError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number as i32)
                            .e_tag(&p.etag)
                            .set_checksum_sha256(p.sha256.clone())
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(|e| err("CompleteMultipartUpload")(e.into_service_error()))?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), SinkError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: nothing left to clean up.
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(err("AbortMultipartUpload")(e.into_service_error())),
        }
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, SinkError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| err("ListParts")(e.into_service_error()))?;
            for p in page.parts() {
                if let (Some(number), Some(etag)) = (p.part_number, p.e_tag.clone()) {
                    out.push(ListedPart {
                        number: number.max(0) as u32,
                        etag,
                        size: p.size.unwrap_or(0).max(0) as u64,
                        sha256: p.checksum_sha256.clone(),
                    });
                }
            }
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(next)) if Some(&next) != marker.as_ref() => marker = Some(next),
                _ => return Ok(out),
            }
        }
    }

    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        let tag = Tag::builder()
            .key(SHA256_TAG)
            .value(sha256_hex)
            .build()
            .map_err(build_err("PutObjectTagging"))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(build_err("PutObjectTagging"))?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| err("PutObjectTagging")(e.into_service_error()))?;
        Ok(())
    }

    async fn existing(&self, key: &str) -> Result<Option<(u64, Option<String>)>, SinkError> {
        let head = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(h) => h,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(err("HeadObject")(e.into_service_error())),
        };
        let tags = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| err("GetObjectTagging")(e.into_service_error()))?;
        let sha = tags
            .tag_set
            .iter()
            .find(|t| t.key == SHA256_TAG)
            .map(|t| t.value.clone());
        Ok(Some((head.content_length.unwrap_or(0).max(0) as u64, sha)))
    }
}

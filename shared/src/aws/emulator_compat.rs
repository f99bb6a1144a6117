//! Emulator compatibility: moto 5.2.1 (serialising with the botocore models installed with
//! it) answers `CompleteMultipartUpload` and `ListParts` with the root elements
//! `<Operation>Response` instead of S3's `<Operation>Result`. botocore (and so awscli) ignores
//! the root name; the Rust SDK's XML parser does not and fails the call although the operation
//! succeeded. [`super::s3`] installs [`CompleteMultipartRootFix`] only when an endpoint override
//! is configured (an emulator); it renames the root of those two operations' small XML answers
//! before the SDK parses them. Against real S3 (no endpoint override) it is never installed.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use bytes::Bytes;
use http_body::{Body, Frame};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// (operation, moto's root, S3's root)
const RENAMES: [(&str, &str, &str); 2] = [
    (
        "CompleteMultipartUpload",
        "CompleteMultipartUploadResponse",
        "CompleteMultipartUploadResult",
    ),
    ("ListParts", "ListPartsResponse", "ListPartsResult"),
];

/// The interceptor (see the module header).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompleteMultipartRootFix;

/// Buffers a small XML body and renames the root element.
struct Rename {
    wrong: &'static str,
    right: &'static str,
    inner: SdkBody,
    buf: Vec<u8>,
    done: bool,
}

impl Body for Rename {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => {
                    self.done = true;
                    // Only the root element's opening and closing tags.
                    let text = String::from_utf8_lossy(&self.buf)
                        .replacen(&format!("<{}", self.wrong), &format!("<{}", self.right), 1)
                        .replacen(
                            &format!("</{}>", self.wrong),
                            &format!("</{}>", self.right),
                            1,
                        );
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))));
                }
            }
        }
    }
}

impl Intercept for CompleteMultipartRootFix {
    fn name(&self) -> &'static str {
        "CompleteMultipartRootFix"
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some((_, wrong, right)) = cfg
            .load::<Metadata>()
            .and_then(|m| RENAMES.iter().find(|(op, _, _)| *op == m.name()))
            .copied()
        else {
            return Ok(());
        };
        let response = ctx.response_mut();
        let small_xml = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.contains("xml"))
            && response
                .headers()
                .get("content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .is_some_and(|l| l < 64 * 1024);
        if small_xml {
            let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
            *response.body_mut() = SdkBody::from_body_1_x(Rename {
                wrong,
                right,
                inner,
                buf: Vec::new(),
                done: false,
            });
            response.headers_mut().remove("content-length");
        }
        Ok(())
    }
}

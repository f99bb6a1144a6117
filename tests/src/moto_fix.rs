//! Emulator compatibility, tests only: moto 5.2.1 (serialising with the botocore models
//! installed here) answers `CompleteMultipartUpload` and `ListParts` with the root elements
//! `<Operation>Response` instead of S3's `<Operation>Result`. botocore
//! (and so awscli) ignores the root name; the Rust SDK's XML parser does not and fails the call
//! although the operation succeeded. [`s3`] returns an emulator S3 client whose interceptor
//! renames those roots in small XML answers before the SDK parses them. Production talks to S3
//! and never sees this.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// (moto's root, S3's root)
const RENAMES: [(&str, &str); 2] = [
    (
        "CompleteMultipartUploadResponse",
        "CompleteMultipartUploadResult",
    ),
    ("ListPartsResponse", "ListPartsResult"),
];

/// The interceptor (see the module header).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompleteMultipartRootFix;

/// Buffers a small XML body and renames the root element.
struct Rename {
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
                    let mut text = String::from_utf8_lossy(&self.buf).into_owned();
                    for (wrong, right) in RENAMES {
                        text = text.replace(wrong, right);
                    }
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
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
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
                inner,
                buf: Vec::new(),
                done: false,
            });
            response.headers_mut().remove("content-length");
        }
        Ok(())
    }
}

/// An S3 client for the emulator with [`CompleteMultipartRootFix`] installed.
pub fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .interceptor(CompleteMultipartRootFix)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

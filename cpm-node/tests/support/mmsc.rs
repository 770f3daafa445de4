//! A test MMSC over HTTP (hyper's server): it keeps every PDU posted to it
//! with its Content-Type, and answers an `m-send-conf` (OMA-TS-MMS_ENC-V1_3
//! s.6.1.2) whose `X-Mms-Response-Status` the recipient asks for: a number
//! ending `99` gets 0xC1 (Error-transient-sending-address-unresolved), `98`
//! 0xE2 (Error-permanent-sending-address-unresolved), any other 0x80 (Ok).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One post: its Content-Type and body.
pub(crate) type Posted = (String, Bytes);

/// The running MMSC.
pub(crate) struct TestMmsc {
    pub(crate) port: u16,
    posted: Arc<Mutex<Vec<Posted>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestMmsc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `m-send-conf` with `status`: X-Mms-Message-Type m-send-conf,
/// X-Mms-Transaction-ID, X-Mms-MMS-Version 1.0, X-Mms-Response-Status.
fn m_send_conf(status: u8) -> Bytes {
    let mut pdu = vec![0x8C, 0x81, 0x98];
    pdu.extend_from_slice(b"t1\0");
    pdu.extend_from_slice(&[0x8D, 0x90, 0x92, status]);
    Bytes::from(pdu)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl TestMmsc {
    /// The MMSC on a free port of 127.0.0.1.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let port = listener.local_addr().expect("an address").port();
        let posted: Arc<Mutex<Vec<Posted>>> = Arc::default();
        let store = Arc::clone(&posted);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let store = Arc::clone(&store);
                    async move {
                        let content_type = request
                            .headers()
                            .get(hyper::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let status = if contains(&body, b"99/TYPE=PLMN") {
                            0xC1
                        } else if contains(&body, b"98/TYPE=PLMN") {
                            0xE2
                        } else {
                            0x80
                        };
                        if let Ok(mut posted) = store.lock() {
                            posted.push((content_type, body));
                        }
                        let mut response = Response::new(Full::new(m_send_conf(status)));
                        let value = hyper::header::HeaderValue::from_static("application/vnd.wap.mms-message");
                        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { port, posted, task }
    }

    /// What was posted so far.
    pub(crate) fn posted(&self) -> Vec<Posted> {
        self.posted.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

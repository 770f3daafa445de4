//! MMS: the converted `m-send-req` posted to the configured MMSC over HTTP
//! (OMA MMS CTR: the MM1 submission is an HTTP POST of the encapsulated
//! PDU), its `m-send-conf` mapped to the delivery REPORT status that
//! `cpm_roles::interworking::mms_conf_status` defines. The HTTP client is
//! hyper's.

use std::time::Duration;

use bytes::Bytes;
use cpm_roles::interworking::mms_conf_status;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::NonCpmError;

/// The media type of an MMS PDU over HTTP (OMA MMS encapsulation s.5).
const MMS_MESSAGE: &str = "application/vnd.wap.mms-message";
/// The largest `m-send-conf` read back (it is a few dozen octets).
const MAX_CONF: usize = 64 * 1024;
/// The MMSC could not be reached, did not answer in time, or answered
/// with an HTTP server error (RFC 4975 s.10.4: 408, try again later).
const UNREACHABLE: u16 = 408;
/// The MMSC's answer is no `m-send-conf`, or an HTTP client error (RFC
/// 4975 s.10.3: 403, do not try again).
const REFUSED: u16 = 403;

/// Posts converted MMS to one MMSC.
#[derive(Clone, Debug)]
pub struct MmscClient {
    client: Client<HttpConnector, Full<Bytes>>,
    target: Uri,
    deadline: Duration,
}

impl MmscClient {
    /// A client of the MMSC at `target` (an `http://` URL); each post waits
    /// at most `deadline` for the whole answer.
    ///
    /// # Errors
    ///
    /// [`NonCpmError::Target`] for a URL that is not `http://` (an MMSC
    /// over `https://` needs TLS this client does not have yet).
    pub fn new(target: &str, deadline: Duration) -> Result<Self, NonCpmError> {
        let uri: Uri = target.parse().map_err(|_| NonCpmError::Target(target.to_owned()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(NonCpmError::Target(target.to_owned()));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self { client, target: uri, deadline })
    }

    /// Posts `m_send_req`; the REPORT status of the MMSC's `m-send-conf`.
    pub async fn submit(&self, m_send_req: Bytes) -> u16 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.target.clone())
            .header(CONTENT_TYPE, MMS_MESSAGE)
            .body(Full::new(m_send_req));
        let Ok(request) = request else { return REFUSED };
        let answer = tokio::time::timeout(self.deadline, async {
            let response = self.client.request(request).await.ok()?;
            let status = response.status();
            // A body too large, or cut short, is no m-send-conf (`None`).
            let body = Limited::new(response.into_body(), MAX_CONF).collect().await.ok().map(|b| b.to_bytes());
            Some((status, body))
        })
        .await;
        match answer {
            Ok(Some((status, body))) if status.is_success() => {
                body.as_deref().map_or(Err(None), |body| mms_conf_status(body).map_err(Some)).unwrap_or_else(|error| {
                    tracing::warn!(?error, "the MMSC's answer is no m-send-conf");
                    REFUSED
                })
            }
            Ok(Some((status, _))) if status.is_server_error() => UNREACHABLE,
            Ok(Some((status, _))) => {
                tracing::warn!(%status, "the MMSC refused the post");
                REFUSED
            }
            // Not reached, or no answer in time.
            Ok(None) | Err(_) => UNREACHABLE,
        }
    }
}

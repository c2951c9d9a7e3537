//! One HTTP request to a node's status endpoint (`node --status`), for
//! `raft-election status` and `transfer`, and for the tests.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// How long one request may take, the connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// `method path` to `address` (HOST:PORT), with an `accept` header if
/// given: the answer's status code and body, or why there is none.
pub async fn request(
    address: &str,
    method: Method,
    path: &str,
    accept: Option<&str>,
) -> Result<(StatusCode, String), String> {
    let exchange = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, address);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let code = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((code, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

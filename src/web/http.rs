//! HTTP: routing, the embedded assets, security headers, `/healthz`, `/metrics`, and the
//! WebSocket upgrade of `/ws/{room}` (which hands the socket to [`crate::signaling::session`]).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{Either, FutureExt};
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::admission::guard::SocketSlot;
use crate::core::rooms::parse_room_name;
use crate::io::coalesce::Coalesce;
use crate::io::inflight::{Charge, ChargedIo};
use crate::ops::metrics::bump;
use crate::signaling::session;
use crate::signaling::state::State;
use crate::util::cidr::in_networks;
use crate::web::assets::{self, Asset};

pub type Body = Full<Bytes>;

/// A socket's read buffer, and the most one read charges to the in-flight arena at once.
const READ_CHUNK: usize = 2048;

/// Pages may load only what this server serves, run no inline script, and use the camera,
/// microphone and screen capture for themselves only. `connect-src 'self'` admits the page's own
/// `ws:`/`wss:` WebSocket (CSP Level 3 matches `'self'` against the same host with ws/wss for
/// http/https; Chromium and Firefox do so, Safari since 15.4) and nothing else: no socket to any
/// other host, as `ws: wss:` would allow. Safari 15.3 and older, which did not match ws under
/// `'self'`, are not supported by the client anyway (it needs ES2022 and `replaceTrack`).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";
const PERMISSIONS: &str = "camera=(self), microphone=(self), display-capture=(self), \
    geolocation=(), payment=(), usb=()";

/// Answers one request. Never fails: every problem is an HTTP status. `https_port` is set on a
/// plain-HTTP connection while HTTPS runs too (see [`https_redirect`]).
pub async fn handle(
    mut req: Request<hyper::body::Incoming>,
    state: Arc<State>,
    peer: SocketAddr,
    https_port: Option<u16>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    // Against DNS rebinding: a request must name this server (see `hosts`). A trusted proxy's
    // requests carry the proxy's choice of Host; the proxy routes by name.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or(""));
    if !in_networks(peer.ip(), &state.config.trusted_proxies) && !state.hosts.allows(host) {
        bump(&state.metrics.refused_unknown_host);
        return Ok(misdirected(host.unwrap_or("")));
    }
    let proxied = in_networks(peer.ip(), &state.config.trusted_proxies);
    if let Some(location) = https_port
        .filter(|_| !proxied && (req.method() == Method::GET || req.method() == Method::HEAD))
        .and_then(|port| https_redirect(host, req.uri(), port))
    {
        return Ok(redirect(&location));
    }
    let response = if let Some(room) = path.strip_prefix("/ws/") {
        let client = Client::of(peer, req.headers(), &state.config.trusted_proxies);
        upgrade(&mut req, room, &state, &client)
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are served here.\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        let mut response = if path == "/metrics" && !metrics_allowed(&state, peer, req.headers()) {
            // Answered like any address that has nothing, so its existence is not told either.
            not_found("There is nothing at this address.")
        } else {
            route(&path, req.headers(), &state)
        };
        if req.method() == Method::HEAD {
            *response.body_mut() = Body::default();
        }
        response
    };
    Ok(response)
}

/// The plain-HTTP trap: a phone that opens `http://192.168.1.5:8080/r/family` gets a page
/// whose camera the browser refuses (only HTTPS and `localhost` are secure contexts). While
/// HTTPS runs, a page request over plain HTTP whose `Host` is not a loopback name is sent to the
/// same host on the HTTPS port (308). Not redirected: `localhost`, `*.localhost`, 127.0.0.0/8
/// and `[::1]` (secure contexts over HTTP, and what tests and the Pi's own browser use);
/// `/ws/` (the page's socket follows the page), `/healthz` and `/metrics` (monitors); and
/// anything from a trusted proxy, whose own scheme and port this server cannot know: there the
/// page itself shows a link to `https://` the same address (`ui/lobby.js`).
pub fn https_redirect(host: Option<&str>, uri: &hyper::Uri, port: u16) -> Option<String> {
    let path = uri.path();
    if path.starts_with("/ws/") || path == "/healthz" || path == "/metrics" {
        return None;
    }
    // The Host as the DNS-rebinding check reads it (`ops::hosts::host_of`): no port, lower case.
    let bare = crate::ops::hosts::host_of(host?)?;
    let loopback = bare == "localhost"
        || bare.ends_with(".localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if loopback {
        return None;
    }
    let name = if bare.contains(':') {
        format!("[{bare}]")
    } else {
        bare
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("https://{name}:{port}{path}{query}"))
}

/// 308 Permanent Redirect to `location` (method and body kept; browsers remember it).
fn redirect(location: &str) -> Response<Body> {
    let mut r = text(
        StatusCode::PERMANENT_REDIRECT,
        &format!("This page is served over HTTPS, so the camera and microphone work: {location}\n"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, value);
    }
    r
}

/// `/metrics` tells when meetings happen and how close the heap is to its ceiling: it is for
/// loopback, the trusted proxies' networks and `--metrics-from`, judged by the client address
/// (behind a trusted proxy, the one it forwards for, so the proxy's visitors are not let in).
fn metrics_allowed(state: &State, peer: SocketAddr, headers: &HeaderMap) -> bool {
    let trusted = &state.config.trusted_proxies;
    let ip = Client::of(peer, headers, trusted).ip;
    ip.to_canonical().is_loopback()
        || in_networks(ip, trusted)
        || in_networks(ip, &state.config.metrics_from)
}

/// 421 Misdirected Request: the `Host` is not a name of this server (a DNS-rebinding page, or
/// a name the operator has not listed). Pages and `/ws` upgrades alike.
fn misdirected(host: &str) -> Response<Body> {
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect();
    text(
        StatusCode::MISDIRECTED_REQUEST,
        &format!(
            "This server does not answer to the name `{host}`.\n\
             It answers to its own host name, NAME.local, NAME.<DNS search domain>, localhost, \
             its IP addresses and its certificate's names. If `{host}` is a name of this server \
             (a DNS name for a router that forwards here), start it with --allowed-hosts {host}.\n"
        ),
    )
}

/// Answers a GET for `path` (public for the fuzz targets, like the header checks below).
pub fn route(path: &str, headers: &HeaderMap, state: &State) -> Response<Body> {
    match path {
        "/" => asset(assets::find("/index.html"), headers),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/selftest" => asset(assets::find("/selftest.html"), headers),
        "/new" => {
            let mut r = text(StatusCode::SEE_OTHER, "");
            let location = format!("/r/{}", new_room_name());
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&location).expect("room names are header-safe"),
            );
            r
        }
        "/metrics" => {
            let mut r = text(StatusCode::OK, &state.render_metrics());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => {
            if let Some(room) = path.strip_prefix("/r/") {
                return match parse_room_name(room) {
                    Some(_) => asset(assets::find("/room.html"), headers),
                    None => not_found("Room names are 1 to 64 letters, digits and dashes."),
                };
            }
            match assets::find(path) {
                Some(found) => asset(Some(found), headers),
                None => not_found("There is nothing at this address."),
            }
        }
    }
}

/// A fresh room name such as `280d-ed66-9442`: 48 bits from the OS CSPRNG in three groups.
pub fn new_room_name() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let hex = crate::util::hex::hex(&bytes);
    format!("{}-{}-{}", &hex[0..4], &hex[4..8], &hex[8..12])
}

/// Serves an embedded file: gzip when the browser takes it, 304 when its copy is current.
fn asset(found: Option<&'static Asset>, headers: &HeaderMap) -> Response<Body> {
    let Some(asset) = found else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This build has no client pages.\n",
        );
    };
    let cache = if asset.mime.starts_with("text/") {
        // Not fingerprinted: revalidate each time, which costs a 304 and no body.
        "no-cache"
    } else {
        "public, max-age=86400"
    };
    let mut builder = Response::builder()
        .header(header::ETAG, asset.etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding");
    if etag_matches(headers, asset.etag) {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return secure(
            builder
                .body(Body::default())
                .expect("static headers are valid"),
        );
    }
    builder = builder.header(header::CONTENT_TYPE, asset.mime);
    let body = match asset.gzip {
        Some(gz) if accepts_gzip(headers) => {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            gz
        }
        _ => asset.raw,
    };
    secure(
        builder
            .body(Body::new(Bytes::from_static(body)))
            .expect("static headers are valid"),
    )
}

pub fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Adds the headers every response carries.
fn secure(mut response: Response<Body>) -> Response<Body> {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    secure(
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::new(Bytes::from(body.to_string())))
            .expect("static headers are valid"),
    )
}

/// A small page people can read, with a way back to the start.
fn not_found(why: &str) -> Response<Body> {
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Not found · VideoMeet</title><link rel=\"stylesheet\" href=\"/css/app.css\">\
         <main class=\"notfound\"><h1>Not found</h1><p>{why}</p>\
         <p><a href=\"/\">Start or join a meeting</a></p></main></html>"
    );
    secure(
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::new(Bytes::from(page)))
            .expect("static headers are valid"),
    )
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Who is asking: the TCP peer, or behind a trusted proxy the client it forwards for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The host the browser used, as the proxy forwarded it (trusted proxies only).
    pub forwarded_host: Option<String>,
}

impl Client {
    pub fn of(peer: SocketAddr, headers: &HeaderMap, trusted: &[(IpAddr, u8)]) -> Client {
        let direct = Client {
            ip: peer.ip(),
            forwarded_host: None,
        };
        if !in_networks(peer.ip(), trusted) {
            return direct;
        }
        // X-Forwarded-For lists every hop, the nearest last; a client can write anything at
        // the start of it, so walk from the end past our own proxies.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        let ip = hops
            .iter()
            .rev()
            .find(|ip| !in_networks(**ip, trusted))
            .or(hops.first())
            .copied()
            .unwrap_or(peer.ip());
        let forwarded_host = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string());
        Client { ip, forwarded_host }
    }
}

/// A WebSocket may come only from this server's own pages (the Origin's host is the Host the
/// browser asked, or the host a trusted proxy says it asked) or from a configured origin. A
/// missing Origin is a non-browser client, which no browser page can impersonate.
pub fn origin_allowed(headers: &HeaderMap, client: &Client, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed.contains(&origin) {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    [host, client.forwarded_host.as_deref()]
        .into_iter()
        .flatten()
        .any(|h| authority.eq_ignore_ascii_case(h))
}

/// The host name the browser used for this server (its `Host`, or the one a trusted proxy
/// forwarded), without the port: where it will find the built-in STUN/TURN server too.
pub fn page_host(headers: &HeaderMap, client: &Client) -> Option<String> {
    let authority = match &client.forwarded_host {
        Some(host) => host.as_str(),
        None => headers.get(header::HOST)?.to_str().ok()?,
    };
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "-.[]:".contains(c);
    (!host.is_empty() && host.chars().all(plain)).then(|| host.to_ascii_lowercase())
}

/// `GET /ws/{room}`: checks the handshake and the budget, answers 101 and starts a session.
fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    room: &str,
    state: &Arc<State>,
    client: &Client,
) -> Response<Body> {
    let Some(room) = parse_room_name(room) else {
        return not_found("Room names are 1 to 64 letters, digits and dashes.");
    };
    let headers = req.headers();
    let is_ws = req.method() == Method::GET
        && header_has_token(headers, header::CONNECTION, "upgrade")
        && header_has_token(headers, header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (is_ws, key) else {
        return text(
            StatusCode::BAD_REQUEST,
            "This address takes WebSocket connections (version 13) only.\n",
        );
    };
    if !origin_allowed(headers, client, &state.config.allowed_origins) {
        return text(
            StatusCode::FORBIDDEN,
            "WebSockets are accepted from this server's own pages only.\n",
        );
    }
    let Some(permit) = state.socket_permit() else {
        bump(&state.metrics.refused_upgrade_busy);
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is at its limit; try again soon.\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let slot = if state.limits_apply_to(client.ip) {
        state.guard.open_socket(client.ip, Instant::now()).map(Some)
    } else {
        Ok(None)
    };
    let Ok(slot) = slot else {
        bump(&state.metrics.upgrades_refused_per_ip);
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many connections from your address; close some tabs or try again soon.\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    };

    let host = page_host(req.headers(), client);
    let on_upgrade = hyper::upgrade::on(req);
    let ip = client.ip;
    let state = state.clone();
    let max = state.limits().max_message_bytes as usize;
    // One home for the frame cap: both the frame and the whole message are held to it here,
    // and small buffers keep an idle socket cheap (the defaults are 128 KiB each).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(0)
        .max_write_buffer_size(max + 64 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    // The upgrade, then the session, as a combinator rather than an `async` block: a block
    // would keep what it captured (about 300 bytes) beside the session's future for the
    // socket's whole life; `then` holds either the closure or the session, never both.
    tokio::spawn(on_upgrade.then(move |upgraded| {
        let upgraded = match upgraded {
            Ok(upgraded) => upgraded,
            Err(e) => {
                log::debug!("upgrade failed: {e}");
                return Either::Right(std::future::ready(()));
            }
        };
        let share = slot.as_ref().map(SocketSlot::in_flight_share);
        let charge = Charge::new(state.budget.clone(), share);
        let io = ChargedIo::new(
            Coalesce::new(TokioIo::new(upgraded)),
            charge.clone(),
            READ_CHUNK,
            Duration::from_secs(state.limits().message_secs),
        )
        .with_max_frame(max as u64);
        // Without a handshake there is nothing to wait for: the stream is ready at once.
        let Some(ws) =
            WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).now_or_never()
        else {
            log::error!("a WebSocket without a handshake was not ready at once");
            return Either::Right(std::future::ready(()));
        };
        Either::Left(session::run(
            ws,
            charge,
            room,
            state,
            (permit, slot),
            ip,
            host,
        ))
    }));

    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Body::default())
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn plain_http_page_requests_go_to_https_unless_the_page_is_a_loopback_one() {
        let uri = |u: &str| u.parse::<hyper::Uri>().unwrap();
        let go = |host: &str, u: &str| https_redirect(Some(host), &uri(u), 8443);
        assert_eq!(
            go("192.168.1.5:8080", "/r/family?x=1").as_deref(),
            Some("https://192.168.1.5:8443/r/family?x=1")
        );
        assert_eq!(
            go("pi.local:8080", "/").as_deref(),
            Some("https://pi.local:8443/")
        );
        assert_eq!(
            go("[fd00::5]:8080", "/r/a").as_deref(),
            Some("https://[fd00::5]:8443/r/a")
        );
        assert_eq!(
            go("meet.example.org", "/").as_deref(),
            Some("https://meet.example.org:8443/")
        );
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "pi.localhost:80",
            "127.0.0.1:8080",
            "127.2.3.4",
            "[::1]:8080",
        ] {
            assert_eq!(go(host, "/r/family"), None, "{host}");
        }
        for path in ["/ws/family", "/healthz", "/metrics"] {
            assert_eq!(go("192.168.1.5:8080", path), None, "{path}");
        }
        assert_eq!(https_redirect(None, &uri("/"), 8443), None);
    }

    #[test]
    fn new_room_names_are_valid_and_differ() {
        let a = new_room_name();
        assert_eq!(a.len(), 14);
        assert!(parse_room_name(&a).is_some());
        assert_ne!(a, new_room_name());
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        let tag = "\"abc-1\"";
        assert!(etag_matches(
            &headers(&[("if-none-match", "\"x\", \"abc-1\"")]),
            tag
        ));
        assert!(etag_matches(
            &headers(&[("if-none-match", "W/\"abc-1\"")]),
            tag
        ));
        assert!(!etag_matches(
            &headers(&[("if-none-match", "\"abc-2\"")]),
            tag
        ));
    }

    fn direct() -> Client {
        Client {
            ip: "10.0.0.1".parse().unwrap(),
            forwarded_host: None,
        }
    }

    #[test]
    fn only_same_host_origins_may_open_sockets() {
        let ok = |h: &[(&'static str, &'static str)]| origin_allowed(&headers(h), &direct(), &[]);
        assert!(ok(&[("host", "h:8080")]));
        assert!(ok(&[("host", "h:8080"), ("origin", "http://h:8080")]));
        assert!(ok(&[("host", "h:8443"), ("origin", "https://H:8443")]));
        assert!(!ok(&[("host", "h:8080"), ("origin", "http://evil:8080")]));
        assert!(!ok(&[("host", "h:8080"), ("origin", "null")]));
        assert!(!ok(&[("host", "h:8080"), ("origin", "http://h:8080.evil")]));
        // A configured origin, and the host a trusted proxy forwarded.
        let allowed = ["https://meet.example.org".to_string()];
        let h = headers(&[
            ("host", "backend:8080"),
            ("origin", "https://meet.example.org"),
        ]);
        assert!(origin_allowed(&h, &direct(), &allowed));
        assert!(!origin_allowed(&h, &direct(), &[]));
        let proxied = Client {
            forwarded_host: Some("meet.example.org".into()),
            ..direct()
        };
        assert!(origin_allowed(&h, &proxied, &[]));
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let trusted = [crate::util::cidr::parse_cidr("10.0.0.0/8").unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2"),
            ("x-forwarded-host", "meet.example.org"),
        ]);
        let via_proxy = Client::of("10.0.0.1:5000".parse().unwrap(), &h, &trusted);
        assert_eq!(
            via_proxy.ip,
            "203.0.113.7".parse::<IpAddr>().unwrap(),
            "the hop before our proxies, not what the client wrote first"
        );
        assert_eq!(
            via_proxy.forwarded_host.as_deref(),
            Some("meet.example.org")
        );
        let spoofed = Client::of("198.51.100.9:5000".parse().unwrap(), &h, &trusted);
        assert_eq!(spoofed.ip, "198.51.100.9".parse::<IpAddr>().unwrap());
        assert_eq!(spoofed.forwarded_host, None);
        let no_header = Client::of("10.0.0.1:5000".parse().unwrap(), &headers(&[]), &trusted);
        assert_eq!(no_header.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}

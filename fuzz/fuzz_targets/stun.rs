//! The STUN/TURN decoder: any datagram or TCP frame a client or peer can send to the relay. It
//! must parse or refuse, never panic; what it accepts must survive every accessor the relay
//! uses, and a message rebuilt from its parts must parse back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videomeet::turn::codec::{self as stun, attr, Builder, Message};

fuzz_target!(|data: &[u8]| {
    let _ = stun::stream_frame_len(data);
    let _ = stun::parse_channel_data(data);
    let Some(msg) = Message::parse(data) else {
        return;
    };
    let _ = msg.unknown_required();
    let _ = msg.text(attr::USERNAME);
    let _ = msg.u32(attr::LIFETIME);
    let _ = msg.xor_addresses(attr::XOR_PEER_ADDRESS);
    let _ = msg.integrity_ok(b"key");
    if let Some(peer) = msg.xor_address(attr::XOR_PEER_ADDRESS) {
        let again = Builder::new(msg.method, msg.class, msg.txid)
            .xor_address(attr::XOR_PEER_ADDRESS, peer)
            .finish(Some(b"key"), true);
        let back = Message::parse(&again).expect("what we build parses");
        // IPv4-mapped IPv6 is written as IPv4 on purpose; everything else comes back as it was.
        let canonical = std::net::SocketAddr::new(peer.ip().to_canonical(), peer.port());
        assert_eq!(back.xor_address(attr::XOR_PEER_ADDRESS), Some(canonical));
        assert_eq!((back.method, back.class), (msg.method & 0x0FFF, msg.class));
        assert!(back.integrity_ok(b"key"));
    }
});

// What the gathered ICE candidates mean, in plain words. Pure (no browser APIs) so node tests it.

/** The port of the first URL with this scheme and transport, e.g. 3478. */
function portOf(iceServers, scheme, transport) {
  for (const server of iceServers) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    for (const url of urls) {
      if (typeof url !== 'string' || !url.startsWith(`${scheme}:`)) continue;
      const wanted = transport ? url.includes(`transport=${transport}`) || (transport === 'udp' && !url.includes('transport=')) : true;
      if (!wanted) continue;
      const port = /:(\d+)(\?|$)/.exec(url)?.[1];
      return port ?? (scheme === 'turns' ? '5349' : '3478');
    }
  }
  return null;
}

/**
 * @param {RTCIceServer[]} iceServers what the server handed out
 * @param {{ candidates: {type: string, address?: string, relayProtocol?: string}[],
 *           errors: {url?: string, code: number, text?: string}[] }} gathered
 * @returns {Record<'stun' | 'relay-udp' | 'relay-tcp', ['ok' | 'warn' | 'fail', string]>}
 */
export function classify(iceServers, { candidates, errors }) {
  const stunPort = portOf(iceServers, 'stun');
  const udpPort = portOf(iceServers, 'turn', 'udp');
  const tcpPort = portOf(iceServers, 'turn', 'tcp');
  const srflx = candidates.find((c) => c.type === 'srflx');
  const relays = candidates.filter((c) => c.type === 'relay');
  const udpRelay = relays.find((c) => (c.relayProtocol ?? 'udp') === 'udp');
  const tcpRelay = relays.find((c) => c.relayProtocol === 'tcp' || c.relayProtocol === 'tls');
  const stunFailed = errors.some((e) => e.url?.startsWith('stun:'));

  let stun;
  if (!stunPort) {
    stun = ['warn', 'This server hands out no STUN server; calls between networks rely on the relay.'];
  } else if (srflx) {
    stun = ['ok', `Found: the internet sees you as ${srflx.address ?? 'a public address'}.`];
  } else if (stunFailed) {
    stun = ['fail', `No answer from the server's STUN port (UDP ${stunPort}). A firewall blocks it: open UDP ${stunPort} on the server, or rely on the TCP relay.`];
  } else {
    stun = ['ok', 'The server answered and sees the same address as your device has: no address translation between you (same network, or a public address).'];
  }

  const noRelay = 'This server offers no relay, so calls between strict networks may fail. The operator can turn on the built-in relay (--stun-listen) or name a TURN server (--turn-urls).';
  let udp;
  if (!udpPort) udp = ['fail', noRelay];
  else if (udpRelay) udp = ['ok', `Available: relayed address ${udpRelay.address ?? ''}.`.replace(' .', '.')];
  else udp = ['fail', `No UDP relay: UDP port ${udpPort} to the server is blocked or the credential was refused. Calls still work through the TCP relay if it is found, with a little more delay.`];

  let tcp;
  if (!tcpPort) tcp = udpPort ? ['warn', 'This server offers no TCP relay; networks that block UDP cannot call through it.'] : ['fail', noRelay];
  else if (tcpRelay) tcp = ['ok', `Available: relayed address ${tcpRelay.address ?? ''}.`.replace(' .', '.')];
  else tcp = ['fail', `No TCP relay: TCP port ${tcpPort} to the server is blocked.`];

  return { stun, 'relay-udp': udp, 'relay-tcp': tcp };
}

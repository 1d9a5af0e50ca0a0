// The connection check at /selftest: the camera and microphone, the signaling socket, the ICE
// candidates this browser gathers with the server's STUN and TURN, and a call between two peer
// connections in this page forced through the relay. Each result says in plain words what works
// and what to fix. The page joins a throwaway room for the few seconds it runs, because TURN
// credentials are only ever issued to a seat.
import { ClientMsg } from './protocol.js';
import { classify } from './selftest-verdicts.js';
import { byId } from './ui/dom.js';

/** @typedef {'ok' | 'fail' | 'warn' | 'run'} Status */

/** @type {Record<Status, string>} */
const MARKS = { ok: '✓', fail: '✗', warn: '!', run: '…' };

/** The checks' list items, by `data-check`. */
const checks = () => /** @type {HTMLElement[]} */ ([...document.querySelectorAll('[data-check]')]);

/** @param {string} check @param {Status} status @param {string} detail */
function set(check, status, detail) {
  const item = checks().find((i) => i.dataset.check === check);
  if (!item) throw new Error(`the page has no check ${check}`);
  item.dataset.status = status;
  /** @type {HTMLElement} */ (item.querySelector('.mark')).textContent = MARKS[status];
  /** @type {HTMLElement} */ (item.querySelector('.detail')).textContent = detail;
}

/** @param {unknown} e a thrown error, whatever it is */
const errorText = (e) => (e instanceof Error ? e.message : String(e));

function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return [...a].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** @type {Record<string, string>} */
const MEDIA_ERRORS = {
  NotAllowedError: 'The browser blocked them. Allow the camera and microphone for this site (the icon at the left of the address bar), then run the check again.',
  NotFoundError: 'No camera or microphone was found. Plug one in, or join meetings to watch and listen only.',
  NotReadableError: 'Another program is using the camera or microphone. Close it, then run the check again.',
  OverconstrainedError: 'The camera could not give a picture in any size asked for.',
};

async function checkMedia() {
  set('media', 'run', 'asking the browser…');
  if (!window.isSecureContext) {
    set('media', 'fail', `This page came over plain HTTP, so the browser will not offer the camera. Open it over HTTPS instead: https://${location.hostname}:8443${location.pathname}`);
    return null;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    set('media', 'fail', 'This browser cannot use a camera on this page.');
    return null;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const names = stream.getTracks().map((t) => `${t.kind === 'audio' ? 'microphone' : 'camera'} “${t.label || t.kind}”`);
    set('media', 'ok', `Working: ${names.join(' and ')}.`);
    const preview = byId('preview', HTMLVideoElement);
    preview.srcObject = stream;
    preview.hidden = false;
    return stream;
  } catch (e) {
    const name = e instanceof Error ? e.name : 'Error';
    set('media', 'fail', MEDIA_ERRORS[name] ?? `They could not start (${name}: ${errorText(e)}).`);
    return null;
  }
}

/**
 * Joins a fresh room as "Connection check"; resolves with the socket and its ice_servers.
 * @returns {Promise<{ ws: WebSocket, iceServers: RTCIceServer[] }>}
 */
function joinServer() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws/selftest-${randomHex(6)}`);
    const fail = (why) => {
      clearTimeout(timer);
      ws.close();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('no answer within 10 seconds'), 10000);
    ws.onopen = () => ws.send(JSON.stringify(ClientMsg.join({
      name: 'Connection check', client: randomHex(8), audio: false, video: false,
    })));
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === 'joined') {
        clearTimeout(timer);
        resolve({ ws, iceServers: Array.isArray(msg.ice_servers) ? msg.ice_servers : [] });
      } else if (msg.type === 'error') {
        fail(msg.message ?? msg.code);
      }
    };
    ws.onerror = () => fail('the connection was refused or cut');
  });
}

/** Gathers every candidate one connection can get with `iceServers` (15 s at most). */
async function gather(iceServers) {
  const pc = new RTCPeerConnection({ iceServers });
  pc.createDataChannel('probe');
  const candidates = [];
  const errors = [];
  pc.addEventListener('icecandidateerror', (e) => errors.push({ url: e.url, code: e.errorCode, text: e.errorText }));
  const done = /** @type {Promise<void>} */ (new Promise((resolve) => {
    pc.addEventListener('icecandidate', (e) => (e.candidate ? candidates.push(e.candidate) : resolve()));
    setTimeout(resolve, 15000);
  }));
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return {
    candidates: candidates.map((c) => ({ type: c.type, address: c.address, protocol: c.protocol, relayProtocol: c.relayProtocol })),
    errors,
  };
}

/**
 * Two connections in this page, both allowed relay candidates only: a data channel echo gives
 * the round trip, and the camera (when there is one) must arrive decoded on the far side.
 */
async function relayCall(iceServers, stream) {
  /** @type {RTCConfiguration} */
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  try {
    a.addEventListener('icecandidate', (e) => e.candidate && b.addIceCandidate(e.candidate).catch(() => {}));
    b.addEventListener('icecandidate', (e) => e.candidate && a.addIceCandidate(e.candidate).catch(() => {}));
    const channel = a.createDataChannel('echo');
    b.addEventListener('datachannel', (e) => {
      e.channel.onmessage = (m) => e.channel.send(m.data);
    });
    const video = stream?.getVideoTracks()[0];
    if (video) a.addTrack(video, stream);
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(/** @type {RTCSessionDescription} */ (a.localDescription));
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(/** @type {RTCSessionDescription} */ (b.localDescription));
    const rtt = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connection within 20 seconds')), 20000);
      channel.onopen = () => {
        const sent = performance.now();
        channel.onmessage = () => {
          clearTimeout(timer);
          resolve(performance.now() - sent);
        };
        channel.send('ping');
      };
    });
    let frames = 0;
    for (let i = 0; video && i < 50 && frames === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      (await b.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded ?? 0;
      });
    }
    return { rtt, video: Boolean(video), frames };
  } finally {
    a.close();
    b.close();
  }
}

async function run() {
  const again = byId('again', HTMLButtonElement);
  const summary = byId('summary');
  again.disabled = true;
  for (const item of checks()) set(item.dataset.check ?? '', 'run', 'waiting');
  summary.textContent = 'Checking…';

  const stream = await checkMedia();
  /** @type {{ ws: WebSocket, iceServers: RTCIceServer[] } | null} */
  let joined = null;
  try {
    set('server', 'run', 'connecting…');
    joined = await joinServer();
    set('server', 'ok', 'Connected: meetings can be set up through this server.');
  } catch (e) {
    set('server', 'fail', `Could not reach this server's meeting service (${errorText(e)}). A proxy or firewall between you and the server may block WebSockets.`);
  }

  if (joined) {
    set('stun', 'run', 'gathering…');
    set('relay-udp', 'run', 'gathering…');
    set('relay-tcp', 'run', 'gathering…');
    const gathered = await gather(joined.iceServers);
    const verdicts = classify(joined.iceServers, gathered);
    for (const [check, [status, detail]] of Object.entries(verdicts)) set(check, status, detail);
    if (verdicts['relay-udp'][0] === 'ok' || verdicts['relay-tcp'][0] === 'ok') {
      set('call', 'run', 'calling…');
      try {
        const call = await relayCall(joined.iceServers, stream);
        const ms = Math.max(1, Math.round(call.rtt));
        if (call.video && call.frames === 0) {
          set('call', 'fail', `The call connected (${ms} ms round trip) but no video arrived through the relay.`);
        } else {
          set('call', 'ok', `Works: ${ms} ms round trip through the relay${call.video ? ', video arrives' : ''}.`);
        }
      } catch (e) {
        set('call', 'fail', `The relay did not carry a call (${errorText(e)}). The server's relay ports (UDP 49152–65535 by default) may be blocked by its firewall.`);
      }
    } else {
      set('call', 'fail', 'Skipped: no relay is available to call through.');
    }
    joined.ws.send(JSON.stringify(ClientMsg.leave()));
    joined.ws.close();
  } else {
    for (const check of ['stun', 'relay-udp', 'relay-tcp', 'call']) set(check, 'fail', 'Skipped: the server could not be reached.');
  }
  for (const track of stream?.getTracks() ?? []) track.stop();
  byId('preview').hidden = true;

  const failed = checks().filter((i) => i.dataset.status === 'fail').length;
  summary.textContent = failed === 0
    ? 'Everything works: you can meet people on other networks through this server.'
    : `${failed} of 6 checks failed: see what to do next to each.`;
  again.disabled = false;
}

byId('again').addEventListener('click', run);
run();

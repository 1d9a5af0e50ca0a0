// The room page: lobby, then the meeting. Wires the signaling, the peer links, the local media and
// the DOM together; each of those knows nothing of the others.

import { applySendPolicy, sendPolicy } from './bandwidth.js';
import { pickLanguage, translator } from './i18n.js';
import { LocalMedia, mediaErrorKey } from './media.js';
import { Mesh, PeerLink } from './peers.js';
import { loadPrefs, savePrefs, tabIdentity, tokenKey } from './prefs.js';
import { Signaling } from './protocol.js';
import { announce, applyStrings } from './ui/dom.js';
import { Grid } from './ui/tiles.js';

const t = translator(pickLanguage(navigator.languages));
document.documentElement.lang = pickLanguage(navigator.languages);
applyStrings(document, t);

const $ = (id) => document.getElementById(id);
const room = decodeURIComponent(location.pathname.split('/')[2] ?? '').toLowerCase();
document.title = `${room} · VideoMeet`;
$('join-title').textContent = t('joinTitle', { room });

const store = safeStorage(() => localStorage);
const session = safeStorage(() => sessionStorage);
const prefs = loadPrefs(store);
const client = tabIdentity(session, (bytes) => crypto.getRandomValues(bytes));
const media = new LocalMedia();
/** What the user wants on; the lobby shows it, Join applies it. */
const want = { audio: prefs.audio, video: prefs.video };
/** The meeting, once Join was pressed. @type {Meeting | null} */
let meeting = null;

$('name').value = prefs.name;
renderDevices();
// Attached only once there is a track: an empty stream would hold the page's load event forever.
media.addEventListener('track', () => {
  if ($('preview').srcObject !== media.stream) $('preview').srcObject = media.stream;
});

for (const [button, kind] of [[$('lobby-mic'), 'audio'], [$('lobby-cam'), 'video'], [$('mic'), 'audio'], [$('cam'), 'video']]) {
  button.addEventListener('click', () => toggle(kind));
}
media.addEventListener('change', renderDevices);

document.addEventListener('keydown', (event) => {
  if ($('meeting').hidden || event.target instanceof HTMLInputElement) return;
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
  // The shortcuts people know from other meeting apps.
  if (event.key === 'd' || event.key === 'D') { event.preventDefault(); toggle('audio'); }
  if (event.key === 'e' || event.key === 'E') { event.preventDefault(); toggle('video'); }
});

/** Turns a kind on or off: the first time on asks the browser; after that only `enabled` flips. */
async function toggle(kind) {
  const on = !(meeting ? media.isOn(kind) : want[kind]);
  want[kind] = on;
  await applyMedia(kind, on);
  want[kind] = media.isOn(kind);
  prefs[kind] = want[kind];
  savePrefs(store, prefs);
  meeting?.signaling.update({ [kind]: media.isOn(kind) });
  renderDevices();
}

async function applyMedia(kind, on) {
  try {
    await media.set(kind, on);
    showError('media-error', null);
  } catch (err) {
    console.warn('getUserMedia failed', err);
    showError('media-error', t(mediaErrorKey(err), { message: err?.message ?? String(err) }));
    if (meeting) announce(t(mediaErrorKey(err), { message: err?.message ?? '' }));
  }
}

function renderDevices() {
  for (const [kind, buttons] of [['audio', ['lobby-mic', 'mic']], ['video', ['lobby-cam', 'cam']]]) {
    const on = meeting ? media.isOn(kind) : want[kind];
    for (const id of buttons) {
      const button = $(id);
      button.textContent = t(kind === 'audio' ? (on ? 'micOff' : 'micOn') : (on ? 'cameraOff' : 'cameraOn'));
      button.setAttribute('aria-pressed', String(on));
    }
  }
  $('preview-off').hidden = media.isOn('video');
  if (meeting) meeting.renderSelf();
}

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  if (!name) {
    showError('join-error', t('yourName'));
    $('name').focus();
    return;
  }
  prefs.name = name;
  savePrefs(store, prefs);
  $('join').disabled = true;
  $('join').textContent = t('joining');
  // Joining is a click, so this is where remembered choices may ask the browser for devices.
  for (const kind of ['audio', 'video']) {
    if (want[kind] && !media.isOn(kind)) await applyMedia(kind, true);
  }
  if (meeting) meeting.signaling.start();
  else meeting = new Meeting(name);
});

$('rejoin').addEventListener('click', () => location.reload());
window.addEventListener('online', () => meeting?.signaling.reconnectNow());

class Meeting {
  constructor(name) {
    this.name = name;
    this.selfId = '';
    this.host = false;
    /** @type {Map<string, import('./protocol.js').Peer>} */
    this.peers = new Map();
    this.iceServers = [];
    this.grid = new Grid($('grid'), t);
    this.mesh = new Mesh((id, initiator) => this.makeLink(id, initiator));
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.signaling = new Signaling({
      url: `${scheme}//${location.host}/ws/${encodeURIComponent(room)}`,
      join: () => ({
        name: this.name,
        client,
        password: $('password').value || undefined,
        audio: media.isOn('audio'),
        video: media.isOn('video'),
      }),
    });
    this.signaling.token = session?.getItem(tokenKey(room)) ?? null;
    this.signaling.addEventListener('joined', (e) => this.onJoined(e.detail));
    this.signaling.addEventListener('message', (e) => this.onMessage(e.detail));
    this.signaling.addEventListener('error', (e) => this.onError(e.detail));
    this.signaling.addEventListener('state', (e) => this.onState(e.detail));
    media.addEventListener('track', (e) => {
      const attached = [...this.mesh.links.values()].map((l) => l.attach(e.detail.kind, e.detail.track));
      Promise.all(attached).then(() => this.adaptVideo());
    });
    $('leave').addEventListener('click', () => this.leave());
    this.signaling.start();
  }

  makeLink(id, initiator) {
    const link = new PeerLink({
      id,
      selfId: this.selfId,
      iceServers: this.iceServers,
      send: (data) => this.signaling.signal(id, data),
      media,
      initiator,
    });
    link.addEventListener('track', () => this.grid.setStream(id, link.remoteStream));
    link.addEventListener('state', (e) => {
      if (e.detail.state === 'connected') this.adaptVideo();
    });
    this.grid.setStream(id, link.remoteStream);
    return link;
  }

  /** Fits each video sender's bitrate and the camera's capture size to the number of peers. */
  adaptVideo() {
    const links = [...this.mesh.links.values()];
    const senders = links.flatMap((l) => l.pc.getSenders().filter((s) => s.track?.kind === 'video'));
    applySendPolicy(sendPolicy(links.length), media.track('video'), senders);
  }

  onJoined({ you, token, host, peers, ice_servers: iceServers, resumed }) {
    try { session?.setItem(tokenKey(room), token); } catch { /* private mode */ }
    if (this.selfId && this.selfId !== you) {
      // The server forgot us (it restarted): every link was keyed by ids that are gone.
      this.mesh.closeAll();
      for (const id of [...this.grid.tiles.keys()]) if (id !== 'self') this.grid.remove(id);
      this.peers.clear();
    }
    this.selfId = you;
    this.host = host;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    $('lobby').hidden = true;
    $('meeting').hidden = false;
    this.grid.setStream('self', media.stream);
    this.renderSelf();
    const present = new Set(peers.map((p) => p.id));
    for (const id of this.mesh.ids()) {
      if (!present.has(id)) this.removePeer(id);
    }
    for (const peer of peers) {
      this.peers.set(peer.id, peer);
      this.grid.update(peer.id, peer);
      // On a resume the links that exist are kept: the others kept theirs too.
      if (!(resumed && this.mesh.get(peer.id))) this.mesh.reset(peer.id, true);
    }
    this.renderAlone();
    this.adaptVideo();
  }

  onMessage(msg) {
    switch (msg.type) {
      case 'peer-joined':
        this.peers.set(msg.peer.id, msg.peer);
        this.grid.update(msg.peer.id, msg.peer);
        this.mesh.ensure(msg.peer.id, false);
        this.adaptVideo();
        announce(t('joined', { name: msg.peer.name }));
        break;
      case 'peer-left': {
        const name = this.peers.get(msg.id)?.name ?? '';
        this.removePeer(msg.id);
        announce(t('left', { name }));
        break;
      }
      case 'peer-updated':
        if (msg.peer.id === this.selfId) {
          this.host = msg.peer.host;
          break;
        }
        this.peers.set(msg.peer.id, msg.peer);
        this.grid.update(msg.peer.id, msg.peer);
        break;
      case 'peer-rejoined':
        this.peers.set(msg.peer.id, msg.peer);
        this.grid.update(msg.peer.id, msg.peer);
        // Their page has no connection to us any more: make a fresh one, keep the tile.
        if (msg.reset) this.mesh.reset(msg.peer.id, false);
        break;
      case 'signal': {
        const link = this.mesh.get(msg.from)
          ?? (this.peers.has(msg.from) ? this.mesh.ensure(msg.from, false) : null);
        link?.handle(msg.data);
        break;
      }
      default:
        break;
    }
    this.renderAlone();
  }

  removePeer(id) {
    this.mesh.drop(id);
    this.grid.remove(id);
    this.peers.delete(id);
    this.renderAlone();
    this.adaptVideo();
  }

  onError({ code, message }) {
    const keys = {
      room_full: 'errRoomFull', replaced: 'errReplaced', locked: 'errLocked',
      removed: 'errRemoved', server_busy: 'errServerBusy', bad_password: 'errBadPassword',
    };
    if (code === 'bad_password') {
      this.backToLobby(t('errBadPassword'));
      $('password-field').hidden = false;
      $('password').focus();
    } else if (code === 'server_busy') {
      this.banner(t('errServerBusy'));
    } else if (keys[code]) {
      this.end(t(keys[code]));
    } else {
      console.warn('server error', code, message);
    }
  }

  onState({ state }) {
    if (state === 'reconnecting' && !$('meeting').hidden) this.banner(t('reconnectingBanner'));
    if (state === 'open') this.banner(null);
    if (state === 'ended' && !this.endedWithReason && !$('meeting').hidden) this.end(t('leftTitle'));
  }

  renderSelf() {
    this.grid.update('self', {
      name: this.name, audio: media.isOn('audio'), video: media.isOn('video'), self: true,
    });
  }

  renderAlone() {
    $('alone').hidden = this.peers.size > 0;
    $('alone').textContent = t('alone');
  }

  banner(text) {
    $('banner').hidden = !text;
    $('banner').textContent = text ?? '';
  }

  backToLobby(reason) {
    this.signaling.leave();
    this.mesh.closeAll();
    $('meeting').hidden = true;
    $('lobby').hidden = false;
    $('join').disabled = false;
    $('join').textContent = t('join');
    showError('join-error', reason);
  }

  end(reason) {
    this.endedWithReason = true;
    this.signaling.leave();
    this.mesh.closeAll();
    this.grid.clear();
    media.stopAll();
    $('lobby').hidden = true;
    $('meeting').hidden = true;
    $('ended').hidden = false;
    $('ended-title').textContent = t('leftTitle');
    $('ended-why').textContent = reason === t('leftTitle') ? '' : reason;
    $('rejoin').focus();
  }

  leave() {
    try { session?.removeItem(tokenKey(room)); } catch { /* private mode */ }
    this.end(t('leftTitle'));
  }
}

function showError(id, text) {
  const node = $(id);
  node.hidden = !text;
  node.textContent = text ?? '';
}

function safeStorage(get) {
  try {
    return get();
  } catch {
    return undefined;
  }
}

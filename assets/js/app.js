// The room page: lobby, then the meeting. Wires the signaling, the peer links, the local media and
// the DOM together; each of those knows nothing of the others.

import { EnergyLevel, Level, pickSpeaker } from './audio-level.js';
import { applySendPolicy, sendPolicy } from './bandwidth.js';
import { canPickSpeaker, fillPicker, listDevices } from './devices.js';
import { pickLanguage, translator } from './i18n.js';
import { LocalMedia, mediaErrorKey } from './media.js';
import { Mesh, PeerLink } from './peers.js';
import { loadPrefs, savePrefs, tabIdentity, tokenKey } from './prefs.js';
import { Signaling } from './protocol.js';
import { classifyQuality } from './quality.js';
import { roomFromPath } from './room-name.js';
import { ChatPanel, prepareChat } from './ui/chat.js';
import { announce, applyStrings, setLabel } from './ui/dom.js';
import { Grid } from './ui/tiles.js';

const lang = pickLanguage(navigator.languages);
const t = translator(lang);
document.documentElement.lang = lang;
applyStrings(document, t);

const $ = (id) => document.getElementById(id);
// The server serves this page only for valid names; anything else goes back to the start page.
const room = roomFromPath(location.pathname) ?? '';
if (!room) location.replace('/');
document.title = `${room} · VideoMeet`;
$('join-title').textContent = t('joinTitle', { room });
$('room-label').textContent = room;
for (const button of document.querySelectorAll('.ctl')) setLabel(button, button.querySelector('.label').textContent);
$('leave').title = t('leave');

const store = safeStorage(() => localStorage);
const session = safeStorage(() => sessionStorage);
const prefs = loadPrefs(store);
const client = tabIdentity(session, (bytes) => crypto.getRandomValues(bytes));
const media = new LocalMedia();
media.devices.audio = prefs.audioDevice;
media.devices.video = prefs.videoDevice;
/** What the user wants on; the lobby shows it, Join applies it. */
const want = { audio: prefs.audio, video: prefs.video };
/** The meeting, once Join was pressed. @type {Meeting | null} */
let meeting = null;
let cameraIds = [];

$('name').value = prefs.name;
$('name').addEventListener('change', () => {
  prefs.name = $('name').value.trim().slice(0, 64);
  savePrefs(store, prefs);
});
// Attached only once there is a track: an empty stream would hold the page's load event forever.
media.addEventListener('outgoing', () => {
  if ($('preview').srcObject !== media.stream) $('preview').srcObject = media.stream;
  refreshDevices();
});
media.addEventListener('change', renderDevices);
renderDevices();
refreshDevices();
navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);

for (const [button, kind] of [[$('lobby-mic'), 'audio'], [$('lobby-cam'), 'video'], [$('mic'), 'audio'], [$('cam'), 'video']]) {
  button.addEventListener('click', () => toggle(kind));
}
$('pick-camera').addEventListener('change', () => chooseDevice('video', $('pick-camera').value));
$('pick-mic').addEventListener('change', () => chooseDevice('audio', $('pick-mic').value));
$('pick-speaker').addEventListener('change', () => {
  prefs.speakerDevice = $('pick-speaker').value;
  savePrefs(store, prefs);
  meeting?.grid.setSink(prefs.speakerDevice);
});
// A remembered camera is not started on load (no device access before a click): this click shows it.
$('preview-start').addEventListener('click', () => applyMedia('video', true).then(renderDevices));

// The lobby's level meter: shows the microphone is heard before joining.
const lobbyLevel = new Level(media.stream ?? new MediaStream());
setInterval(() => {
  if (!$('lobby').hidden) $('level-bar').style.width = `${Math.round(lobbyLevel.read() * 100)}%`;
}, 100);

document.addEventListener('keydown', (event) => {
  if ($('meeting').hidden || event.target instanceof HTMLInputElement) return;
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
  const key = event.key.toLowerCase();
  const action = event.shiftKey
    ? { s: () => meeting?.toggleScreen(), h: () => meeting?.toggleHand(), c: () => meeting?.toggleChat() }[key]
    : { d: () => toggle('audio'), e: () => toggle('video') }[key];
  if (action) {
    event.preventDefault();
    action();
  }
});

/** Turns a kind on or off: the first time on asks the browser; after that only `enabled` flips. */
async function toggle(kind) {
  const on = !(meeting?.joined ? media.isOn(kind) : want[kind]);
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
    reportMediaError(err);
  }
}

async function chooseDevice(kind, deviceId) {
  prefs[kind === 'audio' ? 'audioDevice' : 'videoDevice'] = deviceId;
  savePrefs(store, prefs);
  try {
    await media.useDevice(kind, deviceId);
  } catch (err) {
    reportMediaError(err);
  }
}

function reportMediaError(err) {
  console.warn('media failed', err);
  const text = t(mediaErrorKey(err), { message: err?.message ?? String(err) });
  showError('media-error', text);
  if (meeting?.joined) meeting.toast(text);
}

async function refreshDevices() {
  const lists = await listDevices();
  fillPicker($('pick-camera'), lists.videoinput, media.devices.video, t, t('camera'));
  fillPicker($('pick-mic'), lists.audioinput, media.devices.audio, t, t('microphone'));
  const speakers = canPickSpeaker() && lists.audiooutput.length > 0;
  $('pick-speaker').hidden = !speakers;
  $('pick-speaker-label').hidden = !speakers;
  if (speakers) fillPicker($('pick-speaker'), lists.audiooutput, prefs.speakerDevice, t, t('speaker'));
  cameraIds = lists.videoinput.map((d) => d.deviceId);
  // The flip button only where there is a second camera to flip to.
  $('flip').hidden = cameraIds.length < 2;
}

function renderDevices() {
  for (const [kind, buttons] of [['audio', ['lobby-mic', 'mic']], ['video', ['lobby-cam', 'cam']]]) {
    const on = meeting?.joined ? media.isOn(kind) : want[kind];
    for (const id of buttons) {
      const button = $(id);
      // The name says what a press does; data-on only styles it.
      setLabel(button, t(kind === 'audio' ? (on ? 'micOff' : 'micOn') : (on ? 'cameraOff' : 'cameraOn')));
      button.dataset.on = String(on);
    }
  }
  // Remembered "camera on" but not started yet: say it starts on Join, and offer a preview.
  const pending = want.video && !media.isOn('video') && !meeting?.joined;
  $('preview-off').hidden = media.isOn('video');
  $('preview-off-text').textContent = t(pending ? 'previewLater' : 'previewOff');
  $('preview-start').hidden = !pending;
  if (meeting?.joined) meeting.renderSelf();
}

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  if (!name) {
    showError('join-error', t('nameNeeded'));
    $('name').focus();
    return;
  }
  prefs.name = name;
  savePrefs(store, prefs);
  $('join').disabled = true;
  $('join').textContent = t('joining');
  showError('join-error', null);
  // Joining is a click, so this is where remembered choices may ask the browser for devices.
  for (const kind of ['audio', 'video']) {
    if (want[kind] && !media.isOn(kind)) await applyMedia(kind, true);
  }
  if (meeting) meeting.rejoin(name);
  else meeting = new Meeting(name);
});

$('rejoin').addEventListener('click', () => location.reload());
window.addEventListener('online', () => meeting?.signaling.reconnectNow());

class Meeting {
  constructor(name) {
    this.name = name;
    this.selfId = '';
    this.host = false;
    this.hand = false;
    this.joined = false;
    this.unread = 0;
    this.roomInfo = { locked: false, password: false };
    /** @type {Map<string, import('./protocol.js').Peer>} */
    this.peers = new Map();
    /** @type {Map<string, EnergyLevel>} */
    this.levels = new Map();
    this.iceServers = [];
    // `?relay=1`: every call goes through the server's TURN relay, so the others never learn
    // this browser's address (and the self-test can prove the relay works).
    this.relayOnly = new URLSearchParams(location.search).get('relay') === '1';
    this.grid = new Grid($('grid'), t);
    this.grid.setSink(prefs.speakerDevice);
    this.chat = new ChatPanel($('chat-log'));
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
    media.addEventListener('outgoing', (e) => {
      const { kind, track } = e.detail;
      Promise.all([...this.mesh.links.values()].map((l) => l.attach(kind, track)))
        .then(() => this.adaptVideo());
      if (this.joined) {
        this.signaling.update({ screen: media.sharing });
        this.renderSelf();
      }
    });
    $('leave').addEventListener('click', () => this.leave());
    $('screen').addEventListener('click', () => this.toggleScreen());
    $('flip').addEventListener('click', () => media.flipCamera(cameraIds).catch(reportMediaError));
    $('hand').addEventListener('click', () => this.toggleHand());
    $('chat-toggle').addEventListener('click', () => this.toggleChat());
    $('chat-close').addEventListener('click', () => this.toggleChat(false));
    $('invite').addEventListener('click', () => this.copyInvite());
    $('settings').addEventListener('click', () => this.toggleSettings());
    $('host-close').addEventListener('click', () => this.toggleSettings(false));
    $('lock').addEventListener('click', () => this.signaling.send({ type: 'lock', locked: !this.roomInfo.locked }));
    $('password-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const password = $('new-password').value;
      if (password) this.signaling.send({ type: 'set-password', password });
      $('new-password').value = '';
    });
    $('clear-password').addEventListener('click', () => this.signaling.send({ type: 'set-password', password: '' }));
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const text = prepareChat($('chat-input').value);
      if (text && this.signaling.send({ type: 'chat', text })) $('chat-input').value = '';
    });
    this.ticker = setInterval(() => this.tick(), 250);
    this.qualityTicker = setInterval(() => this.sampleQuality(), 3000);
    this.signaling.start();
  }

  rejoin(name) {
    this.name = name;
    this.signaling.start();
  }

  makeLink(id, initiator) {
    const link = new PeerLink({
      id,
      selfId: this.selfId,
      iceServers: this.iceServers,
      relayOnly: this.relayOnly,
      send: (data) => this.signaling.signal(id, data),
      media,
      initiator,
    });
    link.addEventListener('track', () => this.grid.setStream(id, link.remoteStream));
    link.addEventListener('state', (e) => {
      if (e.detail.state === 'connected') this.adaptVideo();
    });
    this.grid.setStream(id, link.remoteStream);
    this.levels.set(id, new EnergyLevel());
    return link;
  }

  /** Fits each video sender's bitrate and the camera's capture size to the number of peers. */
  adaptVideo() {
    const links = [...this.mesh.links.values()];
    const senders = links.flatMap((l) => l.pc.getSenders().filter((s) => s.track?.kind === 'video'));
    applySendPolicy(sendPolicy(links.length), media.track('video'), senders);
  }

  onJoined({ you, token, host, peers, ice_servers: iceServers, resumed, reconnected, locked, password, chat }) {
    try { session?.setItem(tokenKey(room), token); } catch { /* private mode */ }
    if (!resumed) {
      // A new seat (first join, or the server forgot us after a restart): whatever links this
      // page still has belong to seats that are gone; the others start afresh too.
      for (const id of this.mesh.ids()) this.removePeer(id);
      this.peers.clear();
    }
    const wasJoined = this.joined;
    this.joined = true;
    this.selfId = you;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    $('lobby').hidden = true;
    $('ended').hidden = true;
    $('meeting').hidden = false;
    this.grid.setStream('self', media.stream);
    this.setHost(host);
    this.setRoomInfo({ locked, password });
    if (!resumed || !wasJoined) {
      // Chat history comes with every new seat; a resumed seat already has it on screen.
      this.chat.clear();
      for (const line of chat ?? []) this.chat.add(line, line.from === you);
    }
    const present = new Set(peers.map((p) => p.id));
    for (const id of this.mesh.ids()) {
      if (!present.has(id)) this.removePeer(id);
    }
    for (const peer of peers) {
      this.setPeer(peer);
      // On a resumed seat the links that exist are kept: the others kept theirs too.
      if (!(resumed && this.mesh.get(peer.id))) this.mesh.reset(peer.id, true);
    }
    // Tell the others what changed while we were away (screen, hand).
    if (media.sharing || this.hand) this.signaling.update({ screen: media.sharing, hand: this.hand });
    renderDevices();
    this.renderAlone();
    this.adaptVideo();
    if (reconnected) this.toast(t('reconnected'));
  }

  setPeer(peer) {
    const before = this.peers.get(peer.id);
    this.peers.set(peer.id, peer);
    this.grid.update(peer.id, peer);
    this.grid.setRemovable(peer.id, this.host ? () => this.signaling.send({ type: 'remove', id: peer.id }) : null);
    if (peer.hand && !before?.hand) announce(t('handRaised', { name: peer.name }));
  }

  setHost(host) {
    if (host && this.joined && !this.host && this.selfId) announce(t('youAreHost'));
    this.host = host;
    $('settings').hidden = !host;
    if (!host) this.toggleSettings(false);
    for (const peer of this.peers.values()) this.setPeer(peer);
    this.renderSelf();
  }

  setRoomInfo({ locked, password }) {
    this.roomInfo = { locked: Boolean(locked), password: Boolean(password) };
    $('lock').textContent = t(this.roomInfo.locked ? 'unlockRoom' : 'lockRoom');
    $('room-state').textContent = t('roomState', {
      lock: t(this.roomInfo.locked ? 'roomLocked' : 'roomUnlocked'),
      password: t(this.roomInfo.password ? 'roomHasPassword' : 'roomNoPassword'),
    });
  }

  onMessage(msg) {
    switch (msg.type) {
      case 'peer-joined':
        this.setPeer(msg.peer);
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
          this.setHost(msg.peer.host);
          break;
        }
        this.setPeer(msg.peer);
        break;
      case 'peer-rejoined':
        this.setPeer(msg.peer);
        // Their page has no connection to us any more: make a fresh one, keep the tile.
        if (msg.reset) this.mesh.reset(msg.peer.id, false);
        break;
      case 'signal': {
        const link = this.mesh.get(msg.from)
          ?? (this.peers.has(msg.from) ? this.mesh.ensure(msg.from, false) : null);
        link?.handle(msg.data);
        break;
      }
      case 'chat':
        this.chat.add(msg, msg.from === this.selfId);
        if (msg.from !== this.selfId) {
          if ($('chat').hidden) this.setUnread(this.unread + 1);
          announce(t('chatFrom', { name: msg.name, text: msg.text }));
        }
        break;
      case 'room-updated':
        this.setRoomInfo(msg);
        break;
      default:
        break;
    }
    this.renderAlone();
  }

  removePeer(id) {
    this.mesh.drop(id);
    this.grid.remove(id);
    this.peers.delete(id);
    this.levels.delete(id);
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
    } else if (code === 'server_busy' || code === 'rate_limited') {
      // The socket reconnects with backoff by itself; say why it takes a while.
      const why = t(code === 'server_busy' ? 'errServerBusy' : 'errRateLimited');
      if (this.joined) this.banner(why);
      else showError('join-error', why);
    } else if (code === 'not_host') {
      this.setHost(false);
    } else if (keys[code]) {
      if (this.joined) this.end(t(keys[code]));
      else this.backToLobby(t(keys[code]));
    } else {
      console.warn('server error', code, message);
    }
  }

  onState({ state, code }) {
    if (state === 'reconnecting' && this.joined) this.banner(t('reconnectingBanner'));
    // Still in the lobby: the first join has not got through yet (server down or busy).
    if (state === 'reconnecting' && !this.joined && code !== 4003 && code !== 4006) showError('join-error', t('cannotReach'));
    if (state === 'open') {
      this.banner(null);
      showError('join-error', null);
    }
    if (state === 'ended' && this.joined && !this.endedWithReason) this.end(t('leftTitle'));
    // Closed for good before a seat was given, with no error message to explain it.
    if (state === 'ended' && !this.joined && $('join').disabled) {
      this.backToLobby(t('errGeneric', { message: String(code ?? '') }));
    }
  }

  /** Every 250 ms: who is speaking. */
  async tick() {
    if (!this.joined || this.ticking) return;
    this.ticking = true;
    try {
      const levels = new Map();
      await Promise.all([...this.mesh.links].map(async ([id, link]) => {
        const sample = await link.audioEnergy().catch(() => null);
        levels.set(id, this.levels.get(id)?.update(sample) ?? 0);
      }));
      this.grid.setSpeaker(pickSpeaker(levels, this.grid.speaker));
    } finally {
      this.ticking = false;
    }
  }

  async sampleQuality() {
    for (const [id, link] of this.mesh.links) {
      const sample = await link.quality().catch(() => null);
      const level = classifyQuality(sample);
      const label = level ? t(`quality${level[0].toUpperCase()}${level.slice(1)}`) : '';
      const detail = sample && level
        ? t('qualityDetail', { label, rtt: Math.round(sample.rtt), loss: sample.loss.toFixed(1) })
        : '';
      this.grid.setQuality(id, level, detail);
    }
  }

  async toggleScreen() {
    if (media.sharing) {
      media.stopScreen();
    } else {
      try {
        await media.startScreen();
      } catch (err) {
        if (err?.name !== 'NotAllowedError') this.toast(t('screenFailed', { message: err?.message ?? '' }));
      }
    }
    this.renderScreen();
  }

  toggleHand() {
    this.hand = !this.hand;
    this.signaling.update({ hand: this.hand });
    setLabel($('hand'), t(this.hand ? 'lowerHand' : 'raiseHand'));
    $('hand').dataset.on = String(this.hand);
    this.renderSelf();
  }

  toggleChat(open = $('chat').hidden) {
    $('chat').hidden = !open;
    $('chat-toggle').setAttribute('aria-expanded', String(open));
    if (open) {
      this.toggleSettings(false);
      this.setUnread(0);
      $('chat-input').focus();
    } else if (document.activeElement?.closest?.('#chat')) {
      $('chat-toggle').focus();
    }
  }

  toggleSettings(open = $('host-panel').hidden) {
    $('host-panel').hidden = !open;
    $('settings').setAttribute('aria-expanded', String(open));
    if (open) {
      this.toggleChat(false);
      $('lock').focus();
    }
  }

  setUnread(n) {
    this.unread = n;
    $('unread').hidden = n === 0;
    $('unread').textContent = String(n);
  }

  async copyInvite() {
    const url = `${location.origin}/r/${room}`;
    try {
      await navigator.clipboard.writeText(url);
      this.toast(t('inviteCopied'));
    } catch {
      this.toast(t('inviteCopyFailed', { url }));
    }
  }

  toast(text) {
    const node = $('toast');
    node.textContent = text;
    node.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
  }

  renderSelf() {
    if (!this.joined) return;
    this.grid.update('self', {
      name: this.name,
      audio: media.isOn('audio'),
      video: media.isOn('video'),
      screen: media.sharing,
      hand: this.hand,
      host: this.host,
      self: true,
    });
    this.renderScreen();
  }

  renderScreen() {
    setLabel($('screen'), t(media.sharing ? 'stopShare' : 'shareScreen'));
    $('screen').dataset.on = String(media.sharing);
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
    this.joined = false;
    $('meeting').hidden = true;
    $('lobby').hidden = false;
    $('join').disabled = false;
    $('join').textContent = t('join');
    showError('join-error', reason);
    renderDevices();
  }

  end(reason) {
    this.endedWithReason = true;
    this.joined = false;
    clearInterval(this.ticker);
    clearInterval(this.qualityTicker);
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

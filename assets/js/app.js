// The room page: lobby, then the meeting. Wiring only: the socket (protocol.js), what the page
// knows of the meeting (meeting-state.js), the peer links (peers.js), the local media (media.js)
// and the screens (ui/) know nothing of each other; this file connects them. The rules live in
// those modules, where node tests reach them; no element is looked up here.

import { Level } from './audio-level.js';
import { applySendPolicy, sendPolicy } from './bandwidth.js';
import { canPickSpeaker, listDevices } from './devices.js';
import { pickLanguage, translator } from './i18n.js';
import { LocalMedia, mediaErrorKey } from './media.js';
import { MeetingState, connectionOutcome, errorOutcome } from './meeting-state.js';
import { Mesh, PeerLink } from './peers.js';
import { loadPrefs, savePrefs, tabIdentity, tokenKey } from './prefs.js';
import { Signaling } from './protocol.js';
import { classifyQuality } from './quality.js';
import { roomFromPath } from './room-name.js';
import { ChatView } from './ui/chat.js';
import { Controls } from './ui/controls.js';
import { announce, applyStrings } from './ui/dom.js';
import { HostPanel } from './ui/host-panel.js';
import { Lobby } from './ui/lobby.js';
import { Screens } from './ui/screens.js';
import { Grid } from './ui/tiles.js';

/**
 * @typedef {import('./meeting-state.js').Notice} Notice
 * @typedef {'audio' | 'video'} Kind
 */

const lang = pickLanguage(navigator.languages);
const t = translator(lang);
document.documentElement.lang = lang;
applyStrings(document, t);

// The server serves this page only for valid names; anything else goes back to the start page.
const room = roomFromPath(location.pathname) ?? '';
if (!room) location.replace('/');
document.title = `${room} · VideoMeet`;

const screens = new Screens(t);
const lobby = new Lobby(t, room);
const controls = new Controls(t, room);
const chatView = new ChatView();
const hostPanel = new HostPanel(t);

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
/** @type {string[]} */
let cameraIds = [];

lobby.name = prefs.name;
lobby.onNameChange((name) => {
  prefs.name = name.trim().slice(0, 64);
  savePrefs(store, prefs);
});
media.addEventListener('outgoing', () => {
  if (media.stream) lobby.showPreview(media.stream);
  refreshDevices();
});
media.addEventListener('change', renderDevices);
renderDevices();
refreshDevices();
navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);

lobby.onToggle(toggle);
lobby.onPickDevice(chooseDevice);
lobby.onPickSpeaker((deviceId) => {
  prefs.speakerDevice = deviceId;
  savePrefs(store, prefs);
  meeting?.grid.setSink(deviceId);
});
// A remembered camera is not started on load (no device access before a click): this click shows it.
lobby.onPreviewStart(() => applyMedia('video', true).then(renderDevices));

// The lobby's level meter: shows the microphone is heard before joining.
const lobbyLevel = new Level(media.stream ?? new MediaStream());
setInterval(() => {
  if (screens.is('lobby')) lobby.showLevel(lobbyLevel.read());
}, 100);

controls.bind({
  mic: () => toggle('audio'),
  cam: () => toggle('video'),
  flip: () => { media.flipCamera(cameraIds).catch(reportMediaError); },
  screen: () => meeting?.toggleScreen(),
  hand: () => meeting?.toggleHand(),
  chat: () => meeting?.toggleChat(),
  leave: () => meeting?.leave(),
  invite: () => meeting?.copyInvite(),
}, () => screens.is('meeting'));
chatView.bind({
  toggle: () => meeting?.toggleChat(),
  close: () => meeting?.toggleChat(false),
  send: (text) => meeting?.signaling.chat(text) ?? false,
});
hostPanel.bind({
  toggle: () => meeting?.toggleSettings(),
  close: () => meeting?.toggleSettings(false),
  lock: () => meeting?.signaling.lock(!meeting.state.room.locked),
  setPassword: (password) => meeting?.signaling.setPassword(password),
});

/**
 * Turns a kind on or off: the first time on asks the browser; after that only `enabled` flips.
 * @param {Kind} kind
 */
async function toggle(kind) {
  const on = !(meeting?.state.joined ? media.isOn(kind) : want[kind]);
  await applyMedia(kind, on);
  want[kind] = media.isOn(kind);
  prefs[kind] = want[kind];
  savePrefs(store, prefs);
  meeting?.signaling.update({ [kind]: media.isOn(kind) });
  renderDevices();
}

/** @param {Kind} kind @param {boolean} on */
async function applyMedia(kind, on) {
  try {
    await media.set(kind, on);
    lobby.showError('media', null);
  } catch (err) {
    reportMediaError(err);
  }
}

/** @param {Kind} kind @param {string} deviceId */
async function chooseDevice(kind, deviceId) {
  prefs[kind === 'audio' ? 'audioDevice' : 'videoDevice'] = deviceId;
  savePrefs(store, prefs);
  try {
    await media.useDevice(kind, deviceId);
  } catch (err) {
    reportMediaError(err);
  }
}

/** @param {any} err */
function reportMediaError(err) {
  console.warn('media failed', err);
  const text = t(mediaErrorKey(err), { message: err?.message ?? String(err) });
  lobby.showError('media', text);
  if (meeting?.state.joined) meeting.toast(text);
}

async function refreshDevices() {
  const lists = await listDevices();
  lobby.fillPickers(lists, { ...media.devices, speaker: prefs.speakerDevice }, canPickSpeaker());
  cameraIds = lists.videoinput.map((d) => d.deviceId);
  controls.showFlip(cameraIds.length);
}

function renderDevices() {
  const joined = Boolean(meeting?.state.joined);
  const on = {
    audio: joined ? media.isOn('audio') : want.audio,
    video: joined ? media.isOn('video') : want.video,
  };
  lobby.renderToggles(on);
  controls.renderToggles(on);
  // Remembered "camera on" but not started yet: say it starts on Join, and offer a preview.
  lobby.renderPreview({ videoOn: media.isOn('video'), pending: want.video && !media.isOn('video') && !joined });
  if (joined) meeting?.renderSelf();
}

lobby.onJoin(async (name) => {
  if (!name) {
    lobby.showError('join', t('nameNeeded'));
    lobby.focusName();
    return;
  }
  prefs.name = name;
  savePrefs(store, prefs);
  lobby.setJoining(true);
  lobby.showError('join', null);
  // Joining is a click, so this is where remembered choices may ask the browser for devices.
  for (const kind of /** @type {Kind[]} */ (['audio', 'video'])) {
    if (want[kind] && !media.isOn(kind)) await applyMedia(kind, true);
  }
  if (meeting) meeting.rejoin(name);
  else meeting = new Meeting(name);
});

screens.onRejoin(() => location.reload());
window.addEventListener('online', () => meeting?.signaling.reconnectNow());

class Meeting {
  /** @param {string} name */
  constructor(name) {
    this.state = new MeetingState();
    this.state.name = name;
    this.state.waitingForSeat = true;
    // `?relay=1`: every call goes through the server's TURN relay, so the others never learn
    // this browser's address (and the self-test can prove the relay works).
    this.relayOnly = new URLSearchParams(location.search).get('relay') === '1';
    this.grid = Grid.onPage(t);
    this.grid.setSink(prefs.speakerDevice);
    this.mesh = new Mesh((id, initiator) => this.makeLink(id, initiator));
    this.ticking = false;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.signaling = new Signaling({
      url: `${scheme}//${location.host}/ws/${encodeURIComponent(room)}`,
      join: () => ({
        name: this.state.name,
        client,
        password: lobby.password,
        audio: media.isOn('audio'),
        video: media.isOn('video'),
      }),
    });
    this.signaling.token = session?.getItem(tokenKey(room)) ?? null;
    this.signaling.addEventListener('joined', (e) => this.onJoined(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('message', (e) => this.onMessage(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('error', (e) => this.onError(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('state', (e) => this.onState(/** @type {CustomEvent} */ (e).detail));
    media.addEventListener('outgoing', (e) => {
      const { kind, track } = /** @type {CustomEvent} */ (e).detail;
      Promise.all([...this.mesh.links.values()].map((l) => l.attach(kind, track)))
        .then(() => this.adaptVideo());
      if (this.state.joined) {
        this.signaling.update({ screen: media.sharing });
        this.renderSelf();
      }
    });
    this.ticker = setInterval(() => this.tick(), 250);
    this.qualityTicker = setInterval(() => this.sampleQuality(), 3000);
    this.signaling.start();
  }

  /** @param {string} name */
  rejoin(name) {
    this.state.name = name;
    this.state.waitingForSeat = true;
    this.signaling.start();
  }

  /** @param {string} id @param {boolean} initiator */
  makeLink(id, initiator) {
    const link = new PeerLink({
      id,
      selfId: this.state.selfId,
      iceServers: this.state.iceServers,
      relayOnly: this.relayOnly,
      send: (data) => this.signaling.signal(id, data),
      media,
      initiator,
    });
    link.addEventListener('track', () => this.grid.setStream(id, link.remoteStream));
    link.addEventListener('state', (e) => {
      if (/** @type {CustomEvent} */ (e).detail.state === 'connected') this.adaptVideo();
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

  /** @param {import('./meeting-state.js').Joined} msg */
  onJoined(msg) {
    try { session?.setItem(tokenKey(room), msg.token); } catch { /* private mode */ }
    const notices = this.state.applyJoined(msg, { screen: media.sharing });
    screens.show('meeting');
    this.grid.setStream('self', media.stream ?? new MediaStream());
    this.run(notices);
    renderDevices();
    // The camera's capture size too, even with nobody to send to yet.
    this.adaptVideo();
  }

  /** @param {{ type: string, [field: string]: any }} msg */
  onMessage(msg) {
    if (msg.type === 'signal') {
      const link = this.mesh.get(msg.from)
        ?? (this.state.peers.has(msg.from) ? this.mesh.ensure(msg.from, false) : null);
      link?.handle(msg.data);
      return;
    }
    this.run(this.state.apply(msg));
  }

  /** Acts on what the meeting state says changed, in its order. @param {Notice[]} notices */
  run(notices) {
    let links = false;
    for (const notice of notices) {
      switch (notice.type) {
        case 'peer': {
          const { id } = notice.peer;
          this.grid.update(id, notice.peer);
          this.grid.setRemovable(id, this.state.host ? () => this.signaling.remove(id) : null);
          break;
        }
        case 'peer-gone':
          this.mesh.drop(notice.id);
          this.grid.remove(notice.id);
          links = true;
          break;
        case 'connect':
          if (notice.fresh) this.mesh.reset(notice.id, notice.initiator);
          else this.mesh.ensure(notice.id, notice.initiator);
          links = true;
          break;
        case 'host':
          hostPanel.setHost(notice.host);
          if (!notice.host) this.toggleSettings(false);
          break;
        case 'room':
          hostPanel.render(notice);
          break;
        case 'self':
          this.renderSelf();
          break;
        case 'chat-reset':
          chatView.panel.clear();
          break;
        case 'chat-line':
          chatView.panel.add(notice.line, notice.mine);
          break;
        case 'unread':
          chatView.setUnread(notice.count);
          break;
        case 'announce':
          announce(t(notice.key, notice.vars));
          break;
        case 'toast':
          this.toast(t(notice.key, notice.vars));
          break;
        case 'send-update':
          this.signaling.update(notice.state);
          break;
        default:
          break;
      }
    }
    this.renderAlone();
    // Fewer or more peers: fit every sender's bitrate again.
    if (links) this.adaptVideo();
  }

  /** @param {{ code: string, message?: string }} error */
  onError({ code, message }) {
    const outcome = errorOutcome(code, this.state.joined);
    const text = outcome.key ? t(outcome.key) : '';
    switch (outcome.do) {
      case 'ask-password':
        this.backToLobby(text);
        lobby.askPassword();
        break;
      case 'banner':
        screens.banner(text);
        break;
      case 'join-error':
        lobby.showError('join', text);
        break;
      case 'not-host':
        this.run(this.state.loseHost());
        break;
      case 'end':
        this.end(text);
        break;
      case 'lobby':
        this.backToLobby(text);
        break;
      default:
        console.warn('server error', code, message);
    }
  }

  /** @param {{ state: string, code?: number }} change */
  onState(change) {
    const outcome = connectionOutcome(change, this.state);
    const text = outcome.key ? t(outcome.key, outcome.vars) : '';
    switch (outcome.do) {
      case 'banner':
        screens.banner(text);
        break;
      case 'join-error':
        lobby.showError('join', text);
        break;
      case 'clear':
        screens.banner(null);
        lobby.showError('join', null);
        break;
      case 'end':
        this.end(text);
        break;
      case 'lobby':
        this.backToLobby(text);
        break;
      default:
        break;
    }
  }

  /** Every 250 ms: who is speaking. */
  async tick() {
    if (!this.state.joined || this.ticking) return;
    this.ticking = true;
    try {
      /** @type {Map<string, { energy: number, duration: number } | null>} */
      const samples = new Map();
      await Promise.all([...this.mesh.links].map(async ([id, link]) => {
        samples.set(id, await link.audioEnergy().catch(() => null));
      }));
      this.grid.setSpeaker(this.state.hear(samples));
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
        if (/** @type {any} */ (err)?.name !== 'NotAllowedError') this.toast(t('screenFailed', { message: /** @type {any} */ (err)?.message ?? '' }));
      }
    }
    this.renderScreen();
  }

  toggleHand() {
    this.run(this.state.toggleHand());
    controls.renderHand(this.state.hand);
  }

  /** @param {boolean} [open] toggles when not given */
  toggleChat(open = !chatView.isOpen) {
    if (open) this.toggleSettings(false);
    this.run(this.state.setChatOpen(open));
    chatView.setOpen(open);
  }

  /** @param {boolean} [open] toggles when not given */
  toggleSettings(open = !hostPanel.isOpen) {
    if (open) this.toggleChat(false);
    hostPanel.setOpen(open);
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

  /** @param {string} text */
  toast(text) {
    screens.toast(text);
  }

  renderSelf() {
    if (!this.state.joined) return;
    this.grid.update('self', this.state.selfView({
      audio: media.isOn('audio'),
      video: media.isOn('video'),
      screen: media.sharing,
    }));
    this.renderScreen();
  }

  renderScreen() {
    controls.renderScreen(media.sharing);
  }

  renderAlone() {
    screens.renderAlone(this.state.alone);
  }

  /** The join was refused: back to the lobby, saying why. @param {string} reason */
  backToLobby(reason) {
    this.signaling.leave();
    this.mesh.closeAll();
    this.state.leaveSeat();
    screens.show('lobby');
    lobby.setJoining(false);
    lobby.showError('join', reason);
    renderDevices();
  }

  /** The meeting is over for this page. @param {string} reason */
  end(reason) {
    this.state.end();
    clearInterval(this.ticker);
    clearInterval(this.qualityTicker);
    this.signaling.leave();
    this.mesh.closeAll();
    this.grid.clear();
    media.stopAll();
    screens.showEnded(t('leftTitle'), reason === t('leftTitle') ? '' : reason);
  }

  leave() {
    try { session?.removeItem(tokenKey(room)); } catch { /* private mode */ }
    this.end(t('leftTitle'));
  }
}

/**
 * @template T
 * @param {() => T} get
 * @returns {T | undefined}
 */
function safeStorage(get) {
  try {
    return get();
  } catch {
    return undefined;
  }
}

// The room page: lobby, then the meeting. Wiring only: the socket (protocol.js), what the page
// knows of the meeting (meeting-state.js), the peer links (peers.js), the local media (media.js)
// and the screens (ui/) know nothing of each other; this file connects them. The rules live in
// those modules, where node tests reach them; no element is looked up here.

import { LinkAdapter, SUGGEST_AFTER_MS, ownQuality, wantedFrom } from './adapt.js';
import { Level } from './audio-level.js';
import { applySendPolicy, sendPolicy } from './bandwidth.js';
import { loadCertificate } from './certificate.js';
import { canPickSpeaker, listDevices } from './devices.js';
import { FileShare, RELAYED_BYTES_PER_SEC } from './files.js';
import { pickLanguage, translator } from './i18n.js';
import { registerShell } from './install.js';
import { LocalMedia, mediaErrorKey } from './media.js';
import { MeetingState, connectionOutcome, errorOutcome } from './meeting-state.js';
import { Mesh, PeerLink } from './peers.js';
import { loadPrefs, savePrefs, tabIdentity, tokenKey } from './prefs.js';
import { PeerMsg, RoomPayload, Signaling } from './protocol.js';
import { REACTION_MS, ReactionLimiter } from './reactions.js';
import { MeetingRecorder, RecordingFlow, chooseRecordingSink, memoryRecordingSink, recordingType } from './recorder.js';
import { roomFromPath } from './room-name.js';
import { VerifiedPeers, pairCode, roomCode } from './safety-code.js';
import { ChatView } from './ui/chat.js';
import { FilesView, canStreamToDisk } from './ui/files.js';
import { Controls } from './ui/controls.js';
import { announce, applyStrings } from './ui/dom.js';
import { HostPanel } from './ui/host-panel.js';
import { KnockList } from './ui/knocks.js';
import { Lobby } from './ui/lobby.js';
import { PictureInPicture, pipKind } from './ui/pip.js';
import { RecordingView } from './ui/recording.js';
import { Screens } from './ui/screens.js';
import { Grid } from './ui/tiles.js';
import { VerifyView } from './ui/verify.js';

/**
 * @typedef {import('./meeting-state.js').Notice} Notice
 * @typedef {'audio' | 'video'} Kind
 */

const lang = pickLanguage(navigator.languages);
const t = translator(lang);
document.documentElement.lang = lang;
applyStrings(document, t);
// The app installs from a room's link too (the worker keeps only the start page's shell).
registerShell();

// The server serves this page only for valid names; anything else goes back to the start page.
const room = roomFromPath(location.pathname) ?? '';
if (!room) location.replace('/');
document.title = `${room} · VideoMeet`;

const screens = new Screens(t);
const lobby = new Lobby(t, room);
const controls = new Controls(t, room);
const chatView = new ChatView(t);
const hostPanel = new HostPanel(t);
const knockList = new KnockList(t);
const verifyView = new VerifyView(t);
const recordingView = new RecordingView(t);
recordingView.bind({ toggle: () => meeting?.toggleRecording() });

const store = safeStorage(() => localStorage);
const session = safeStorage(() => sessionStorage);
const prefs = loadPrefs(store);
const client = tabIdentity(session, (bytes) => crypto.getRandomValues(bytes));
const media = new LocalMedia();
/** This browser's DTLS certificate, the same on every link and kept between calls (certificate.js). */
const certificates = loadCertificate();
media.devices.audio = prefs.audioDevice;
media.devices.video = prefs.videoDevice;
media.processing = {
  noiseSuppression: prefs.noiseSuppression,
  echoCancellation: prefs.echoCancellation,
  autoGainControl: prefs.autoGainControl,
};
/**
 * `?adapt=0`: a test and benchmark switch (bench/shaped/) that turns the per-peer adaptation of
 * adapt.js off and sends by room size only, so a run can compare the two.
 */
const adaptOn = new URLSearchParams(location.search).get('adapt') !== '0';
/** What the user wants on; the lobby shows it, Join applies it. */
const want = { audio: prefs.audio, video: prefs.video };
/** The meeting, once Join was pressed. @type {Meeting | null} */
let meeting = null;
/** @type {string[]} */
let cameraIds = [];

// Over plain HTTP the camera is refused (HTTPS and localhost only): say so, with a link. With
// HTTPS on, the server redirects such visits itself, except behind a proxy (README).
if (!window.isSecureContext) lobby.showInsecure(`https://${location.host.replace(/:\d+$/, '')}${location.pathname}${location.search}`);
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
lobby.renderProcessing(media.processing);
lobby.onProcessing((processing) => {
  Object.assign(prefs, processing);
  savePrefs(store, prefs);
  media.setProcessing(processing).catch(reportMediaError);
});
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
  audioOnly: () => meeting?.setAudioOnly(!prefs.audioOnly),
  react: (emoji) => meeting?.react(emoji),
  pip: () => meeting?.togglePip(),
}, () => screens.is('meeting'));
controls.renderAudioOnly(prefs.audioOnly);
chatView.bind({
  toggle: () => meeting?.toggleChat(),
  close: () => meeting?.toggleChat(false),
  send: (text) => meeting?.signaling.chat(text) ?? false,
});
verifyView.bind({
  close: () => meeting?.openVerify(null),
  mark: (verified) => meeting?.markVerified(verified),
});
hostPanel.bind({
  toggle: () => meeting?.toggleSettings(),
  close: () => meeting?.toggleSettings(false),
  lock: () => meeting?.signaling.lock(!meeting.state.room.locked),
  setPassword: (password) => meeting?.signaling.setPassword(password),
  askToJoin: (on) => meeting?.signaling.askToJoin(on),
  allowRecording: (allowed) => meeting?.signaling.allowRecording(allowed),
});
knockList.bind({
  admit: (id) => meeting?.signaling.admit(id),
  deny: (id) => meeting?.signaling.deny(id),
});
lobby.onStopWaiting(() => meeting?.stopWaiting());

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
  meeting?.signaling.update({ [kind]: kind === 'video' ? meeting.sendsVideo() : media.isOn(kind) });
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
// Closing the tab would lose a recording kept in memory, or a file half sent or received.
window.addEventListener('beforeunload', (event) => {
  const busy = meeting && (meeting.recording.phase !== 'idle' || meeting.files.busy);
  if (!busy && !recordingView.unsaved) return;
  event.preventDefault();
  event.returnValue = '';
});
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
    this.pip = new PictureInPicture(this.grid, pipKind(window));
    this.pip.addEventListener('change', () => controls.renderPip(Boolean(this.pip.kind), this.pip.open));
    controls.renderPip(Boolean(this.pip.kind), false);
    this.reactions = new ReactionLimiter();
    this.mesh = new Mesh((id, initiator) => this.makeLink(id, initiator));
    this.files = new FileShare();
    this.filesView = new FilesView(t, lang, (id) => this.state.peers.get(id)?.name ?? '');
    this.filesView.bind({
      files: (files, to) => this.sendFiles(files, to),
      active: () => screens.is('meeting') && this.state.joined,
    });
    for (const type of ['offer', 'transfer']) {
      this.files.addEventListener(type, (e) => {
        const { transfer, link } = /** @type {CustomEvent} */ (e).detail;
        this.filesView.show(transfer, link);
      });
    }
    this.ticking = false;
    /** The host just pressed Remove (a removal turns "Ask to join" on: say so). */
    this.removing = false;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.signaling = new Signaling({
      url: `${scheme}//${location.host}/ws/${encodeURIComponent(room)}`,
      join: () => ({
        name: this.state.name,
        client,
        password: lobby.password,
        audio: media.isOn('audio'),
        video: this.sendsVideo(),
      }),
    });
    this.signaling.token = session?.getItem(tokenKey(room)) ?? null;
    this.signaling.addEventListener('joined', (e) => this.onJoined(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('knocking', () => this.onKnocking());
    this.signaling.addEventListener('message', (e) => this.onMessage(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('error', (e) => this.onError(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('state', (e) => this.onState(/** @type {CustomEvent} */ (e).detail));
    media.addEventListener('outgoing', (e) => {
      const { kind, track, waitUntil } = /** @type {CustomEvent} */ (e).detail;
      // The old track stops only once this is done on every link (media.js).
      const replaced = Promise.all([...this.mesh.links.values()].map((l) => l.attach(kind, track)));
      waitUntil(replaced);
      replaced.then(() => this.adaptVideo());
      if (this.state.joined) {
        this.signaling.update({ screen: media.sharing });
        this.renderSelf();
      }
    });
    this.adapt = adaptOn;
    /** The send policy and quality of each link, by peer id. @type {Map<string, LinkAdapter>} */
    this.adapters = new Map();
    /** What video each peer was last asked for (a fresh link starts at 'full'). @type {Map<string, string>} */
    this.wantedSent = new Map();
    /** The level last shown per tile ('self' too), to announce only changes. @type {Map<string, string>} */
    this.levels = new Map();
    /** @type {'good' | 'fair' | 'poor' | null} */
    this.ownLevel = null;
    /** @type {number | null} */
    this.ownPoorSince = null;
    this.suggested = false;
    this.sampling = false;
    this.grid.setAudioOnly(prefs.audioOnly);
    this.grid.onShownChange(() => this.sendWanted());
    document.addEventListener('visibilitychange', () => this.sendWanted());
    /** This page's recording: the protocol (recorder.js), the recorder, where it writes. */
    this.recording = new RecordingFlow();
    /** @type {MeetingRecorder | null} */
    this.recorder = null;
    /** @type {import('./recorder.js').RecordingSink | null} */
    this.recordingSink = null;
    /** The sink of the next recording is being made (the picker, the private file system). */
    this.choosingSink = false;
    this.recordingName = '';
    /** Who this browser verified in this room. */
    this.verified = new VerifiedPeers(store, room);
    /** Each link's fingerprints, code and trust, by peer id. @type {Map<string, { local: string, remote: string, code: string, trust: import('./safety-code.js').Trust }>} */
    this.codes = new Map();
    /** @type {string | null} */
    this.roomCode = null;
    /** @type {RTCCertificate[] | undefined} */
    this.certificates = undefined;
    this.ticker = setInterval(() => this.tick(), 250);
    this.sampleTicker = setInterval(() => this.sampleLinks(), 1000);
    // The certificate first: every link is made with it.
    certificates.then((c) => {
      this.certificates = c;
      this.signaling.start();
    });
  }

  /** Whether this page sends video: the camera (or screen) is on and Audio only is not. */
  sendsVideo() {
    return (media.isOn('video') || media.sharing) && !prefs.audioOnly;
  }

  /** @param {string} id */
  adapterFor(id) {
    let adapter = this.adapters.get(id);
    if (!adapter) {
      adapter = new LinkAdapter({ ceiling: sendPolicy(Math.max(1, this.mesh.links.size)) });
      this.adapters.set(id, adapter);
    }
    return adapter;
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
      redundantAudio: this.adapt,
      certificates: this.certificates,
    });
    // A new link is a new adapter on both sides: start from the top, as the peer does.
    this.adapters.delete(id);
    this.wantedSent.delete(id);
    this.grid.setVideoPaused(id, false);
    link.addEventListener('track', () => this.grid.setStream(id, link.remoteStream));
    link.addEventListener('state', (e) => {
      if (/** @type {CustomEvent} */ (e).detail.state !== 'connected') return;
      if (this.adapt) link.preferAudio();
      this.adaptVideo();
      this.wantedSent.delete(id);
      this.sendWanted();
    });
    link.addEventListener('peer-msg', (e) => this.onPeerMsg(id, /** @type {CustomEvent} */ (e).detail));
    link.addEventListener('descriptions', () => this.updateCode(id, link));
    this.codes.delete(id);
    // The offering side's channel exists already; the answering side's comes with the offer.
    // Over the relay a file leaves room for the call (files.js, RELAYED_BYTES_PER_SEC).
    const pace = () => (link.relayed ? RELAYED_BYTES_PER_SEC : null);
    if (link.channel) this.files.attach(id, link.channel, pace);
    link.addEventListener('channel', (e) => this.files.attach(id, /** @type {CustomEvent} */ (e).detail.channel, pace));
    this.grid.setStream(id, link.remoteStream);
    return link;
  }

  /**
   * A link applied its descriptions: its safety code, and whether it is the one verified before.
   * @param {string} id
   * @param {PeerLink} link
   */
  async updateCode(id, link) {
    const fingerprints = link.fingerprints;
    if (!fingerprints || this.mesh.get(id) !== link) return;
    const code = await pairCode(fingerprints.local, fingerprints.remote);
    const name = this.state.peers.get(id)?.name ?? '';
    const trust = this.verified.trust(name, fingerprints.remote);
    const before = this.codes.get(id);
    this.codes.set(id, { ...fingerprints, code, trust });
    if (trust === 'changed' && before?.trust !== 'changed') this.toast(t('codeChanged', { name }));
    this.renderTrust(id);
    await this.updateRoomCode();
  }

  /** The room code, once every link has its keys (and all of this page's are one certificate). */
  async updateRoomCode() {
    const ids = this.mesh.ids();
    const codes = ids.map((id) => this.codes.get(id));
    const locals = new Set(codes.map((c) => c?.local));
    this.roomCode = codes.every(Boolean) && locals.size <= 1 && this.state.selfId
      ? await roomCode(/** @type {string[]} */ ([...locals, ...codes.map((c) => c?.remote)].filter(Boolean)))
      : null;
    this.renderVerify();
  }

  /** @param {string} id */
  renderTrust(id) {
    const trust = this.codes.get(id)?.trust ?? 'unverified';
    this.grid.setTrust(id, trust === 'unverified' ? null : { kind: trust, label: t(trust === 'verified' ? 'verifiedBadge' : 'codeChangedBadge') });
    this.renderVerify();
  }

  /** Opens the Verify panel for a peer (null closes it). @param {string | null} id */
  openVerify(id) {
    if (id !== null) {
      this.toggleChat(false);
      this.toggleSettings(false);
    }
    verifyView.open(id);
    this.renderVerify();
  }

  renderVerify() {
    const id = verifyView.peer;
    if (id === null) return;
    const peer = this.state.peers.get(id);
    if (!peer) {
      verifyView.open(null);
      return;
    }
    const code = this.codes.get(id);
    verifyView.render({
      name: peer.name,
      code: code?.code ?? null,
      trust: code?.trust ?? 'unverified',
      roomCode: this.roomCode,
      connected: this.mesh.get(id)?.connectionState === 'connected',
    });
  }

  /** The person compared the code (or takes it back). @param {boolean} verified */
  markVerified(verified) {
    const id = verifyView.peer;
    const code = id === null ? undefined : this.codes.get(id);
    const name = id === null ? undefined : this.state.peers.get(id)?.name;
    if (id === null || !code || !name) return;
    if (verified) this.verified.mark(name, code.remote);
    else this.verified.forget(name);
    code.trust = this.verified.trust(name, code.remote);
    this.renderTrust(id);
  }

  /**
   * Files chosen or dropped: offered to one peer, or to everyone in the room.
   * @param {File[]} files
   * @param {string | null} to
   */
  sendFiles(files, to) {
    const peers = to ? [to] : this.mesh.ids();
    if (peers.length === 0) {
      this.filesView.nobody();
      return;
    }
    /** @type {Set<string>} */
    const unreachable = new Set();
    for (const file of files) {
      for (const id of this.files.send(file, peers)) unreachable.add(id);
    }
    this.filesView.unreachable([...unreachable]);
  }

  /**
   * A peer payload: what video the peer wants from me, or that it paused its video to me.
   * @param {string} id
   * @param {NonNullable<ReturnType<typeof import('./protocol.js').parsePeerMsg>>} msg
   */
  onPeerMsg(id, msg) {
    if (msg.kind === 'video-wanted') {
      this.adapterFor(id).setWanted(msg.wanted);
      this.applyVideo(id);
    } else if (msg.kind === 'video-paused') {
      this.grid.setVideoPaused(id, msg.paused);
      const name = this.state.peers.get(id)?.name ?? '';
      announce(t(msg.paused ? 'videoPausedFor' : 'videoResumedFor', { name }));
    }
  }

  /**
   * Fits the camera's capture size to the number of peers (bandwidth.js), then each link's video
   * sender: with the adaptation, to what that link carries and its peer wants (adapt.js); without
   * it, to the room size alone.
   */
  adaptVideo() {
    const links = [...this.mesh.links.values()];
    const policy = sendPolicy(links.length);
    if (!this.adapt) {
      const senders = links.flatMap((l) => l.pc.getSenders().filter((s) => s.track?.kind === 'video'));
      applySendPolicy(policy, media.track('video'), senders).then(() => {
        for (const id of this.mesh.ids()) this.applyVideo(id);
      });
      return;
    }
    applySendPolicy(policy, media.track('video'), []);
    for (const id of this.mesh.ids()) {
      this.adapterFor(id).setCeiling(policy);
      this.applyVideo(id);
    }
  }

  /** Puts the video encoding this link should carry on its sender. @param {string} id */
  applyVideo(id) {
    const link = this.mesh.get(id);
    if (!link) return;
    const adapter = this.adapterFor(id);
    if (!this.adapt) {
      const active = !prefs.audioOnly && adapter.wanted !== 'none';
      link.setEncodings('video', (e) => { e.active = active; });
      return;
    }
    const encoding = adapter.encoding(media.outgoing('video')?.getSettings?.().height);
    if (prefs.audioOnly) encoding.active = false;
    link.setVideo(encoding);
  }

  /** Asks each peer for the video this page will show (only what changed is sent). */
  sendWanted() {
    if (!this.state.joined) return;
    for (const id of this.mesh.ids()) {
      const wanted = this.adapt
        ? wantedFrom({
          audioOnly: prefs.audioOnly,
          pageHidden: document.visibilityState === 'hidden',
          tileShown: this.grid.isShown(id),
          ownPoor: this.ownLevel === 'poor',
          speaker: this.state.speaker,
          peer: id,
        })
        : (prefs.audioOnly ? 'none' : 'full');
      if ((this.wantedSent.get(id) ?? 'full') === wanted) continue;
      this.wantedSent.set(id, wanted);
      this.signaling.signal(id, PeerMsg.videoWanted(wanted));
    }
  }

  /** The Audio only toggle: no video out, and every peer asked to send none. @param {boolean} on */
  setAudioOnly(on) {
    prefs.audioOnly = on;
    savePrefs(store, prefs);
    controls.renderAudioOnly(on);
    this.grid.setAudioOnly(on);
    announce(t(on ? 'audioOnlyOn' : 'audioOnlyOff'));
    for (const id of this.mesh.ids()) this.applyVideo(id);
    this.sendWanted();
    this.signaling.update({ video: this.sendsVideo() });
  }

  /** The room asks to join: wait in the lobby, preview and all, until the host decides. */
  onKnocking() {
    this.state.knock();
    lobby.setWaiting(true);
  }

  /** "Stop waiting": the knock is withdrawn, the lobby is as before Join. */
  stopWaiting() {
    this.signaling.leave();
    this.state.leaveSeat();
    lobby.setWaiting(false);
    lobby.setJoining(false);
  }

  /** @param {import('./meeting-state.js').Joined} msg */
  onJoined(msg) {
    lobby.setWaiting(false);
    try { session?.setItem(tokenKey(room), msg.token); } catch { /* private mode */ }
    const notices = this.state.applyJoined(msg, { screen: media.sharing });
    screens.show('meeting');
    this.grid.setStream('self', media.stream ?? new MediaStream());
    this.run(notices);
    renderDevices();
    // The camera's capture size too, even with nobody to send to yet.
    this.adaptVideo();
    // Back on a new socket while recording: say so again (and learn if it is still allowed).
    if (msg.reconnected) this.runRecording(this.recording.reconnected());
  }

  /** Start or Stop recording. */
  async toggleRecording() {
    if (this.recording.active) {
      this.runRecording(this.recording.stop());
      return;
    }
    // A second click while the file is being made would make a second one.
    if (this.recording.phase !== 'idle' || this.choosingSink) return;
    if (recordingType() === null) {
      this.toast(t('recordingUnsupported'));
      return;
    }
    const allowed = this.state.room.recordingAllowed;
    const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ').replace(':', '-');
    this.recordingName = `${room} ${stamp}.webm`;
    this.choosingSink = true;
    try {
      const writable = allowed ? await this.pickRecordingFile() : null;
      if (writable === 'cancelled') return;
      // Refused anyway (the flow says so): nothing is written, so nothing is made on disk.
      this.recordingSink = allowed ? await chooseRecordingSink(writable, navigator) : memoryRecordingSink();
    } finally {
      this.choosingSink = false;
    }
    this.runRecording(this.recording.start(allowed));
  }

  /**
   * Where the browser offers the save picker, asks where first: the click allows the picker,
   * and the file is the person's from the first chunk on.
   * @returns {Promise<any | null | 'cancelled'>} its writable; null without a picker or a file
   */
  async pickRecordingFile() {
    if (!canStreamToDisk()) return null;
    try {
      const handle = await /** @type {any} */ (window).showSaveFilePicker({
        suggestedName: this.recordingName,
        types: [{ description: 'WebM', accept: { 'video/webm': ['.webm'] } }],
      });
      return await handle.createWritable();
    } catch (err) {
      if (/** @type {any} */ (err)?.name === 'AbortError') return 'cancelled';
      console.warn('no file to record to, recording in the browser', err);
      return null;
    }
  }

  /** Carries out what the recording flow says, in order. @param {import('./recorder.js').RecordingStep[]} steps */
  runRecording(steps) {
    for (const step of steps) {
      switch (step.do) {
        case 'send':
          this.signaling.update({ recording: step.recording });
          break;
        case 'start-recorder':
          // The banner first, on this page too.
          this.renderRecorders();
          this.startRecorder();
          break;
        case 'stop-recorder':
          this.finishRecording();
          break;
        case 'discard':
          this.recordingSink?.abort();
          this.recordingSink = null;
          break;
        case 'say':
          this.toast(t(step.key));
          break;
        default:
          break;
      }
    }
    recordingView.renderButton(this.recording.active, this.state.room.recordingAllowed);
    this.renderRecorders();
  }

  /** Everyone has been told: the recorder starts. */
  startRecorder() {
    const sink = this.recordingSink ?? memoryRecordingSink();
    this.recordingSink = sink;
    try {
      const recorder = new MeetingRecorder({ sources: () => this.grid.recordingSources(), sink });
      recorder.addEventListener('error', (e) => this.runRecording(this.recording.failed(/** @type {CustomEvent} */ (e).detail.key)));
      recorder.start();
      this.recorder = recorder;
    } catch (err) {
      console.warn('recorder did not start', err);
      this.recorder = null;
      // The flow is `recording` now: its failure tells the others it ended.
      queueMicrotask(() => this.runRecording(this.recording.failed('recordingFailed')));
    }
  }

  /** The recorder writes its last chunk; the file is offered (or was written already). */
  async finishRecording() {
    const recorder = this.recorder;
    const sink = this.recordingSink;
    this.recorder = null;
    this.recordingSink = null;
    if (!recorder) {
      // It never started: nothing to offer, and nothing to keep on disk.
      sink?.abort();
      this.runRecording(this.recording.finished());
      return;
    }
    try {
      const blob = await recorder.stop();
      if (recorder.recorded && sink) recordingView.ready(blob, this.recordingName, sink.dispose);
    } catch (err) {
      console.warn('recording did not finish', err);
      this.toast(t('recordingWriteFailed'));
    }
    this.runRecording(this.recording.finished());
  }

  /** The banner: who records now, this page included once the server said so. */
  renderRecorders() {
    if (!this.state.joined) {
      recordingView.renderBanner([], false, null);
      return;
    }
    recordingView.renderBanner(this.state.recorders(), this.state.recording, this.recorder ? this.recordingSink?.stored ?? null : null);
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
          this.grid.setRemovable(id, this.state.host ? () => {
            this.removing = true;
            this.signaling.remove(id);
          } : null);
          this.grid.setAction(id, 'file', { label: t('sendFileTo', { name: notice.peer.name }), run: () => this.filesView.pick(id) });
          this.grid.setAction(id, 'verify', { label: t('verify'), title: t('verifyTitle', { name: notice.peer.name }), run: () => this.openVerify(id) });
          this.renderTrust(id);
          break;
        }
        case 'peer-gone':
          this.files.peerGone(notice.id);
          this.codes.delete(notice.id);
          this.mesh.drop(notice.id);
          this.adapters.delete(notice.id);
          this.wantedSent.delete(notice.id);
          this.levels.delete(notice.id);
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
          // A removal of mine turned "Ask to join" on: say so once, and how to undo it.
          if (notice.ask && !hostPanel.asks && this.removing) this.toast(t('askOnAfterRemove'));
          this.removing = false;
          hostPanel.render(notice);
          recordingView.renderButton(this.recording.active, notice.recordingAllowed);
          break;
        case 'knock':
          knockList.add(notice.knock);
          // Someone new at the door while the host looks elsewhere: a chime and a toast.
          if (notice.alert && !document.hasFocus()) {
            knockList.ring();
            this.toast(t('knockFrom', { name: notice.knock.name }));
          }
          break;
        case 'knock-gone':
          knockList.remove(notice.id);
          break;
        case 'knocks-clear':
          knockList.clear();
          break;
        case 'self':
          this.renderSelf();
          break;
        case 'self-recording':
          this.runRecording(this.recording.confirmed(notice.recording));
          this.renderSelf();
          break;
        case 'recorders':
          this.renderRecorders();
          break;
        case 'chat-reset':
          chatView.panel.clear();
          break;
        case 'chat-line':
          chatView.panel.add(notice.line, notice.mine);
          if (notice.mine) chatView.confirmed(notice.line.text);
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
        case 'reaction':
          this.grid.showReaction(notice.id, notice.emoji, REACTION_MS);
          break;
        default:
          break;
      }
    }
    this.renderAlone();
    // Fewer or more peers: fit every sender's bitrate again, and the room code is another.
    if (links) {
      this.adaptVideo();
      this.updateRoomCode();
    }
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
      case 'refused': {
        // Never only the console: beside the chat box if a message of mine was refused, else
        // in passing. The server's own words are English; the sentence around them is not.
        const why = t('chatRefused', { message: message ?? code });
        if (!chatView.refused(why)) this.toast(t(outcome.key ?? 'errBadRequest', { message: message ?? code }));
        break;
      }
      case 'toast':
        this.toast(text);
        break;
      case 'recording-refused':
        this.runRecording(this.recording.refused());
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
      const before = this.state.speaker;
      this.grid.setSpeaker(this.state.hear(samples));
      if (this.state.speaker !== before) this.pip.follow(this.state.speaker);
      // A poor link of mine prefers the speaker's video: a new speaker changes what I ask for.
      if (this.state.speaker !== before && this.ownLevel === 'poor') this.sendWanted();
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Every second: each link's stats into its adapter, which moves that link's video sender and
   * rates the link; then my own link from the best of them, the tiles, and the announcements
   * (only when a level changes).
   */
  async sampleLinks() {
    if (!this.state.joined || this.sampling) return;
    this.sampling = true;
    try {
      /** @type {Array<{ level: 'good' | 'fair' | 'poor', reason: string | null }>} */
      const levels = [];
      /** @type {Map<string, string>} */
      const reasons = new Map();
      for (const [id, link] of [...this.mesh.links]) {
        if (link.connectionState !== 'connected') continue;
        const sample = await link.sample().catch(() => null);
        if (!sample) continue;
        const adapter = this.adapterFor(id);
        const wasPaused = adapter.paused;
        if (adapter.update(sample, { adapt: this.adapt })) this.applyVideo(id);
        if (adapter.paused !== wasPaused) this.signaling.signal(id, PeerMsg.videoPaused(adapter.paused));
        const quality = adapter.quality;
        levels.push(quality);
        const reason = this.reasonText(quality.reason, adapter, sample);
        reasons.set(quality.reason ?? '', reason);
        this.showLevel(id, quality.level, reason);
      }
      const own = ownQuality(levels);
      const ownWas = this.ownLevel;
      this.ownLevel = own?.level ?? null;
      if (own) this.showLevel('self', own.level, reasons.get(own.reason ?? '') ?? '');
      else this.grid.setQuality('self', null);
      if ((ownWas === 'poor') !== (this.ownLevel === 'poor')) this.sendWanted();
      this.suggestAudioOnly();
    } finally {
      this.sampling = false;
    }
  }

  /**
   * @param {string | null} reason
   * @param {LinkAdapter} adapter
   * @param {import('./adapt.js').LinkSample} sample
   */
  reasonText(reason, adapter, sample) {
    const loss = Math.max(adapter.last?.inLoss ?? 0, adapter.last?.outLoss ?? 0);
    if (reason === 'loss') return t('reasonLoss', { loss: Math.round(loss * 100) });
    if (reason === 'bandwidth') return t('reasonBandwidth');
    return sample.rtt === null ? '' : t('reasonDelay', { rtt: Math.round(sample.rtt * 1000) });
  }

  /**
   * @param {string} id a peer or 'self'
   * @param {'good' | 'fair' | 'poor'} level
   * @param {string} reason
   */
  showLevel(id, level, reason) {
    const label = t(`quality${level[0].toUpperCase()}${level.slice(1)}`);
    this.grid.setQuality(id, { level, label, reason });
    const was = this.levels.get(id);
    this.levels.set(id, level);
    // The first level is shown, not said: only changes are announced.
    if (was === undefined || was === level) return;
    const name = this.state.peers.get(id)?.name ?? '';
    announce(id === 'self' ? t('qualityMine', { label }) : t('qualityPeer', { name, label }));
  }

  /** My own link poor for a while: suggest Audio only, once per meeting. */
  suggestAudioOnly() {
    if (this.ownLevel !== 'poor' || prefs.audioOnly) {
      this.ownPoorSince = null;
      controls.renderAudioOnly(prefs.audioOnly);
      return;
    }
    const now = Date.now();
    this.ownPoorSince ??= now;
    if (now - this.ownPoorSince < SUGGEST_AFTER_MS) return;
    controls.renderAudioOnly(false, true);
    if (!this.suggested) {
      this.suggested = true;
      this.toast(t('suggestAudioOnly'));
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

  /** A reaction for everyone (shown when the server relays it back), within the page's rate. @param {string} emoji */
  react(emoji) {
    if (!this.state.joined || !this.reactions.take(Date.now())) return;
    this.signaling.roomMessage(RoomPayload.reaction(emoji));
  }

  async togglePip() {
    try {
      await this.pip.toggle(this.state.speaker);
    } catch (err) {
      const e = /** @type {any} */ (err);
      this.toast(e?.name === 'NoVideo' ? t('pipNothing') : t('pipFailed', { message: e?.message ?? String(err) }));
    }
  }

  toggleHand() {
    this.run(this.state.toggleHand());
    controls.renderHand(this.state.hand);
  }

  /** @param {boolean} [open] toggles when not given */
  toggleChat(open = !chatView.isOpen) {
    if (open) {
      this.toggleSettings(false);
      verifyView.open(null);
    }
    this.run(this.state.setChatOpen(open));
    chatView.setOpen(open);
  }

  /** @param {boolean} [open] toggles when not given */
  toggleSettings(open = !hostPanel.isOpen) {
    if (open) {
      this.toggleChat(false);
      verifyView.open(null);
    }
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
    lobby.setWaiting(false);
    screens.show('lobby');
    lobby.setJoining(false);
    lobby.showError('join', reason);
    renderDevices();
  }

  /** The meeting is over for this page. @param {string} reason */
  end(reason) {
    // A recording under way is kept: the recorder stops, and the file is offered on the next screen.
    this.runRecording(this.recording.leave());
    this.state.end();
    this.pip.close().catch(() => {});
    clearInterval(this.ticker);
    clearInterval(this.sampleTicker);
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

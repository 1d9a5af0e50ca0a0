// One RTCPeerConnection per remote participant, never two, negotiated with the perfect-negotiation
// pattern (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example): one side of each pair is
// polite and yields when offers cross (see isPolite).
//
// Every connection has exactly one audio and one video transceiver, both `sendrecv` from the first
// offer on, whether or not this side has a track yet (an empty sender sends nothing). So turning
// a device on for the first time, flipping the camera or sharing the screen is a replaceTrack on
// an existing sender, never a renegotiation; and a participant with no devices still receives.
//
// Every connection also has one data channel (files.js's), made `negotiated: true` with the fixed
// id DATA_CHANNEL_ID on both sides: the offering side makes it before its first offer, so that
// offer carries the m=application section; the answering side makes it once that offer is
// applied, before answering. Neither side ever announces a channel in-band, so opening it costs no
// second offer on a live call (a channel made later, un-negotiated, would need one).

import { IceRestartPolicy } from './ice-policy.js';
import { parsePeerMsg } from './protocol.js';
import { fingerprintOf } from './safety-code.js';

/** The SCTP stream id of the one data channel of every link (both sides make it with this id). */
export const DATA_CHANNEL_ID = 0;
/** Its label; informative only (negotiated channels are matched by id). */
export const DATA_CHANNEL_LABEL = 'videomeet';

/**
 * A transceiver that stop() ended here or the other side ended (the standard's test: the
 * `stopped` attribute left the spec and TypeScript's DOM types, though Chromium still has it).
 * @param {RTCRtpTransceiver} transceiver
 */
function isStopped(transceiver) {
  return transceiver.direction === 'stopped' || transceiver.currentDirection === 'stopped';
}

/**
 * Whether this side is the polite one towards `remoteId`. Seat ids are strings on the wire
 * (docs/PROTOCOL.md, "Identities") and are compared as strings, so "10" < "9": the order is not
 * the numeric one, and need not be. What perfect negotiation needs is that the two sides agree,
 * exactly one polite, and a string comparison of two different ids gives that on every client
 * (this one, an older tab still open across an upgrade, another client of the protocol).
 * Comparing as numbers would break that promise: ids are u64, past what a JS number holds
 * exactly, so two close ids could compare equal on both sides and leave both impolite.
 * @param {string} selfId
 * @param {string} remoteId
 */
export function isPolite(selfId, remoteId) {
  return String(selfId) < String(remoteId);
}

/**
 * Puts Opus with redundancy (RED, RFC 2198) first for an audio transceiver, where the browser
 * has it: each packet also carries the one before, so a single lost packet is not heard. Costs
 * about 25 kbit/s per peer; audio is what a poor link must keep. Before the description that
 * uses it, so no extra negotiation.
 * @param {RTCRtpTransceiver} transceiver
 */
function preferRedundantAudio(transceiver) {
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.('audio')?.codecs;
  if (!codecs || typeof transceiver.setCodecPreferences !== 'function') return;
  const red = codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
  if (red.length === 0) return;
  try {
    transceiver.setCodecPreferences([...red, ...codecs.filter((c) => !red.includes(c))]);
  } catch {
    // A browser that refuses the list keeps its own order.
  }
}

/**
 * Flattens a connection's stats into one sample of adapt.js (what we send, what the peer
 * reports of it, what it sends us).
 * @param {RTCStatsReport} report
 * @returns {import('./adapt.js').LinkSample}
 */
export function linkSample(report) {
  /** @type {import('./adapt.js').LinkSample} */
  const out = {
    t: Date.now(), rtt: null, available: null, limitation: null, videoBytesSent: 0,
    outLoss: null, outAudioLoss: null, inPacketsReceived: 0, inPacketsLost: 0,
    concealed: 0, samplesReceived: 0, inFramesDecoded: 0,
  };
  /** @type {string | null} */
  let pairId = null;
  /** @type {any[]} */
  const pairs = [];
  report.forEach((/** @type {any} */ s) => {
    switch (s.type) {
      case 'transport':
        pairId = s.selectedCandidatePairId ?? pairId;
        break;
      case 'candidate-pair':
        pairs.push(s);
        break;
      case 'outbound-rtp':
        if (s.kind === 'video') {
          out.videoBytesSent += s.bytesSent ?? 0;
          out.limitation = s.qualityLimitationReason ?? out.limitation;
        }
        break;
      case 'remote-inbound-rtp':
        if (typeof s.fractionLost !== 'number') break;
        if (s.kind === 'video') out.outLoss = Math.max(out.outLoss ?? 0, s.fractionLost);
        else out.outAudioLoss = Math.max(out.outAudioLoss ?? 0, s.fractionLost);
        break;
      case 'inbound-rtp':
        out.inPacketsReceived += s.packetsReceived ?? 0;
        out.inPacketsLost += Math.max(0, s.packetsLost ?? 0);
        if (s.kind === 'audio') {
          out.concealed += s.concealedSamples ?? 0;
          out.samplesReceived += s.totalSamplesReceived ?? 0;
        } else {
          out.inFramesDecoded += s.framesDecoded ?? 0;
        }
        break;
      default:
        break;
    }
  });
  const pair = pairs.find((p) => p.id === pairId) ?? pairs.find((p) => p.nominated && p.state === 'succeeded');
  if (pair) {
    out.rtt = pair.currentRoundTripTime ?? null;
    out.available = pair.availableOutgoingBitrate ?? null;
  }
  return out;
}

/**
 * Whether a description has a data (m=application) section, i.e. whether the other side made the
 * link's data channel before offering.
 * @param {RTCSessionDescriptionInit | null | undefined} description
 */
export function hasDataSection(description) {
  return /^m=application /m.test(description?.sdp ?? '');
}

/**
 * Whether a connection's selected candidate pair has a relayed end (this side's or the other's).
 * @param {RTCStatsReport} report
 */
export function isRelayed(report) {
  /** @type {any} */
  let pair = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) return false;
  return [pair.localCandidateId, pair.remoteCandidateId].some((id) => report.get(id)?.candidateType === 'relay');
}

/**
 * Events: `track` (a remote track arrived; see `remoteStream`), `state` {state},
 * `peer-msg` {kind, …} (a PeerMsg payload from the other side: video-wanted, video-paused),
 * `channel` {channel} (the link's data channel exists; it opens by itself once DTLS is up),
 * `descriptions` (a local or remote description was applied: see `fingerprints`).
 */
export class PeerLink extends EventTarget {
  /**
   * @param {{ id: string, selfId: string, iceServers: RTCIceServer[], relayOnly?: boolean,
   *           send: (data: unknown) => void, media: import('./media.js').LocalMedia,
   *           initiator: boolean, redundantAudio?: boolean, certificates?: RTCCertificate[] }} options
   *   `initiator`: this side joined last and makes the first offer (see docs/PROTOCOL.md).
   *   `relayOnly`: gather relay candidates only (iceTransportPolicy "relay").
   *   `redundantAudio`: offer and answer Opus with RED first (see preferRedundantAudio).
   *   `certificates`: this page's DTLS certificate (safety-code.js), the same on every link.
   */
  constructor({ id, selfId, iceServers, relayOnly = false, send, media, initiator, redundantAudio = false, certificates }) {
    super();
    this.redundantAudio = redundantAudio;
    this.id = id;
    this.polite = isPolite(selfId, id);
    this.send = send;
    this.media = media;
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** An answer is being applied: an offer queued behind it finds the connection stable. */
    this.settingRemoteAnswer = false;
    this.closed = false;
    this.remoteStream = new MediaStream();
    /** The link's data channel, once made (see DATA_CHANNEL_ID). @type {RTCDataChannel | null} */
    this.channel = null;
    /** Whether the selected candidate pair goes through a TURN relay (as of the last sample). */
    this.relayed = relayOnly;
    /** @type {RTCConfiguration} */
    const config = {
      iceServers,
      bundlePolicy: 'max-bundle',
      iceTransportPolicy: relayOnly ? 'relay' : 'all',
    };
    if (certificates?.length) config.certificates = certificates;
    this.pc = new RTCPeerConnection(config);
    this.ice = new IceRestartPolicy({
      responsible: !this.polite,
      restart: () => {
        if (!this.closed) this.pc.restartIce();
      },
    });

    const pc = this.pc;
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription });
      } catch (err) {
        console.warn('negotiation failed', this.id, err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.send({ candidate });
    };
    pc.ontrack = ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      track.addEventListener('ended', () => this.remoteStream.removeTrack(track));
      this.dispatchEvent(new CustomEvent('track', { detail: { track } }));
    };
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === 'stable') this.dispatchEvent(new CustomEvent('descriptions'));
    };
    pc.onconnectionstatechange = () => {
      this.ice.onState(pc.connectionState);
      this.dispatchEvent(new CustomEvent('state', { detail: { state: pc.connectionState } }));
    };

    /** Candidates that could not be added yet (no remote description, or an ignored offer). */
    this.pendingCandidates = [];
    // The newcomer offers (docs/PROTOCOL.md): only its side adds transceivers now, which fires
    // negotiationneeded. The other side puts its tracks into the transceivers that offer
    // creates, before answering, so the common path has no crossing offers at all.
    this.awaitingOffer = !initiator;
    if (initiator) {
      for (const kind of ['audio', 'video']) {
        const transceiver = pc.addTransceiver(media.outgoing(kind) ?? kind, { direction: 'sendrecv' });
        if (kind === 'audio' && redundantAudio) preferRedundantAudio(transceiver);
      }
      // Before the first offer, so it carries the data section (no second offer for it).
      this.#makeChannel();
    }
  }

  /** The negotiated data channel, made once per link (both sides, the same id). */
  #makeChannel() {
    if (this.channel || typeof this.pc.createDataChannel !== 'function') return;
    this.channel = this.pc.createDataChannel(DATA_CHANNEL_LABEL, { negotiated: true, id: DATA_CHANNEL_ID, ordered: true });
    this.channel.binaryType = 'arraybuffer';
    this.dispatchEvent(new CustomEvent('channel', { detail: { channel: this.channel } }));
  }

  /**
   * The two DTLS certificate fingerprints of this link, from the descriptions applied on each side
   * (null until both are there). What safety-code.js derives the code from.
   * @returns {{ local: string, remote: string } | null}
   */
  get fingerprints() {
    const local = fingerprintOf(this.pc.localDescription?.sdp);
    const remote = fingerprintOf(this.pc.remoteDescription?.sdp);
    return local && remote ? { local, remote } : null;
  }

  /**
   * Before answering an offer: the transceivers it created arrive `recvonly`; make them send too,
   * with our track if there is one (none yet is fine: attach() fills it in later, no offer needed).
   */
  async #adoptOfferedTransceivers() {
    this.awaitingOffer = false;
    for (const transceiver of this.pc.getTransceivers()) {
      if (isStopped(transceiver) || transceiver.direction !== 'recvonly') continue;
      const kind = transceiver.receiver.track.kind;
      if (kind === 'audio' && this.redundantAudio) preferRedundantAudio(transceiver);
      const track = this.media.outgoing(kind);
      if (track && !transceiver.sender.track) await transceiver.sender.replaceTrack(track);
      transceiver.direction = 'sendrecv';
    }
  }

  async #flushCandidates() {
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of pending) {
      await this.pc.addIceCandidate(candidate).catch(() => {});
    }
  }

  /** A signal from the remote side: a description or an ICE candidate. */
  async handle(data) {
    if (this.closed || !data || typeof data !== 'object') return;
    const peerMsg = parsePeerMsg(data);
    if (peerMsg) {
      this.dispatchEvent(new CustomEvent('peer-msg', { detail: peerMsg }));
      return;
    }
    const pc = this.pc;
    try {
      if (data.description) {
        const description = data.description;
        // Not a collision: an offer right behind the answer to our own (the other side
        // renegotiating at once, as the polite side does after a glare), since the connection
        // applies descriptions in order and is stable by the time it reaches the offer.
        const readyForOffer = !this.makingOffer
          && (pc.signalingState === 'stable' || this.settingRemoteAnswer);
        const collision = description.type === 'offer' && !readyForOffer;
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        this.settingRemoteAnswer = description.type === 'answer';
        try {
          await pc.setRemoteDescription(description);
        } finally {
          this.settingRemoteAnswer = false;
        }
        if (description.type === 'offer') {
          // The offer has the data section (every offering client makes the channel first): the
          // channel joins it now, before the answer, without a negotiation of its own. An offer
          // without one (an older client) gets no channel rather than a renegotiation.
          if (hasDataSection(description)) this.#makeChannel();
          await this.#adoptOfferedTransceivers();
          await pc.setLocalDescription();
          this.send({ description: pc.localDescription });
        }
        await this.#flushCandidates();
      } else if (data.candidate) {
        if (!pc.remoteDescription) {
          this.pendingCandidates.push(data.candidate);
          return;
        }
        try {
          await pc.addIceCandidate(data.candidate);
        } catch (err) {
          // Candidates sent with an offer we ignored may belong to the answer that follows
          // (browsers reuse gathered candidates after a rollback): keep them for later.
          if (this.ignoreOffer) this.pendingCandidates.push(data.candidate);
          else throw err;
        }
      }
    } catch (err) {
      console.warn('signal from', this.id, 'failed', err);
    }
  }

  /**
   * Puts a local track (or none) on the sender of `kind` with replaceTrack: no renegotiation, for
   * a first camera, a camera flip or a screen share alike.
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async attach(kind, track) {
    // Before the first offer there is no sender yet: the answer will carry the track.
    if (this.closed || this.awaitingOffer) return;
    // Normally one per kind; two only after offers crossed at the very start, and then both carry it.
    const transceivers = this.pc.getTransceivers().filter(
      (t) => !isStopped(t) && t.receiver.track?.kind === kind,
    );
    for (const transceiver of transceivers) {
      await transceiver.sender.replaceTrack(track);
      // Only if it was left receive-only (not by this client): one renegotiation.
      if (track && transceiver.direction === 'recvonly') transceiver.direction = 'sendrecv';
    }
    if (transceivers.length === 0 && track) this.pc.addTransceiver(track, { direction: 'sendrecv' });
  }

  /** This link's stats as one adapt.js sample; null once closed. Also notes `relayed`. */
  async sample() {
    if (this.closed) return null;
    const report = await this.pc.getStats();
    this.relayed = isRelayed(report);
    return linkSample(report);
  }

  /** The live video (or audio) senders of this link. @param {'audio' | 'video'} kind */
  #senders(kind) {
    return this.pc.getTransceivers()
      .filter((t) => !isStopped(t) && t.receiver.track?.kind === kind)
      .map((t) => t.sender);
  }

  /**
   * Changes every encoding of this link's senders of `kind` with setParameters: no
   * renegotiation. A sender not negotiated yet has no encodings and is left alone.
   * @param {'audio' | 'video'} kind
   * @param {(encoding: RTCRtpEncodingParameters) => void} change
   */
  async setEncodings(kind, change) {
    if (this.closed) return;
    await Promise.all(this.#senders(kind).map(async (sender) => {
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length === 0) return;
      for (const encoding of params.encodings) change(encoding);
      await sender.setParameters(params).catch((err) => console.warn('setParameters', this.id, kind, err));
    }));
  }

  /**
   * Audio first: when the link is congested the audio gets its packets out before video
   * (priority and networkPriority, which Chromium uses for bitrate allocation and DSCP).
   */
  async preferAudio() {
    await this.setEncodings('audio', (e) => { e.priority = 'high'; e.networkPriority = 'high'; });
    await this.setEncodings('video', (e) => { e.priority = 'low'; e.networkPriority = 'low'; });
  }

  /** @param {import('./adapt.js').VideoEncoding} encoding */
  async setVideo(encoding) {
    await this.setEncodings('video', (e) => {
      e.active = encoding.active;
      e.maxBitrate = encoding.maxBitrate;
      e.scaleResolutionDownBy = encoding.scaleResolutionDownBy;
      e.maxFramerate = encoding.maxFramerate;
      e.priority = 'low';
      e.networkPriority = 'low';
    });
  }

  /** The counters of the audio this peer sends us, for the active-speaker highlight. */
  async audioEnergy() {
    const receiver = this.pc.getReceivers().find((r) => r.track?.kind === 'audio');
    if (this.closed || !receiver) return null;
    /** @type {{ energy: number, duration: number } | null} */
    let sample = null;
    (await receiver.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') sample = { energy: s.totalAudioEnergy ?? 0, duration: s.totalSamplesDuration ?? 0 };
    });
    return sample;
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.ice.dispose();
    this.channel?.close();
    this.pc.close();
    this.dispatchEvent(new CustomEvent('state', { detail: { state: 'closed' } }));
  }
}

/** The peer links of one meeting, keyed by remote id: the one place that makes them. */
export class Mesh {
  /** @param {(id: string, initiator: boolean) => PeerLink} make */
  constructor(make) {
    this.make = make;
    /** @type {Map<string, PeerLink>} */
    this.links = new Map();
  }

  /** The link to `id`, made if missing. Never two links to one id. */
  ensure(id, initiator) {
    let link = this.links.get(id);
    if (!link) {
      link = this.make(id, initiator);
      this.links.set(id, link);
    }
    return link;
  }

  /** Replaces the link to `id` with a fresh one (the remote side lost its state). */
  reset(id, initiator) {
    this.drop(id);
    return this.ensure(id, initiator);
  }

  drop(id) {
    const link = this.links.get(id);
    if (link) {
      link.close();
      this.links.delete(id);
    }
  }

  get(id) {
    return this.links.get(id);
  }

  ids() {
    return [...this.links.keys()];
  }

  closeAll() {
    for (const id of this.ids()) this.drop(id);
  }
}

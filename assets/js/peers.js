// One RTCPeerConnection per remote participant, never two, negotiated with the perfect-negotiation
// pattern (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example): one side of each pair is
// polite and yields when offers cross (see isPolite).
//
// Every connection has exactly one audio and one video transceiver, both `sendrecv` from the first
// offer on, whether or not this side has a track yet (an empty sender sends nothing). So turning
// a device on for the first time, flipping the camera or sharing the screen is a replaceTrack on
// an existing sender, never a renegotiation; and a participant with no devices still receives.

import { IceRestartPolicy } from './ice-policy.js';

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
 * Events: `track` (a remote track arrived; see `remoteStream`), `state` {state}.
 */
export class PeerLink extends EventTarget {
  /**
   * @param {{ id: string, selfId: string, iceServers: RTCIceServer[], relayOnly?: boolean,
   *           send: (data: unknown) => void, media: import('./media.js').LocalMedia,
   *           initiator: boolean }} options
   *   `initiator`: this side joined last and makes the first offer (see docs/PROTOCOL.md).
   *   `relayOnly`: gather relay candidates only (iceTransportPolicy "relay").
   */
  constructor({ id, selfId, iceServers, relayOnly = false, send, media, initiator }) {
    super();
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
    this.pc = new RTCPeerConnection({
      iceServers,
      bundlePolicy: 'max-bundle',
      iceTransportPolicy: relayOnly ? 'relay' : 'all',
    });
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
        pc.addTransceiver(media.outgoing(kind) ?? kind, { direction: 'sendrecv' });
      }
    }
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

  /** Round-trip time and loss towards this peer, from getStats; null until there is a pair. */
  async quality() {
    if (this.closed) return null;
    const stats = await this.pc.getStats();
    /** @type {number | null} */
    let rtt = null;
    let lost = 0;
    let received = 0;
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
        rtt = s.currentRoundTripTime * 1000;
      }
      if (s.type === 'inbound-rtp') {
        lost += s.packetsLost ?? 0;
        received += s.packetsReceived ?? 0;
      }
    });
    const previous = this.lastCounts ?? { lost: 0, received: 0 };
    this.lastCounts = { lost, received };
    const dLost = Math.max(0, lost - previous.lost);
    const dReceived = Math.max(0, received - previous.received);
    const loss = dLost + dReceived > 0 ? (100 * dLost) / (dLost + dReceived) : 0;
    return rtt === null ? null : { rtt, loss };
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.ice.dispose();
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

// A small model of RTCPeerConnection for node tests of peers.js: the signaling state machine of
// JSEP and webrtc-pc (stable, have-local-offer, have-remote-offer), the operations chain that
// serializes setLocalDescription / setRemoteDescription / addIceCandidate, setLocalDescription
// with no argument, explicit and implicit rollback, negotiationneeded, ICE credentials that
// change only on restartIce, and trickled candidates that are refused without a remote
// description or with another ufrag. It keeps state, not a record of calls: tests look at what a
// real connection would show (signalingState and its change events, descriptions, transceivers,
// connectionState).
//
// What it leaves out: codecs, DTLS, real ICE checks. A connection counts as `connected` once it
// is stable with both descriptions and holds a candidate of the remote side's current ufrag.

let nextUfrag = 1;
let nextTrack = 1;

/** Lets every queued task and timer of the same tick run (the browser's "in parallel" steps). */
export const tick = () => new Promise((resolve) => setImmediate(resolve));

export class FakeTrack extends EventTarget {
  /** @param {'audio' | 'video'} kind */
  constructor(kind) {
    super();
    this.kind = kind;
    this.id = `track-${nextTrack++}`;
    this.enabled = true;
    this.readyState = 'live';
  }
}

export class FakeMediaStream {
  constructor() {
    this.tracks = [];
  }
  getTracks() { return [...this.tracks]; }
  addTrack(track) { if (!this.tracks.includes(track)) this.tracks.push(track); }
  removeTrack(track) { this.tracks = this.tracks.filter((t) => t !== track); }
}

function domError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

/** What a direction looks like from the other end of the m-line. */
const REVERSE = { sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive' };
const sends = (direction) => direction === 'sendrecv' || direction === 'sendonly';
const receives = (direction) => direction === 'sendrecv' || direction === 'recvonly';
/** The answer's direction: what both sides allow. */
function intersect(local, remoteReversed) {
  const send = sends(local) && sends(remoteReversed);
  const recv = receives(local) && receives(remoteReversed);
  return send && recv ? 'sendrecv' : send ? 'sendonly' : recv ? 'recvonly' : 'inactive';
}

class FakeTransceiver {
  #direction;
  constructor(pc, kind, direction, track, createdByRemote) {
    this.pc = pc;
    this.mid = null;
    this.kind = kind;
    this.#direction = direction;
    /** The direction this side last agreed to (in the current local description). */
    this.currentDirection = null;
    this.createdByRemote = createdByRemote;
    this.sender = { track, replaceTrack: async (next) => { this.sender.track = next; } };
    this.receiver = { track: new FakeTrack(kind), fired: false };
  }
  get direction() { return this.#direction; }
  set direction(value) {
    this.#direction = value;
    this.pc.updateNegotiationNeeded();
  }
}

export class FakeRTCPeerConnection {
  /** Every connection made, in order, for the tests to find. */
  static all = [];

  constructor(config = {}) {
    this.config = config;
    this.signalingState = 'stable';
    /** Every signalingState a `signalingstatechange` announced, from the first. */
    this.signalingHistory = ['stable'];
    this.connectionState = 'new';
    this.currentLocalDescription = null;
    this.pendingLocalDescription = null;
    this.currentRemoteDescription = null;
    this.pendingRemoteDescription = null;
    /** @type {FakeTransceiver[]} */
    this.transceivers = [];
    /** Remote candidates added, for the current remote ufrag. */
    this.remoteCandidates = [];
    this.ufrag = `u${nextUfrag++}`;
    this.iceRestartPending = false;
    this.gatheredFor = null;
    this.usedMids = new Set();
    this.chain = Promise.resolve();
    this.operations = 0;
    this.negotiationQueued = false;
    this.onnegotiationneeded = null;
    this.onicecandidate = null;
    this.ontrack = null;
    this.onconnectionstatechange = null;
    FakeRTCPeerConnection.all.push(this);
  }

  get localDescription() { return this.pendingLocalDescription ?? this.currentLocalDescription; }
  get remoteDescription() { return this.pendingRemoteDescription ?? this.currentRemoteDescription; }

  getTransceivers() { return [...this.transceivers]; }
  getSenders() { return this.transceivers.map((t) => t.sender); }
  getReceivers() { return this.transceivers.map((t) => t.receiver); }
  async getStats() { return new Map(); }

  addTransceiver(trackOrKind, init = {}) {
    this.#assertOpen();
    const track = typeof trackOrKind === 'string' ? null : trackOrKind;
    const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
    const transceiver = new FakeTransceiver(this, kind, init.direction ?? 'sendrecv', track, false);
    this.transceivers.push(transceiver);
    this.updateNegotiationNeeded();
    return transceiver;
  }

  restartIce() {
    this.iceRestartPending = true;
    this.updateNegotiationNeeded();
  }

  close() {
    if (this.signalingState === 'closed') return;
    // As in browsers, close() fires no state events.
    this.signalingState = 'closed';
    this.connectionState = 'closed';
  }

  /** Test side: the network changed this connection's state (e.g. 'failed'). */
  setConnectionState(state) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }

  /** The operations chain: one at a time, each taking a turn of the event loop as in browsers. */
  #enqueue(operation) {
    this.operations += 1;
    const result = this.chain.then(async () => {
      await tick();
      this.#assertOpen();
      return operation();
    });
    this.chain = result.catch(() => {}).finally(() => {
      this.operations -= 1;
      this.updateNegotiationNeeded();
    });
    return result;
  }

  #assertOpen() {
    if (this.signalingState === 'closed') throw domError('InvalidStateError', 'the connection is closed');
  }

  #setSignalingState(state) {
    if (this.signalingState === state) return;
    this.signalingState = state;
    this.signalingHistory.push(state);
  }

  setLocalDescription(description) {
    return this.#enqueue(() => {
      const type = description?.type
        ?? (this.signalingState === 'have-remote-offer' ? 'answer' : 'offer');
      if (type === 'rollback') return this.#rollback();
      if (type === 'offer') return this.#applyLocalOffer();
      return this.#applyLocalAnswer();
    });
  }

  setRemoteDescription(description) {
    return this.#enqueue(() => {
      if (description.type === 'rollback') return this.#rollback();
      const sdp = JSON.parse(description.sdp);
      if (description.type === 'offer') {
        // Perfect negotiation's polite side relies on this: an offer in have-local-offer first
        // rolls the local one back (webrtc-pc, setRemoteDescription step "implicit rollback").
        if (this.signalingState === 'have-local-offer') this.#rollback();
        if (this.signalingState !== 'stable' && this.signalingState !== 'have-remote-offer') {
          throw domError('InvalidStateError', `offer in ${this.signalingState}`);
        }
        this.#takeRemoteIce(sdp.ufrag, true);
        for (const line of sdp.mlines) {
          this.usedMids.add(line.mid);
          let transceiver = this.transceivers.find((t) => t.mid === line.mid);
          if (!transceiver) {
            // JSEP: an m-line with no transceiver gets a new one, receive-only until this side
            // says otherwise (transceivers from addTransceiver are not reused for it).
            transceiver = new FakeTransceiver(this, line.kind, 'recvonly', null, true);
            transceiver.mid = line.mid;
            this.transceivers.push(transceiver);
          }
          this.#fireTrack(transceiver, line.direction);
        }
        this.pendingRemoteDescription = { type: 'offer', sdp: description.sdp };
        this.#setSignalingState('have-remote-offer');
        return;
      }
      if (this.signalingState !== 'have-local-offer') {
        throw domError('InvalidStateError', `answer in ${this.signalingState}`);
      }
      this.#takeRemoteIce(sdp.ufrag, false);
      const offer = JSON.parse(this.pendingLocalDescription.sdp);
      for (const line of sdp.mlines) {
        const transceiver = this.transceivers.find((t) => t.mid === line.mid);
        if (!transceiver) continue;
        transceiver.currentDirection = offer.mlines.find((l) => l.mid === line.mid)?.direction ?? null;
        this.#fireTrack(transceiver, line.direction);
      }
      this.currentLocalDescription = this.pendingLocalDescription;
      this.pendingLocalDescription = null;
      this.currentRemoteDescription = { type: 'answer', sdp: description.sdp };
      this.pendingRemoteDescription = null;
      this.#setSignalingState('stable');
      this.#maybeConnected();
    });
  }

  addIceCandidate(candidate) {
    return this.#enqueue(() => {
      if (!this.remoteDescription) throw domError('InvalidStateError', 'no remote description');
      if (candidate.usernameFragment !== JSON.parse(this.remoteDescription.sdp).ufrag) {
        throw domError('OperationError', `unknown ufrag ${candidate.usernameFragment}`);
      }
      this.remoteCandidates.push(candidate);
      this.#maybeConnected();
    });
  }

  #applyLocalOffer() {
    if (this.signalingState !== 'stable' && this.signalingState !== 'have-local-offer') {
      throw domError('InvalidStateError', `offer in ${this.signalingState}`);
    }
    if (this.iceRestartPending) {
      this.ufrag = `u${nextUfrag++}`;
      this.iceRestartPending = false;
    }
    let next = 0;
    for (const transceiver of this.transceivers) {
      if (transceiver.direction === 'stopped' || transceiver.mid !== null) continue;
      while (this.usedMids.has(String(next))) next += 1;
      transceiver.mid = String(next);
      this.usedMids.add(transceiver.mid);
    }
    const mlines = this.transceivers.filter((t) => t.mid !== null)
      .map((t) => ({ mid: t.mid, kind: t.kind, direction: t.direction }));
    this.pendingLocalDescription = { type: 'offer', sdp: JSON.stringify({ ufrag: this.ufrag, mlines }) };
    this.#setSignalingState('have-local-offer');
    this.#gather();
  }

  #applyLocalAnswer() {
    if (this.signalingState !== 'have-remote-offer') {
      throw domError('InvalidStateError', `answer in ${this.signalingState}`);
    }
    if (this.iceRestartPending) {
      this.ufrag = `u${nextUfrag++}`;
      this.iceRestartPending = false;
    }
    const offer = JSON.parse(this.pendingRemoteDescription.sdp);
    const mlines = offer.mlines.map((line) => {
      const transceiver = this.transceivers.find((t) => t.mid === line.mid);
      const direction = intersect(transceiver.direction, REVERSE[line.direction]);
      transceiver.currentDirection = transceiver.direction;
      return { mid: line.mid, kind: line.kind, direction };
    });
    this.currentLocalDescription = { type: 'answer', sdp: JSON.stringify({ ufrag: this.ufrag, mlines }) };
    this.pendingLocalDescription = null;
    this.currentRemoteDescription = this.pendingRemoteDescription;
    this.pendingRemoteDescription = null;
    this.#setSignalingState('stable');
    this.#gather();
    this.#maybeConnected();
  }

  #rollback() {
    if (this.signalingState === 'have-local-offer') {
      const offer = JSON.parse(this.pendingLocalDescription.sdp);
      // Transceivers that got their mid from the rolled-back offer lose it again.
      for (const line of offer.mlines) {
        const transceiver = this.transceivers.find((t) => t.mid === line.mid);
        const wasAssociated = this.currentLocalDescription
          && JSON.parse(this.currentLocalDescription.sdp).mlines.some((l) => l.mid === line.mid);
        if (transceiver && !wasAssociated) {
          transceiver.mid = null;
          this.usedMids.delete(line.mid);
        }
      }
      this.pendingLocalDescription = null;
    } else if (this.signalingState === 'have-remote-offer') {
      this.transceivers = this.transceivers.filter((t) => !(t.createdByRemote && t.currentDirection === null));
      this.pendingRemoteDescription = null;
    } else {
      throw domError('InvalidStateError', `rollback in ${this.signalingState}`);
    }
    this.#setSignalingState('stable');
  }

  /**
   * A new remote ufrag (first description, or the other side restarted ICE) drops old candidates;
   * an offer that restarts ICE makes the answer restart it too (JSEP 5.3.1).
   */
  #takeRemoteIce(ufrag, isOffer) {
    const current = this.remoteDescription && JSON.parse(this.remoteDescription.sdp).ufrag;
    if (current === ufrag) return;
    this.remoteCandidates = [];
    if (current && isOffer) this.iceRestartPending = true;
  }

  #fireTrack(transceiver, remoteDirection) {
    if (!sends(remoteDirection) || transceiver.receiver.fired) return;
    transceiver.receiver.fired = true;
    const { track } = transceiver.receiver;
    setImmediate(() => this.ontrack?.({ track, transceiver, streams: [] }));
  }

  /** One host candidate per ICE generation, trickled after the description that started it. */
  #gather() {
    if (this.gatheredFor === this.ufrag) return;
    this.gatheredFor = this.ufrag;
    const ufrag = this.ufrag;
    setImmediate(() => {
      if (this.signalingState === 'closed') return;
      this.onicecandidate?.({
        candidate: { candidate: `candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host ufrag ${ufrag}`, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: ufrag },
      });
      setImmediate(() => this.onicecandidate?.({ candidate: null }));
    });
  }

  #maybeConnected() {
    if (this.signalingState !== 'stable' || !this.currentRemoteDescription || !this.currentLocalDescription) return;
    if (this.remoteCandidates.length === 0 || this.connectionState === 'connected') return;
    this.setConnectionState('connected');
  }

  /** webrtc-pc "update the negotiation-needed flag": fires once stable with nothing queued. */
  updateNegotiationNeeded() {
    if (this.negotiationQueued || this.signalingState !== 'stable' || this.operations > 0) return;
    if (!this.#negotiationNeeded()) return;
    this.negotiationQueued = true;
    setImmediate(() => {
      this.negotiationQueued = false;
      if (this.signalingState !== 'stable' || this.operations > 0 || !this.#negotiationNeeded()) return;
      this.onnegotiationneeded?.();
    });
  }

  #negotiationNeeded() {
    if (this.iceRestartPending) return true;
    return this.transceivers.some((t) => t.direction !== 'stopped'
      && (t.mid === null || (t.currentDirection !== null && t.currentDirection !== t.direction)));
  }
}

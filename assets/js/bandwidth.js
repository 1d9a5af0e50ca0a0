// How much video each sender may send. In a full mesh every participant uploads one copy of its
// camera per peer, so the per-copy bitrate and the capture size shrink as the room grows: six
// people on a home uplink (~3 Mbit/s) still get a stable picture. Pure, so node tests it.

/**
 * @typedef {{ maxBitrate: number, width: number, height: number, frameRate: number }} SendPolicy
 */

/**
 * @param {number} peers how many peers this participant sends to
 * @returns {SendPolicy}
 */
export function sendPolicy(peers) {
  if (peers <= 1) return { maxBitrate: 900_000, width: 640, height: 360, frameRate: 24 };
  if (peers === 2) return { maxBitrate: 600_000, width: 640, height: 360, frameRate: 24 };
  if (peers === 3) return { maxBitrate: 450_000, width: 480, height: 270, frameRate: 20 };
  return { maxBitrate: 300_000, width: 320, height: 180, frameRate: 15 };
}

/** Total upload the policy asks for, in bits per second: what a home uplink must carry. */
export function totalUpload(peers) {
  return sendPolicy(peers).maxBitrate * Math.max(0, peers);
}

/**
 * Applies the policy to a camera track and the video senders that carry it. Failures are not
 * fatal: the browser keeps its own congestion control either way.
 * @param {SendPolicy} policy
 * @param {MediaStreamTrack | null} track
 * @param {RTCRtpSender[]} senders
 */
export async function applySendPolicy(policy, track, senders) {
  if (track && track.readyState === 'live') {
    await track.applyConstraints({
      width: { ideal: policy.width },
      height: { ideal: policy.height },
      frameRate: { ideal: policy.frameRate, max: policy.frameRate },
    }).catch(() => {});
  }
  await Promise.all(senders.map(async (sender) => {
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return;
    for (const encoding of params.encodings) {
      encoding.maxBitrate = policy.maxBitrate;
      encoding.maxFramerate = policy.frameRate;
    }
    await sender.setParameters(params).catch(() => {});
  }));
}
